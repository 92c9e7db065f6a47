/**
 * Per-partner caps over real TLS, the whole bridge (issue 6 item 5): `createBridge` with three
 * SIP partners, Prosody behind the component, and each partner a Node TLS client with its own
 * certificate made for the run.
 *
 * - acme (maxConnections 2): a third connection at once is closed before any SIP is read, while
 *   beta's still works, and a place freed by a close is taken again.
 * - gamma (maxSubscriptions 3): three SUBSCRIBEs of its watchers are taken, the fourth refused
 *   503 with Retry-After, while a refresh of one it holds, and a new dialog of a watcher already
 *   subscribed, are still taken.
 * - An XMPP partner (jabber, maxSubscriptions 2): its users' requests to watch SIP users, which
 *   the SIP adapter's subscriber role carries to a real Kamailio presence server, are refused
 *   with resource-constraint past the cap; a repeated request for a pair it holds is not.
 * - Scaled out (a Redis subscription store): two SIP edges share one count per partner.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { PartnerSubscriptions } from '../../src/adapters/sip/presence/partner-cap.js';
import { createBridge, type BridgeWithIdentities } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { sipSchema } from '../../src/config/schema.js';
import { subscriptionEvent, type Address } from '../../src/core/events.js';
import { FederationPolicy } from '../../src/core/policy/federation.js';
import { PartnerRegistry, partnersSchema } from '../../src/core/policy/partners.js';
import { MemorySubscriptionStore } from '../../src/core/state/memory-subscriptions.js';
import { RedisSubscriptionStore } from '../../src/core/state/redis-subscriptions.js';
import type { SubscriptionRecord } from '../../src/core/state/subscriptions.js';
import { startKamailioPresence, type KamailioPresence } from '../support/kamailio-presence.js';
import { freePort, waitFor } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { header, newBranch, statusOf } from '../support/raw-sip.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { createTestCa, type IssuedCert, type TestCa } from '../support/test-ca.js';
import { recordingLogger } from '../support/recording-logger.js';
import { SipTlsPeer } from '../support/sip-tls-peer.js';

const XMPP_DOMAIN = 'xmpp.test';
const GAMMA_MAX_SUBSCRIPTIONS = 3;

let ca: TestCa;
let bridgeCert: IssuedCert;
let acmeCert: IssuedCert;
let betaCert: IssuedCert;
let gammaCert: IssuedCert;
let prosody: Prosody;
let bridge: BridgeWithIdentities;
let bridgePort: number;
const log = recordingLogger();
const connections: PartnerConnection[] = [];

beforeAll(async () => {
  ca = createTestCa('Caps Test CA');
  bridgeCert = ca.issue('bridge', { cn: 'localhost', dns: ['localhost'] });
  // RFC 5922 §7.1: a sip: URI without a user part is the certificate's SIP domain identity.
  acmeCert = ca.issue('acme', { cn: 'acme', uris: ['sip:acme.example'] });
  betaCert = ca.issue('beta', { cn: 'beta', uris: ['sip:beta.example'] });
  gammaCert = ca.issue('gamma', { cn: 'gamma', uris: ['sip:gamma.example'] });
  prosody = await startProsody({ domain: XMPP_DOMAIN, component: `sip.${XMPP_DOMAIN}`, users: { juliet: 'juliet-pass' } });
  bridgePort = await freePort();
  const config = parseConfig({
    sip: {
      listen: [{ transport: 'tls', host: '127.0.0.1', port: bridgePort }],
      advertisedHost: 'localhost',
      timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
      tls: { cert: bridgeCert.certFile, key: bridgeCert.keyFile, ca: ca.caFile, requireClientCert: true },
    },
    xmpp: {
      component: prosody.component,
      server: { host: prosody.host, port: prosody.componentPort },
      secret: prosody.secret,
      reconnect: { initialMs: 100, maxMs: 1000 },
    },
    mapping: { xmppDomains: [prosody.domain], sipDomains: ['corp.example'] },
    queue: { maxAttempts: 3, backoffMs: 100 },
    federation: {
      mode: 'closed',
      partners: [
        { name: 'acme', side: 'sip', domains: ['acme.example'], trust: { certificateNames: ['acme.example'] }, limits: { maxConnections: 2 } },
        { name: 'beta', side: 'sip', domains: ['beta.example'], trust: { certificateNames: ['beta.example'] }, limits: { maxConnections: 2 } },
        {
          name: 'gamma',
          side: 'sip',
          domains: ['gamma.example'],
          trust: { certificateNames: ['gamma.example'] },
          // The token bucket lets every request of the test through: what refuses is the cap.
          limits: { maxSubscriptions: GAMMA_MAX_SUBSCRIPTIONS, subscriptionsPerSecond: 100 },
        },
      ],
    },
  });
  bridge = createBridge(config, log.logger);
  await bridge.start();
}, 60_000);

afterAll(async () => {
  for (const c of connections) c.close();
  await bridge?.stop();
  await prosody?.stop();
  ca?.remove();
});

describe('limits.maxConnections: connections of one partner at once, per SIP edge', () => {
  it('closes a partner’s third connection before any SIP is read, and audits it once', async () => {
    const first = await PartnerConnection.open(acmeCert);
    const second = await PartnerConnection.open(acmeCert);
    expect(statusOf(await first.send({ method: 'OPTIONS' }))).toBe(200);
    expect(statusOf(await second.send({ method: 'OPTIONS' }))).toBe(200);

    const third = await PartnerConnection.open(acmeCert);
    third.write(requestText({ method: 'OPTIONS' }).text);
    await waitFor('the third acme connection to be closed by the bridge', () => third.closed);
    expect(third.responses).toEqual([]);

    const denials = await waitFor('the audit line', () => {
      const found = log.lines().filter((l) => l.audit === 'denial' && l.rule === 'partner-connections');
      return found.length > 0 ? found : undefined;
    });
    expect(denials).toHaveLength(1);
    expect(denials[0]).toMatchObject({ what: 'connection', partner: 'acme', reason: 'partner acme limits.maxConnections: 2 of 2 open' });
    expect(denials[0]!.who).toMatch(/^acme 127\.0\.0\.1 acme\.example$/);

    // The two it holds are untouched.
    expect(statusOf(await first.send({ method: 'OPTIONS' }))).toBe(200);
    expect(statusOf(await second.send({ method: 'OPTIONS' }))).toBe(200);
  });

  it('still takes another partner’s connection while acme is at its limit', async () => {
    const beta = await PartnerConnection.open(betaCert);
    expect(statusOf(await beta.send({ method: 'OPTIONS' }))).toBe(200);
  });

  it('gives a place back when a connection closes', async () => {
    const open = connections.filter((c) => c.cert === acmeCert && !c.closed);
    expect(open).toHaveLength(2);
    open[0]!.close();
    // The bridge learns of the close a moment later: until then a new one may still be refused.
    const again = await waitFor('a new acme connection to be taken', async () => {
      const conn = await PartnerConnection.open(acmeCert);
      const answered = await conn.send({ method: 'OPTIONS' }, 2_000).catch(() => undefined);
      if (answered !== undefined && statusOf(answered) === 200) return conn;
      conn.close();
      return undefined;
    });
    expect(again.closed).toBe(false);
  });
});

describe('limits.maxSubscriptions: subscriptions held for a partner’s watchers', () => {
  it('takes N new subscriptions, refuses the next with 503 and Retry-After, and still takes refreshes and re-subscribes', async () => {
    const gamma = await PartnerConnection.open(gammaCert);
    const accepted: string[] = [];
    for (let i = 1; i <= GAMMA_MAX_SUBSCRIPTIONS; i++) {
      const ok = await gamma.send(subscribe(`w${i}@gamma.example`));
      expect(statusOf(ok)).toBe(200);
      accepted.push(ok);
    }

    const refused = await gamma.send(subscribe(`w${GAMMA_MAX_SUBSCRIPTIONS + 1}@gamma.example`));
    expect(statusOf(refused)).toBe(503);
    // RFC 3261 §21.5.4: the watcher may come back later.
    expect(Number(header(refused, 'Retry-After'))).toBeGreaterThan(0);
    const denial = await waitFor('the audit line', () => log.lines().find((l) => l.audit === 'denial' && l.rule === 'partner-subscriptions'));
    expect(denial).toMatchObject({
      what: 'subscription',
      partner: 'gamma',
      who: `gamma w${GAMMA_MAX_SUBSCRIPTIONS + 1}@gamma.example`,
      reason: `partner gamma limits.maxSubscriptions: ${GAMMA_MAX_SUBSCRIPTIONS} of ${GAMMA_MAX_SUBSCRIPTIONS} held`,
    });

    // RFC 6665 §4.1.2.2: a refresh in the dialog of one it holds is taken at the cap.
    const refreshed = await gamma.send(refreshOf(accepted[0]!));
    expect(statusOf(refreshed)).toBe(200);
    expect(header(refreshed, 'Expires')).toBe('600');
    // Ending one frees a place for a new watcher of gamma, which fills the cap again.
    expect(statusOf(await gamma.send(refreshOf(accepted[2]!, 0)))).toBe(200);
    expect(statusOf(await gamma.send(subscribe(`w${GAMMA_MAX_SUBSCRIPTIONS + 1}@gamma.example`)))).toBe(200);
    expect(statusOf(await gamma.send(subscribe(`w${GAMMA_MAX_SUBSCRIPTIONS + 2}@gamma.example`)))).toBe(503);
    // A new dialog of a watcher already subscribed to the same presentity (re-subscribing
    // before its old dialog ends) keeps what the pair has: taken at the cap.
    expect(statusOf(await gamma.send(subscribe('w2@gamma.example')))).toBe(200);
    // Another partner's watchers are not held back by gamma's cap.
    const beta = await PartnerConnection.open(betaCert);
    expect(statusOf(await beta.send(subscribe('w1@beta.example')))).toBe(200);
  });
});

describe('limits.maxSubscriptions for an XMPP partner’s users watching SIP users', () => {
  let kamailio: KamailioPresence;
  let adapter: SipAdapter;
  const store = new MemorySubscriptionStore({ maxRecords: 100 });
  const policy = new FederationPolicy({
    registry: new PartnerRegistry(partnersSchema.parse({ partners: [{ name: 'jabber', side: 'xmpp', domains: ['jabber.example'], limits: { maxSubscriptions: 2 } }] })),
    local: { sip: ['presence.example.org'], xmpp: ['xmpp.test'] },
  });
  beforeAll(async () => {
    kamailio = await startKamailioPresence();
    const config = sipSchema.parse({
      listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }],
      outboundProxy: kamailio.uri('udp'),
      timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
    });
    adapter = new SipAdapter(config, { onEvent: () => Promise.resolve() }, log.logger, { subscriptions: store, partnerOf: policy.sipAdapterCaps().partnerOf });
    await adapter.start();
  }, 30_000);
  afterAll(async () => {
    await adapter?.stop();
    await kamailio?.stop();
  });

  /** An XMPP user's request to watch a SIP user, as the router hands it to the SIP adapter. */
  const watch = (user: string, domain: string, presentity: string): Promise<void> => {
    const from: Address = { side: 'sip', user, domain };
    const to: Address = { side: 'sip', user: presentity, domain: 'presence.example.org' };
    return adapter.send(subscriptionEvent({ origin: 'xmpp', from, to, action: 'subscribe', dedupeKey: randomBytes(8).toString('hex'), createdAt: Date.now() }));
  };

  it('holds two SIP subscriptions for jabber’s users, refuses a third with resource-constraint, and answers a repeated one', async () => {
    await watch('anna', 'jabber.example', 'bob');
    await watch('ben', 'jabber.example', 'bob');
    expect(await store.countByPartner('jabber')).toBe(2);

    await expect(watch('cleo', 'jabber.example', 'bob')).rejects.toMatchObject({
      code: 'PARTNER_SUBSCRIPTIONS_FULL',
      condition: 'resource-constraint',
      retryable: false,
    });
    // A request for a pair it holds already is answered from what is known, not refused.
    await watch('anna', 'jabber.example', 'bob');
    // Our own XMPP users are not jabber's: they are not counted against its cap.
    await watch('juliet', 'xmpp.test', 'bob');
    expect(await store.countByPartner('jabber')).toBe(2);
    expect((await store.list('subscriber', 10)).map((r) => r.partner ?? 'ours').sort()).toEqual(['jabber', 'jabber', 'ours']);
  });
});

describe('limits.maxSubscriptions across SIP edges sharing a Redis subscription store', () => {
  let redis: RedisServer;
  let admin: Redis;
  const stores: RedisSubscriptionStore[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await admin?.quit();
    await redis?.close();
  });
  const edge = (prefix: string): RedisSubscriptionStore => {
    // A record Redis is left to expire goes two seconds after its expiry.
    const store = new RedisSubscriptionStore({ connection: redis.url, prefix, maxRecords: 1000, ttlGraceMs: 2000 });
    stores.push(store);
    return store;
  };
  const record = (id: string, watcher: string, expiresAt = Date.now() + 600_000): SubscriptionRecord => ({
    id,
    role: 'notifier',
    watcher,
    presentity: 'juliet@xmpp.test',
    state: 'pending',
    expiresAt,
    data: null,
    partner: 'gamma',
  });
  const watcher = (user: string) => ({ side: 'sip' as const, user, domain: 'gamma.example' });

  it('refuses on one edge what the partner holds through another, and counts a record Redis expired no more', async () => {
    const prefix = redis.prefix();
    const [one, two] = [edge(prefix), edge(prefix)];
    const partnerOf = () => ({ name: 'gamma', maxSubscriptions: 2 });
    const capsOne = new PartnerSubscriptions(one, partnerOf, log.logger);
    const capsTwo = new PartnerSubscriptions(two, partnerOf, log.logger);
    for (const [user, expiresAt] of [['w1', Date.now()], ['w2', undefined]] as const) {
      const admission = await capsOne.admit('sip', watcher(user));
      await one.put(record(`ntf:${user}`, `${user}@gamma.example`, expiresAt));
      admission.release();
    }
    expect(await two.countByPartner('gamma')).toBe(2);
    await expect(capsTwo.admit('sip', watcher('w3'))).rejects.toMatchObject({ code: 'PARTNER_SUBSCRIPTIONS_FULL', sipStatus: 503 });

    // Nobody takes w1 when it expires (no expiry scheduler here): Redis drops it after the
    // grace, and its place is free.
    await waitFor('Redis to expire w1', async () => ((await admin.exists(`${prefix}:rec:ntf:w1`)) === 0 ? true : undefined));
    const admission = await capsTwo.admit('sip', watcher('w3'));
    expect(admission.partner).toBe('gamma');
    admission.release();
    expect(await admin.zrange(`${prefix}:partner:gamma`, '0', '-1')).toEqual(['ntf:w2']);
    // The partner's set lives no longer than the records it holds need.
    expect(await admin.pttl(`${prefix}:partner:gamma`)).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Helpers


interface Outgoing {
  method: string;
  /** `user@domain` of the sender. */
  from?: string;
  /** `user@domain` of the recipient: To and the Request-URI. */
  to?: string;
  headers?: string[];
  /** For a request inside a dialog. */
  callId?: string;
  fromTag?: string;
  toTag?: string;
  cseq?: number;
}

function requestText(o: Outgoing): { text: string; callId: string } {
  const to = o.to ?? 'juliet@xmpp.test';
  const from = o.from ?? 'keepalive@partner.example';
  const callId = o.callId ?? `${randomBytes(8).toString('hex')}@partner.test`;
  const lines = [
    `${o.method} sip:${to} SIP/2.0`,
    `Via: SIP/2.0/TLS 127.0.0.1:9;branch=${newBranch()};rport`,
    'Max-Forwards: 70',
    `From: <sip:${from}>;tag=${o.fromTag ?? randomBytes(4).toString('hex')}`,
    `To: <sip:${to}>${o.toTag === undefined ? '' : `;tag=${o.toTag}`}`,
    `Call-ID: ${callId}`,
    `CSeq: ${o.cseq ?? 1} ${o.method}`,
    ...(o.headers ?? []),
    'Content-Length: 0',
    '',
    '',
  ];
  return { text: lines.join('\r\n'), callId };
}

/** A new SUBSCRIBE for juliet's presence (RFC 3856), out of any dialog. */
function subscribe(watcher: string): Outgoing {
  return {
    method: 'SUBSCRIBE',
    from: watcher,
    headers: [`Contact: <sip:${watcher.split('@')[0] ?? 'w'}@127.0.0.1:9;transport=tls>`, 'Event: presence', 'Accept: application/pidf+xml', 'Expires: 600'],
  };
}

/** The next SUBSCRIBE in the dialog a 200 to a SUBSCRIBE made (RFC 6665 §4.1.2.2): a refresh, or with 0 the end. */
function refreshOf(ok: string, expires = 600): Outgoing {
  const tag = (name: string) => /;tag=([^;>\s]+)/.exec(header(ok, name) ?? '')?.[1];
  const from = /<sip:([^>]+)>/.exec(header(ok, 'From') ?? '')?.[1];
  const cseq = Number((header(ok, 'CSeq') ?? '1').split(' ')[0]);
  const callId = header(ok, 'Call-ID');
  const fromTag = tag('From');
  const toTag = tag('To');
  if (from === undefined || callId === undefined || fromTag === undefined || toTag === undefined) throw new Error(`not a dialog-making 200:\n${ok}`);
  return {
    ...subscribe(from),
    callId,
    fromTag,
    toTag,
    cseq: cseq + 1,
    headers: [`Contact: <sip:w@127.0.0.1:9;transport=tls>`, 'Event: presence', 'Accept: application/pidf+xml', `Expires: ${expires}`],
  };
}


/** A partner's TLS connection to the bridge with its client certificate (kept for the connection-cap cases). */
class PartnerConnection extends SipTlsPeer {
  private constructor(
    socket: TLSSocket,
    readonly cert: IssuedCert,
  ) {
    super(socket);
  }

  static async open(cert: IssuedCert): Promise<PartnerConnection> {
    const conn = await SipTlsPeer.connect({ port: bridgePort, ca: ca.caCert, cert: cert.cert, key: cert.key }, (socket) => new PartnerConnection(socket, cert));
    connections.push(conn);
    return conn;
  }

  /** Sends a request; resolves with its final response. */
  send(o: Outgoing, timeoutMs?: number): Promise<string> {
    return this.request(requestText(o).text, timeoutMs);
  }
}

