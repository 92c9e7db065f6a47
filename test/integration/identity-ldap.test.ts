/**
 * The LDAP / AD identity source against a real OpenLDAP seeded with an AD-like directory
 * (test/fixtures/ldap/directory.ldif): numbers as AD holds them, SIP addresses in
 * msRTCSIP-PrimaryUserAddress and proxyAddresses, a directory that refuses anonymous reads,
 * and a server that stops, freezes and comes back mid-test.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/core/errors.js';
import { LdapSource, type LdapSourceConfig } from '../../src/mapping/identity/ldap.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { startSlapd, type Slapd } from '../support/slapd.js';
import { waitFor } from '../support/ports.js';

let slapd: Slapd;
const sources: LdapSource[] = [];

beforeAll(async () => {
  slapd = await startSlapd({ tls: true });
});

afterAll(async () => {
  await slapd?.stop();
});

afterEach(async () => {
  for (const s of sources.splice(0)) await s.stop();
  if (!slapd.running()) await slapd.resume();
  slapd.thaw();
});

function source(overrides: Partial<LdapSourceConfig> = {}): LdapSource {
  const s = new LdapSource(
    {
      url: slapd.url,
      bindDN: slapd.bindDN,
      bindPassword: slapd.bindPassword,
      baseDN: slapd.peopleDN,
      attributes: { number: ['telephoneNumber', 'mobile', 'ipPhone'], xmpp: ['jabberID'] },
      poolSize: 2,
      timeoutMs: 10_000,
      ...overrides,
    },
    silentLogger(),
  );
  sources.push(s);
  return s;
}

async function rejection(work: Promise<unknown>): Promise<BridgeError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BridgeError);
  return err as BridgeError;
}

const ALICE = {
  e164: '+15551234567',
  sip: 'sip:alice@corp.example',
  xmpp: 'alice@chat.corp.example',
  canonical: 'alice@corp.example',
};

describe('byNumber', () => {
  it('finds the person whose telephoneNumber is written with spaces ("+1 555 123 4567")', async () => {
    expect(await source().byNumber('+15551234567')).toEqual(ALICE);
  });

  it('finds the person by a dashed mobile number, with the SIP address from proxyAddresses', async () => {
    expect(await source().byNumber('+442079460958')).toEqual({
      e164: '+442079460958',
      sip: 'sip:bob@corp.example',
      canonical: 'bob@corp.example',
    });
  });

  it('finds a number held AD-style (spaces significant) through the {numberPattern} substring filter', async () => {
    const s = source({ filters: { byNumber: '(|(telephoneNumber={number})(ipPhone={numberPattern}))' } });
    expect(await s.byNumber('+15559876543')).toEqual({
      e164: '+15559876543',
      sip: 'sip:carol@corp.example',
      canonical: 'carol@corp.example',
    });
  });

  it('misses that AD-style number with an exact {number} filter alone (why the pattern exists)', async () => {
    const s = source({ filters: { byNumber: '(ipPhone={number})' } });
    expect(await s.byNumber('+15559876543')).toBeUndefined();
  });

  it('answers undefined for a number nobody has', async () => {
    expect(await source().byNumber('+15557654321')).toBeUndefined();
  });

  it('answers undefined when two people share the number, rather than pick one', async () => {
    expect(await source().byNumber('+15550000000')).toBeUndefined();
  });

  it('answers undefined for a "number" carrying filter syntax, without matching anyone', async () => {
    expect(await source().byNumber('+1555*)(uid=alice')).toBeUndefined();
  });
});

describe('bySipAddress', () => {
  it('finds the person by msRTCSIP-PrimaryUserAddress, the domain compared case-insensitively', async () => {
    expect(await source().bySipAddress('sip:alice@CORP.example')).toEqual(ALICE);
  });

  it('finds the person by the SIP: entry among proxyAddresses', async () => {
    expect(await source().bySipAddress('sip:bob@corp.example')).toEqual({
      e164: '+442079460958',
      sip: 'sip:bob@corp.example',
      canonical: 'bob@corp.example',
    });
  });

  it('answers undefined for an address nobody has', async () => {
    expect(await source().bySipAddress('sip:mallory@corp.example')).toBeUndefined();
  });

  it('sends filter syntax in an address escaped (RFC 4515 §3), so it matches nothing', async () => {
    // Unescaped, the SIP filter would read (msRTCSIP-PrimaryUserAddress=sip:x)(uid=alice)(cn=x@…)
    // inside its (|…) and return Alice.
    const hostile = 'sip:x)(uid=alice)(cn=x@corp.example';
    expect(await source().bySipAddress(hostile)).toBeUndefined();
    const logged = await waitFor('the search in the slapd log', async () =>
      (await slapd.log()).includes('sip:x\\29\\28uid=alice\\29\\28cn=x@corp.example') ? true : undefined,
    );
    expect(logged).toBe(true);
  });
});

describe('connection pool', () => {
  it('reuses one bound connection for sequential lookups', async () => {
    const s = source({ poolSize: 4 });
    const bindsBefore = slapd.bindCount(slapd.bindDN);
    for (let i = 0; i < 20; i++) expect((await s.byNumber('+15551234567'))?.sip).toBe(ALICE.sip);
    expect(s.poolStats()).toMatchObject({ opened: 1, discarded: 0, idle: 1, inUse: 0 });
    await waitFor('the bind in the slapd log', () => (slapd.bindCount(slapd.bindDN) > bindsBefore ? true : undefined));
    expect(slapd.bindCount(slapd.bindDN) - bindsBefore).toBe(1);
  });

  it('opens no more connections than poolSize for concurrent lookups', async () => {
    const s = source({ poolSize: 2 });
    const answers = await Promise.all(Array.from({ length: 12 }, () => s.bySipAddress('sip:bob@corp.example')));
    expect(answers.every((a) => a?.e164 === '+442079460958')).toBe(true);
    expect(s.poolStats().opened).toBeLessThanOrEqual(2);
    expect(s.poolStats()).toMatchObject({ inUse: 0, waiting: 0 });
  });
});

describe('directory trouble', () => {
  it('rejects with LDAP_UNAVAILABLE on its own, before the deadline, while the directory is stopped', async () => {
    // Not the deadline's LDAP_TIMEOUT: a refused connection fails at once.
    const s = source({ timeoutMs: 2_000 });
    await s.byNumber('+15551234567'); // a pooled connection that the stop will break
    await slapd.halt();
    const err = await rejection(s.byNumber('+15551234567', { signal: AbortSignal.timeout(5_000) }));
    expect(err).toMatchObject({ code: 'LDAP_UNAVAILABLE', retryable: true });
  });

  it('answers again once the directory is back after failing lookups', async () => {
    const s = source();
    await s.byNumber('+15551234567');
    await slapd.halt();
    await rejection(s.byNumber('+15551234567'));
    await slapd.resume();
    expect(await s.byNumber('+15551234567')).toEqual(ALICE);
  });

  it('answers again after the directory restarts between lookups, over a fresh bound connection', async () => {
    const s = source();
    await s.byNumber('+15551234567');
    await slapd.halt();
    await slapd.resume();
    // The directory refuses anonymous reads: only a re-bound connection can find Alice.
    expect(await s.byNumber('+15551234567')).toEqual(ALICE);
    expect(s.poolStats().discarded).toBeGreaterThanOrEqual(1);
  });

  it('gives up when the lookup is aborted while the directory is frozen, and leaves the pool usable', async () => {
    const s = source({ poolSize: 1 });
    await s.byNumber('+15551234567');
    await slapd.freeze();
    const err = await rejection(s.byNumber('+15551234567', { signal: AbortSignal.timeout(300) }));
    expect(err.code).toBe('LDAP_TIMEOUT');
    expect(s.poolStats()).toMatchObject({ inUse: 0, waiting: 0, discarded: 1 });
    slapd.thaw();
    expect(await s.byNumber('+15551234567')).toEqual(ALICE);
  });

  it('releases a lookup waiting for a connection when its signal aborts', async () => {
    const s = source({ poolSize: 1 });
    await s.byNumber('+15551234567');
    await slapd.freeze();
    const holder = s.byNumber('+15551234567', { signal: AbortSignal.timeout(10_000) });
    const waiter = s.byNumber('+15551234567', { signal: AbortSignal.timeout(200) });
    expect((await rejection(waiter)).code).toBe('LDAP_TIMEOUT');
    expect(s.poolStats().waiting).toBe(0);
    slapd.thaw();
    expect((await holder)?.sip).toBe(ALICE.sip);
  });

  it('does not touch the directory for an already aborted signal', async () => {
    const s = source();
    const err = await rejection(s.byNumber('+15551234567', { signal: AbortSignal.abort() }));
    expect(err.code).toBe('LDAP_TIMEOUT');
    expect(s.poolStats().opened).toBe(0);
  });

  it('refuses lookups after stop()', async () => {
    const s = source();
    await s.stop();
    expect((await rejection(s.byNumber('+15551234567'))).code).toBe('LDAP_STOPPED');
  });

  it('serves lookups again after stop() and start()', async () => {
    const s = source();
    await s.byNumber('+15551234567');
    await s.stop();
    await s.start();
    expect(await s.byNumber('+15551234567')).toEqual(ALICE);
  });
});

describe('TLS', () => {
  it('looks up over ldaps:// with the configured CA', async () => {
    const s = source({ url: slapd.tls!.url, tls: { caFile: slapd.tls!.caFile } });
    await s.start();
    expect(await s.byNumber('+15551234567')).toEqual(ALICE);
  });

  it('upgrades ldap:// with StartTLS (RFC 4511 §4.14) before binding', async () => {
    const s = source({ tls: { startTLS: true, caFile: slapd.tls!.caFile } });
    await s.start();
    expect(await s.byNumber('+15551234567')).toEqual(ALICE);
    const logged = await waitFor('the StartTLS request in the slapd log', async () =>
      (await slapd.log()).includes('EXT oid=1.3.6.1.4.1.1466.20037') ? true : undefined,
    );
    expect(logged).toBe(true);
  });

  it('refuses a server whose certificate the configured CA did not sign', async () => {
    const s = source({ tls: { startTLS: true, caFile: slapd.tls!.otherCaFile } });
    await s.start();
    const err = await rejection(s.byNumber('+15551234567'));
    expect(err.code).toBe('LDAP_UNAVAILABLE');
    expect(err.message).toMatch(/certificate/i);
  });

  it('fails start() when the CA file cannot be read', async () => {
    const s = source({ tls: { startTLS: true, caFile: `${slapd.dir}/no-such-ca.pem` } });
    expect((await rejection(s.start())).code).toBe('LDAP_CONFIG');
  });
});
