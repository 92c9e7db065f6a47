/**
 * The ENUM identity source against a real DNS server (dnsmasq) on loopback serving NAPTR
 * records: found, not found, a private suffix, the server stopped mid-test and started again,
 * and a lookup abandoned by its caller's deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/core/errors.js';
import { EnumSource, type EnumSourceConfig } from '../../src/mapping/identity/enum.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.js';

const ALICE = '+15551234567';
const ALICE_DOMAIN = '7.6.5.4.3.2.1.5.5.5.1.e164.arpa';
const BOB = '+442079460148';
const BOB_PRIVATE_DOMAIN = '8.4.1.0.6.4.9.7.0.2.4.4.enum.corp.example';
const CAROL = '+4930123456';
const CAROL_DOMAIN = '6.5.4.3.2.1.0.3.9.4.e164.arpa';
const DAVE = '+33123456789';
const DAVE_DOMAIN = '9.8.7.6.5.4.3.2.1.3.3.e164.arpa';

let dns: Dnsmasq;

beforeAll(async () => {
  dns = await startDnsmasq({
    zones: ['e164.arpa', 'enum.corp.example'],
    // Dave's name exists but holds no NAPTR records.
    txt: { [DAVE_DOMAIN]: 'no-enum-here' },
    naptr: [
      // Alice: SIP built from the number with a backref, XMPP static; plus records to skip.
      { name: ALICE_DOMAIN, order: 100, preference: 10, flags: 'u', service: 'E2U+sip', regexp: '!^\\+1(.*)$!sip:\\1@corp.example;user=phone!' },
      { name: ALICE_DOMAIN, order: 100, preference: 20, flags: 'U', service: 'E2U+xmpp', regexp: '!^.*$!xmpp:alice@chat.corp.example!' },
      { name: ALICE_DOMAIN, order: 100, preference: 5, flags: 'u', service: 'E2U+email:mailto', regexp: '!^.*$!mailto:alice@corp.example!' },
      { name: ALICE_DOMAIN, order: 50, preference: 1, flags: '', service: '', regexp: '', replacement: 'elsewhere.e164.arpa' },
      // Bob lives in the private tree only.
      { name: BOB_PRIVATE_DOMAIN, order: 100, preference: 10, flags: 'u', service: 'E2U+sip', regexp: '#^.*$#sip:bob@corp.example#' },
      // Carol has only services the bridge does not want.
      { name: CAROL_DOMAIN, order: 100, preference: 10, flags: 'u', service: 'E2U+voice:tel', regexp: '!^.*$!tel:+4930123456!' },
    ],
  });
});

afterAll(async () => {
  await dns?.stop();
});

function source(config: Partial<EnumSourceConfig> = {}): EnumSource {
  return new EnumSource({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 1500, ...config }, silentLogger());
}

async function rejection(p: Promise<unknown>): Promise<BridgeError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof BridgeError) return err;
    throw err;
  }
  throw new Error('expected the lookup to reject, it resolved');
}

describe('EnumSource against dnsmasq', () => {
  it('given E2U+sip and E2U+xmpp records, when Alice is looked up, then both addresses are found', async () => {
    const identity = await source().byNumber(ALICE);
    expect(identity).toEqual({ e164: ALICE, sip: 'sip:5551234567@corp.example', xmpp: 'alice@chat.corp.example' });
  });

  it('given the config schema shape (one `server`, a `name`), when Alice is looked up, then she is found under that name', async () => {
    const config = { type: 'enum', name: 'enum-public', server: { host: dns.host, port: dns.port }, timeoutMs: 1500 };
    const enumSource = new EnumSource(config, silentLogger());
    expect(enumSource.name).toBe('enum-public');
    expect(await enumSource.byNumber(ALICE)).toMatchObject({ sip: 'sip:5551234567@corp.example' });
  });

  it('given a DNS server named by host name, when the source is built, then it is refused (c-ares takes IPs)', () => {
    expect(() => new EnumSource({ server: { host: 'localhost', port: dns.port } }, silentLogger())).toThrow(
      /must be an IP address/,
    );
  });

  it('given only E2U+xmpp is configured, when Alice is looked up, then only the JID is found', async () => {
    const identity = await source({ services: ['E2U+xmpp'] }).byNumber(ALICE);
    expect(identity).toEqual({ e164: ALICE, xmpp: 'alice@chat.corp.example' });
  });

  it('given a private suffix, when Bob is looked up, then his record in the private tree is found', async () => {
    const identity = await source({ suffix: 'enum.corp.example' }).byNumber(BOB);
    expect(identity).toEqual({ e164: BOB, sip: 'sip:bob@corp.example' });
  });

  it('given no records for a number, when it is looked up, then the answer is undefined (NXDOMAIN)', async () => {
    expect(await source().byNumber('+15550000000')).toBeUndefined();
  });

  it('given a name without NAPTR records, when it is looked up, then the answer is undefined (NODATA)', async () => {
    expect(await source().byNumber(DAVE)).toBeUndefined();
  });

  it('given a suffix the server refuses, when a number is looked up, then the source reports itself down', async () => {
    const err = await rejection(source({ suffix: 'not-served.example' }).byNumber(ALICE));
    expect(err.code).toBe('ENUM_DNS_FAILED');
    expect(err.message).toMatch(/EREFUSED/);
  });

  it('given only unwanted services for a number, when it is looked up, then the answer is undefined', async () => {
    expect(await source().byNumber(CAROL)).toBeUndefined();
  });

  it('given a SIP address, when it is looked up, then ENUM has no answer (no reverse tree)', async () => {
    expect(await source().bySipAddress('sip:5551234567@corp.example')).toBeUndefined();
  });

  it('given a frozen server, when the caller aborts, then the lookup rejects as abandoned', async () => {
    const enumSource = source({ timeoutMs: 20_000 });
    const controller = new AbortController();
    dns.signal('SIGSTOP');
    try {
      const lookup = enumSource.byNumber(ALICE, { signal: controller.signal });
      controller.abort(new Error('chain deadline'));
      expect((await rejection(lookup)).code).toBe('ENUM_ABORTED');
    } finally {
      dns.signal('SIGCONT');
    }
  });

  it('given two lookups on a frozen server, when one is aborted, then the other still gets its answer', async () => {
    const enumSource = source({ timeoutMs: 20_000 });
    const controller = new AbortController();
    dns.signal('SIGSTOP');
    let kept: Promise<unknown>;
    try {
      const abandoned = enumSource.byNumber(ALICE, { signal: controller.signal });
      kept = enumSource.byNumber(ALICE);
      controller.abort();
      expect((await rejection(abandoned)).code).toBe('ENUM_ABORTED');
    } finally {
      dns.signal('SIGCONT');
    }
    expect(await kept).toMatchObject({ sip: 'sip:5551234567@corp.example' });
  });

  it('given a frozen server, when nothing answers within timeoutMs, then the lookup rejects as failed', async () => {
    dns.signal('SIGSTOP');
    try {
      const err = await rejection(source({ timeoutMs: 500 }).byNumber(ALICE));
      expect(err.code).toBe('ENUM_DNS_FAILED');
      expect(err.retryable).toBe(true);
    } finally {
      dns.signal('SIGCONT');
    }
  });

  it('given the server stopped mid-test, when a number is looked up, then the source reports itself down', async () => {
    const enumSource = source();
    expect(await enumSource.byNumber(ALICE)).toBeDefined();
    await dns.halt();
    try {
      const err = await rejection(enumSource.byNumber(ALICE));
      expect(err.code).toBe('ENUM_DNS_FAILED');
      expect(err.message).toMatch(/ECONNREFUSED|no answer/);
    } finally {
      await dns.restart();
    }
  });

  it('given the server restarted after a stop, when a number is looked up, then it is found again', async () => {
    const enumSource = source();
    await dns.halt();
    await expect(enumSource.byNumber(ALICE)).rejects.toThrow(BridgeError);
    await dns.restart();
    expect(await enumSource.byNumber(ALICE)).toMatchObject({ sip: 'sip:5551234567@corp.example' });
  });
});
