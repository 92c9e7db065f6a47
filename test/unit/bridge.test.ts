/**
 * The bridge's own logic with in-process adapters (the protocol adapters are proven against
 * real peers in test/integration): routing, failure back to the sender, holding events while
 * an adapter is away.
 */
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import type { Adapter, AdapterHooks } from '../../src/core/adapter.js';
import { Bridge } from '../../src/core/bridge.js';
import { BridgeError } from '../../src/core/errors.js';
import {
  messageEvent,
  presenceEvent,
  probeEvent,
  subscriptionEvent,
  type Address,
  type CanonicalEvent,
  type Side,
  type SubscriptionAction,
} from '../../src/core/events.js';
import { FederationPolicy } from '../../src/core/policy/federation.js';
import { NumberRanges } from '../../src/core/policy/number-ranges.js';
import { PartnerRegistry, partnersSchema } from '../../src/core/policy/partners.js';
import { PresenceVisibility } from '../../src/core/policy/presence-visibility.js';
import { MemoryQueue } from '../../src/core/queue/memory.js';
import type { Consumer, ConsumerOptions, JobHandler } from '../../src/core/queue/queue.js';
import { MemoryDeliveryLog, type DeliveryLog } from '../../src/core/state/delivered.js';
import { createTracing, type BridgeTracing } from '../../src/telemetry/tracing.js';
import { Router } from '../../src/core/router.js';
import { AddressTranslator } from '../../src/mapping/address.js';
import type { IdentitySource } from '../../src/mapping/identity-source.js';
import { IdentityChain } from '../../src/mapping/identity/chain.js';
import { StaticSource } from '../../src/mapping/identity/static.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { AuditLog } from '../../src/core/audit.js';
import { waitFor } from '../support/ports.js';

/** An adapter that records what the bridge hands it and fails on demand. */
class RecordingAdapter implements Adapter {
  readonly sent: CanonicalEvent[] = [];
  failWith: BridgeError | undefined;
  constructor(
    readonly side: Side,
    readonly hooks: AdapterHooks,
  ) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async send(event: CanonicalEvent): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.sent.push(event);
  }
}

const COMPONENT = 'sip.xmpp.test';

function chainOf(...sources: IdentitySource[]): IdentityChain {
  return new IdentityChain({ sources, logger: silentLogger(), sourceTimeoutMs: 500, cache: { ttlMs: 60_000, negativeTtlMs: 1000, maxEntries: 10 } });
}

/** Alice's number in a static source: the chain every test routes numbers through unless it brings its own. */
function aliceOnly(): IdentitySource {
  return chainOf(new StaticSource({ name: 'static', rows: [{ e164: '+15551234567', sip: 'sip:alice@corp.example' }], logger: silentLogger() }));
}

function build(
  routing: { identities?: IdentitySource; defaultRegion?: string; visibility?: PresenceVisibility; federation?: FederationPolicy; ownNumbers?: NumberRanges; audit?: AuditLog } = {},
) {
  const logger = silentLogger();
  const queue = new MemoryQueue({ maxAttempts: 3, backoffMs: 5, maxBackoffMs: 20, maxPending: 100 });
  const translator = new AddressTranslator({ componentDomain: COMPONENT, xmppDomains: ['xmpp.test'] });
  const router = new Router({ translator, queue, logger, ...routing, identities: routing.identities ?? aliceOnly() });
  const adapters = {} as Record<Side, RecordingAdapter>;
  const bridge = new Bridge({
    queue,
    router,
    logger,
    drainTimeoutMs: 100,
    createAdapter: (side, hooks) => (adapters[side] = new RecordingAdapter(side, hooks)),
  });
  return { bridge, adapters };
}

const fromJuliet = (to: string, body = 'hello', id = 'm1') =>
  messageEvent({
    origin: 'xmpp',
    from: { side: 'xmpp', user: 'juliet', domain: 'xmpp.test', resource: 'balcony' },
    to: { side: 'xmpp', user: to, domain: COMPONENT },
    body,
    dedupeKey: `xmpp:juliet@xmpp.test:${id}`,
    originRef: id,
    createdAt: 0,
  });

const fromAlice = (user: string, domain: string) =>
  messageEvent({
    origin: 'sip',
    from: { side: 'sip', user: 'alice', domain: 'corp.example' },
    to: { side: 'sip', user, domain },
    body: 'from SIP',
    dedupeKey: `sip:call-1:1:tag-${user}@${domain}`,
    originRef: 'call-1',
    createdAt: 0,
  });

describe('bridge', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  it('delivers an XMPP message for a number to the mapped SIP user', async () => {
    const { bridge, adapters } = build();
    await bridge.start();
    stop = () => bridge.stop();

    await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'Hi Alice'));

    const [delivered] = await waitFor('SIP delivery', () => (adapters.sip.sent.length ? adapters.sip.sent : undefined));
    expect(delivered).toMatchObject({
      kind: 'message',
      body: 'Hi Alice',
      to: { side: 'sip', user: 'alice', domain: 'corp.example' },
      from: { side: 'sip', user: 'juliet', domain: 'xmpp.test' },
    });
  });

  it('delivers a repeated message (same dedupe key) once', async () => {
    const { bridge, adapters } = build();
    await bridge.start();
    stop = () => bridge.stop();

    await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'once', 'same-id'));
    await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'once', 'same-id'));
    await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'marker', 'next-id'));

    await waitFor('marker delivered', () => adapters.sip.sent.some((e) => e.kind === 'message' && e.body === 'marker') || undefined);
    expect(adapters.sip.sent.map((e) => (e.kind === 'message' ? e.body : e.kind))).toEqual(['once', 'marker']);
  });

  it('delivers once when a copy arrives while the first is still being looked up', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: IdentitySource = {
      name: 'slow',
      byNumber: async () => {
        await gate;
        return { e164: '+15551234567', sip: 'sip:alice@corp.example' };
      },
      bySipAddress: async () => undefined,
    };
    const { bridge, adapters } = build({ identities: slow });
    await bridge.start();
    stop = () => bridge.stop();

    const first = adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'once', 'same-id'));
    const copy = adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'once', 'same-id'));
    release();
    await Promise.all([first, copy]);
    await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'marker', 'next-id'));

    await waitFor('marker delivered', () => adapters.sip.sent.some((e) => e.kind === 'message' && e.body === 'marker') || undefined);
    expect(adapters.sip.sent.map((e) => (e.kind === 'message' ? e.body : e.kind))).toEqual(['once', 'marker']);
  });

  it('does not absorb the resend of a message that was refused (it is asked again, not taken as a repeat)', async () => {
    const { bridge, adapters } = build({ identities: { name: 'down', byNumber: async () => Promise.reject(new Error('down')), bySipAddress: async () => undefined } });
    await bridge.start();
    stop = () => bridge.stop();

    await expect(adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'retry me', 'r-1'))).rejects.toBeDefined();
    await expect(adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'retry me', 'r-1'))).rejects.toBeDefined();
  });

  it('refuses an unmapped number at once, before anything is queued', async () => {
    const { bridge, adapters } = build();
    await bridge.start();
    stop = () => bridge.stop();

    await expect(adapters.xmpp.hooks.onEvent(fromJuliet('+15550000000'))).rejects.toMatchObject({ condition: 'item-not-found' });
  });

  it('turns a SIP rejection into a failure back to the XMPP sender, in her own terms', async () => {
    const { bridge, adapters } = build();
    await bridge.start();
    stop = () => bridge.stop();
    adapters.sip.failWith = new BridgeError('SIP_REJECTED', '486 Busy Here', { condition: 'recipient-unavailable', sipStatus: 486, retryable: false });

    const original = fromJuliet('+15551234567', 'are you there?', 'stanza-7');
    await adapters.xmpp.hooks.onEvent(original);

    const [failure] = await waitFor('failure back', () => (adapters.xmpp.sent.length ? adapters.xmpp.sent : undefined));
    expect(failure).toMatchObject({
      kind: 'failure',
      ref: expect.any(String),
      condition: 'recipient-unavailable',
      sipStatus: 486,
      originRef: 'stanza-7',
      // Back from the address she wrote to, to her full JID.
      from: { side: 'xmpp', user: '+15551234567', domain: COMPONENT },
      to: { side: 'xmpp', user: 'juliet', domain: 'xmpp.test', resource: 'balcony' },
    });
  });

  it('delivers a SIP message for an XMPP user, from the escaped SIP address', async () => {
    const { bridge, adapters } = build();
    await bridge.start();
    stop = () => bridge.stop();

    await adapters.sip.hooks.onEvent(fromAlice('romeo', 'xmpp.test'));

    const [delivered] = await waitFor('XMPP delivery', () => (adapters.xmpp.sent.length ? adapters.xmpp.sent : undefined));
    expect(delivered).toMatchObject({
      kind: 'message',
      to: { side: 'xmpp', user: 'romeo', domain: 'xmpp.test' },
      from: { side: 'xmpp', user: 'alice\\40corp.example', domain: COMPONENT },
    });
  });

  it('refuses a SIP message for a domain it does not serve with item-not-found / 404', async () => {
    const { bridge, adapters } = build();
    await bridge.start();
    stop = () => bridge.stop();

    await expect(adapters.sip.hooks.onEvent(fromAlice('bob', 'elsewhere.example'))).rejects.toMatchObject({
      condition: 'item-not-found',
      sipStatus: 404,
    });
  });

  it('holds events while an adapter is unavailable and delivers them when it is back', async () => {
    const { bridge, adapters } = build();
    await bridge.start();
    stop = () => bridge.stop();
    adapters.sip.hooks.onAvailability?.(false);

    await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'while away'));
    await new Promise<void>((r) => setImmediate(r));
    expect(adapters.sip.sent).toEqual([]);

    adapters.sip.hooks.onAvailability?.(true);
    await waitFor('delivery after return', () => adapters.sip.sent.length === 1 || undefined);
    expect(adapters.sip.sent[0]).toMatchObject({ body: 'while away' });
  });

  it('takes nothing new once stop() has begun, with 503 / service-unavailable, and still delivers what it took', async () => {
    const { bridge, adapters } = build();
    await bridge.start();
    await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'taken before stop'));
    const stopped = bridge.stop();
    await expect(adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'too late', 'late'))).rejects.toMatchObject({
      code: 'BRIDGE_STOPPING',
      condition: 'service-unavailable',
      sipStatus: 503,
      retryable: true,
    });
    await stopped;
    expect(adapters.sip.sent).toMatchObject([{ body: 'taken before stop' }]);
  });

  it('keeps one conversation in order', async () => {
    const { bridge, adapters } = build();
    await bridge.start();
    stop = () => bridge.stop();

    for (let i = 0; i < 50; i++) await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', `n${i}`, `id${i}`));

    await waitFor('all fifty', () => adapters.sip.sent.length === 50 || undefined);
    expect(adapters.sip.sent.map((e) => (e.kind === 'message' ? e.body : ''))).toEqual(Array.from({ length: 50 }, (_, i) => `n${i}`));
  });
});

describe('bridge with the identity chain', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  /** A directory that is down, then a table that knows Carol under a national spelling of her number. */
  async function started() {
    const down: IdentitySource = { name: 'ldap', byNumber: () => Promise.reject(new Error('connection refused')), bySipAddress: () => Promise.resolve(undefined) };
    const table = new StaticSource({ name: 'static', rows: [{ e164: '(555) 987-6543', sip: 'sip:carol@corp.example' }], defaultRegion: 'US', logger: silentLogger() });
    const chain = chainOf(down, table);
    const built = build({ identities: chain, defaultRegion: 'US' });
    await built.bridge.start();
    stop = () => built.bridge.stop();
    return { ...built, chain };
  }

  it('delivers a message for a number only the second source knows, past the one that is down', async () => {
    const { adapters, chain } = await started();
    await adapters.xmpp.hooks.onEvent(fromJuliet('+15559876543', 'Hi Carol'));
    const [delivered] = await waitFor('SIP delivery', () => (adapters.sip.sent.length ? adapters.sip.sent : undefined));
    expect(delivered).toMatchObject({ body: 'Hi Carol', to: { side: 'sip', user: 'carol', domain: 'corp.example' } });
    expect(chain.health()[0]).toMatchObject({ source: 'ldap', ok: false });
  });

  it('normalises a national spelling in the localpart with the default region', async () => {
    const { adapters } = await started();
    await adapters.xmpp.hooks.onEvent(fromJuliet('5559876543', 'national'));
    const [delivered] = await waitFor('SIP delivery', () => (adapters.sip.sent.length ? adapters.sip.sent : undefined));
    expect(delivered).toMatchObject({ to: { user: 'carol', domain: 'corp.example' } });
  });

  it('says "try later", not "no such person", for a number unknown while a source is down', async () => {
    const { adapters } = await started();
    await expect(adapters.xmpp.hooks.onEvent(fromJuliet('+15550000000'))).rejects.toMatchObject({
      code: 'IDENTITY_SOURCES_DOWN',
      condition: 'remote-server-timeout',
      retryable: true,
    });
  });

  it('refuses a number every source says it does not know with item-not-found', async () => {
    const table = new StaticSource({ name: 'static', rows: [], defaultRegion: 'US', logger: silentLogger() });
    const chain = chainOf(table);
    const { bridge, adapters } = build({ identities: chain, defaultRegion: 'US' });
    await bridge.start();
    stop = () => bridge.stop();
    await expect(adapters.xmpp.hooks.onEvent(fromJuliet('+15550000000'))).rejects.toMatchObject({ code: 'ADDRESS_UNMAPPED', condition: 'item-not-found' });
  });

  it('refuses a localpart that is no number with jid-malformed, saying why', async () => {
    const { adapters } = await started();
    await expect(adapters.xmpp.hooks.onEvent(fromJuliet('+1555'))).rejects.toMatchObject({ code: 'NUMBER_INVALID', condition: 'jid-malformed' });
  });

  it('still reaches an escaped SIP address without asking the sources', async () => {
    const { adapters } = await started();
    await adapters.xmpp.hooks.onEvent(fromJuliet('dave\\40corp.example', 'direct'));
    const [delivered] = await waitFor('SIP delivery', () => (adapters.sip.sent.length ? adapters.sip.sent : undefined));
    expect(delivered).toMatchObject({ to: { user: 'dave', domain: 'corp.example' } });
  });
});

describe('bridge: numbers from SIP', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  /** Jane's number knows her XMPP account; Mallory's points at a domain the bridge does not serve. */
  async function started() {
    const rows = [
      { e164: '+442079460958', sip: 'sip:jane.doe@corp.example', xmpp: 'JDoe@xmpp.test' },
      { e164: '+442079460959', sip: 'sip:mallory@corp.example', xmpp: 'mallory@elsewhere.example' },
    ];
    const table = new StaticSource({ name: 'static', rows, logger: silentLogger() });
    const chain = chainOf(table);
    const built = build({ identities: chain, defaultRegion: 'GB' });
    await built.bridge.start();
    stop = () => built.bridge.stop();
    return built;
  }

  const toNumber = (user: string, from: { user: string; domain: string; telephone?: true } = { user: 'alice', domain: 'corp.example' }) =>
    messageEvent({
      origin: 'sip',
      from: { side: 'sip', ...from },
      to: { side: 'sip', user, domain: '', telephone: true },
      body: 'to a number',
      dedupeKey: `sip:call-n:1:${user}:${from.user}`,
      createdAt: 0,
    });

  it.each([
    ['+442079460958', 'a tel: URI in E.164'],
    ['+44 20 7946 0958', 'with visual separators'],
    ['020 7946 0958', 'national spelling, default region GB'],
  ])('delivers a MESSAGE for %s (%s) to the XMPP user the identity chain names, prepared', async (number) => {
    const { adapters } = await started();
    await adapters.sip.hooks.onEvent(toNumber(number));
    const [delivered] = await waitFor('XMPP delivery', () => (adapters.xmpp.sent.length ? adapters.xmpp.sent : undefined));
    expect(delivered).toMatchObject({ to: { side: 'xmpp', user: 'jdoe', domain: 'xmpp.test' } });
  });

  it('shows a sender with a number as +E.164@<component>, the JID XMPP users write numbers to', async () => {
    const { adapters } = await started();
    await adapters.sip.hooks.onEvent(toNumber('+442079460958', { user: '+44 20 7946 0958', domain: 'corp.example', telephone: true }));
    const [delivered] = await waitFor('XMPP delivery', () => (adapters.xmpp.sent.length ? adapters.xmpp.sent : undefined));
    expect(delivered).toMatchObject({ from: { side: 'xmpp', user: '+442079460958', domain: COMPONENT } });
  });

  it('keeps the SIP address of a sender whose number is not E.164 (an extension)', async () => {
    const { adapters } = await started();
    await adapters.sip.hooks.onEvent(toNumber('+442079460958', { user: '12', domain: 'corp.example', telephone: true }));
    const [delivered] = await waitFor('XMPP delivery', () => (adapters.xmpp.sent.length ? adapters.xmpp.sent : undefined));
    expect(delivered).toMatchObject({ from: { user: '12\\40corp.example', domain: COMPONENT } });
  });

  it.each([
    ['+442079460000', 'ADDRESS_UNMAPPED', 404, 'a number nobody knows'],
    ['+442079460959', 'ADDRESS_UNMAPPED', 404, 'a number whose XMPP user is on a domain the bridge does not serve'],
    ['+44', 'NUMBER_INVALID', 484, 'an incomplete number (RFC 3261 §21.4.22)'],
  ])('refuses %s with %s / %i: %s', async (number, code, sipStatus) => {
    const { adapters } = await started();
    await expect(adapters.sip.hooks.onEvent(toNumber(number))).rejects.toMatchObject({ code, sipStatus });
  });
});


describe('bridge: presence under the visibility policy', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  async function started(visible: string[]) {
    const built = build({ visibility: new PresenceVisibility(visible) });
    await built.bridge.start();
    stop = () => built.bridge.stop();
    return built;
  }

  const juliet: Address = { side: 'xmpp', user: 'juliet', domain: 'xmpp.test', resource: 'balcony' };
  const romeo: Address = { side: 'xmpp', user: 'romeo', domain: 'xmpp.test' };
  const aliceOnXmpp: Address = { side: 'xmpp', user: 'alice\\40corp.example', domain: COMPONENT };
  const alice: Address = { side: 'sip', user: 'alice', domain: 'corp.example' };
  const julietOnSip: Address = { side: 'sip', user: 'juliet', domain: 'xmpp.test' };
  let n = 0;
  const base = (origin: Side, from: Address, to: Address) => ({ origin, from, to, dedupeKey: `k${++n}`, createdAt: 0 });
  const subscription = (action: SubscriptionAction, origin: Side, from: Address, to: Address) => subscriptionEvent({ ...base(origin, from, to), action });

  /** Hands events in and says which of them reached the other side (a marker message proves the rest were dropped). */
  async function crossing(adapters: Record<Side, RecordingAdapter>, events: CanonicalEvent[], side: Side): Promise<CanonicalEvent[]> {
    const origin: Side = side === 'sip' ? 'xmpp' : 'sip';
    for (const e of events) await adapters[origin].hooks.onEvent(e);
    const marker = side === 'sip' ? fromJuliet('+15551234567', 'marker', `marker${++n}`) : fromAlice('romeo', 'xmpp.test');
    await adapters[origin].hooks.onEvent(marker);
    await waitFor('marker', () => adapters[side].sent.some((e) => e.kind === 'message') || undefined);
    return adapters[side].sent.filter((e) => e.kind !== 'message');
  }

  it('carries a SIP watcher\'s subscription to a visible XMPP user, translated', async () => {
    const { adapters } = await started(['juliet@xmpp.test']);
    const [sent] = await crossing(adapters, [subscription('subscribe', 'sip', alice, julietOnSip)], 'xmpp');
    expect(sent).toMatchObject({ kind: 'subscription', action: 'subscribe', from: aliceOnXmpp, to: { user: 'juliet', domain: 'xmpp.test' } });
  });

  it.each([
    ['nobody listed (the default)', []],
    ['another user listed', ['romeo@xmpp.test']],
    ['the SIP side of the domain listed', ['sip:*@xmpp.test']],
  ])('withholds a subscription, a probe and presence of an XMPP user with %s', async (_name, visible) => {
    const { adapters } = await started(visible);
    const toSip = await crossing(
      adapters,
      [
        presenceEvent({ ...base('xmpp', juliet, aliceOnXmpp), availability: 'away' }),
        subscription('approve', 'xmpp', juliet, aliceOnXmpp),
      ],
      'sip',
    );
    const toXmpp = await crossing(adapters, [subscription('subscribe', 'sip', alice, julietOnSip), probeEvent(base('sip', alice, julietOnSip))], 'xmpp');
    expect(toSip).toEqual([]);
    expect(toXmpp).toEqual([]);
  });

  it('lets every user of a listed domain through, and withdrawals always', async () => {
    const { adapters } = await started(['*@xmpp.test']);
    const sent = await crossing(
      adapters,
      [
        presenceEvent({ ...base('xmpp', juliet, aliceOnXmpp), availability: 'dnd', note: 'in a meeting' }),
        presenceEvent({ ...base('xmpp', { ...romeo, resource: 'r' }, aliceOnXmpp), availability: 'available' }),
      ],
      'sip',
    );
    expect(sent).toMatchObject([
      { kind: 'presence', availability: 'dnd', note: 'in a meeting', from: { side: 'sip', user: 'juliet', domain: 'xmpp.test' }, to: alice },
      { kind: 'presence', availability: 'available', from: { user: 'romeo' } },
    ]);
    const withdrawn = await crossing(adapters, [subscription('unsubscribe', 'sip', alice, julietOnSip)], 'xmpp');
    expect(withdrawn).toMatchObject([{ kind: 'subscription', action: 'unsubscribe' }]);
  });

  it('matches SIP presentities by sip: patterns (an XMPP watcher subscribing to a SIP user)', async () => {
    const { adapters } = await started(['sip:alice@corp.example']);
    const sent = await crossing(adapters, [subscription('subscribe', 'xmpp', juliet, aliceOnXmpp)], 'sip');
    expect(sent).toMatchObject([{ kind: 'subscription', action: 'subscribe', from: julietOnSip, to: alice }]);
  });

  it('drops presence that comes from one of its own addresses (a loop), on either side', async () => {
    const { adapters } = await started(['*@xmpp.test', 'sip:*@corp.example', `*@${COMPONENT}`]);
    const toXmpp = await crossing(adapters, [presenceEvent({ ...base('sip', julietOnSip, julietOnSip), availability: 'available' })], 'xmpp');
    const toSip = await crossing(adapters, [presenceEvent({ ...base('xmpp', aliceOnXmpp, juliet), availability: 'available' })], 'sip');
    expect(toXmpp).toEqual([]);
    expect(toSip).toEqual([]);
  });
});

describe('bridge roles: edges and a router sharing one queue', () => {
  const bridges: Bridge[] = [];
  afterEach(async () => {
    for (const b of bridges.splice(0).reverse()) await b.stop();
  });

  /** A SIP edge, an XMPP edge and a router, as three processes would run them on one Redis. */
  async function split(tracing?: BridgeTracing) {
    const logger = silentLogger();
    const queue = new MemoryQueue({ maxAttempts: 3, backoffMs: 5, maxBackoffMs: 20, maxPending: 100 });
    const translator = new AddressTranslator({ componentDomain: COMPONENT, xmppDomains: ['xmpp.test'] });
    const router = new Router({ translator, queue, logger, identities: aliceOnly(), ...(tracing === undefined ? {} : { tracing }) });
    const adapters = {} as Record<Side, RecordingAdapter>;
    const make = (role: 'sip-edge' | 'xmpp-edge' | 'router') =>
      new Bridge({
        queue,
        role,
        ...(tracing === undefined ? {} : { tracing }),
        ...(role === 'router' ? { router } : {}),
        logger,
        drainTimeoutMs: 100,
        createAdapter: (side, hooks) => (adapters[side] = new RecordingAdapter(side, hooks)),
      });
    for (const role of ['router', 'sip-edge', 'xmpp-edge'] as const) {
      const b = make(role);
      await b.start();
      bridges.push(b);
    }
    return { adapters };
  }

  it('carries a message from the XMPP edge through the router to the SIP edge, mapped', async () => {
    const { adapters } = await split();
    await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'via the router'));
    const [delivered] = await waitFor('SIP delivery', () => (adapters.sip.sent.length ? adapters.sip.sent : undefined));
    expect(delivered).toMatchObject({ kind: 'message', body: 'via the router', to: { side: 'sip', user: 'alice', domain: 'corp.example' } });
  });

  it('keeps one trace from the router to the delivering edge, its context carried inside the queued event', async () => {
    const exporter = new InMemorySpanExporter();
    const { adapters } = await split(createTracing({ enabled: true, exporter }));
    await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'traced'));
    await waitFor('SIP delivery', () => (adapters.sip.sent.length ? adapters.sip.sent : undefined));
    const spans = await waitFor('two spans', () => (exporter.getFinishedSpans().length >= 2 ? exporter.getFinishedSpans() : undefined));
    const route = spans.find((sp) => sp.name === 'route message');
    const send = spans.find((sp) => sp.name === 'sip send message');
    expect(route).toBeDefined();
    expect(send?.spanContext().traceId).toBe(route?.spanContext().traceId);
    expect(send?.parentSpanContext?.spanId).toBe(route?.spanContext().spanId);
    // What crossed the queue is plain JSON, as through Redis.
    expect(JSON.parse(JSON.stringify(adapters.sip.sent[0]))).toMatchObject({ trace: { traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-/) } });
  });

  it('accepts at the edge and turns a later refusal into a failure back to the sender', async () => {
    const { adapters } = await split();
    // The edge does not know the number is unmapped: it only queues.
    await expect(adapters.xmpp.hooks.onEvent(fromJuliet('+15550000000', 'nobody', 'lost-1'))).resolves.toBeUndefined();
    const [failure] = await waitFor('failure at the XMPP edge', () => (adapters.xmpp.sent.length ? adapters.xmpp.sent : undefined));
    expect(failure).toMatchObject({ kind: 'failure', condition: 'item-not-found', originRef: 'lost-1', to: { user: 'juliet', domain: 'xmpp.test' } });
    expect(adapters.sip.sent).toEqual([]);
  });

  it('refuses to build a routing role without a router', () => {
    expect(() => new Bridge({ queue: new MemoryQueue({ maxAttempts: 1, backoffMs: 1, maxBackoffMs: 1, maxPending: 1 }), role: 'router', logger: silentLogger(), createAdapter: () => { throw new Error('no adapter'); } })).toThrow(/needs a router/);
  });
});

describe('bridge: delivered once when the queue hands an event out again', () => {
  /** A queue that, like Redis after a crash between "sent" and "acked", runs each job a second time. */
  class RedeliveringQueue extends MemoryQueue {
    override consume<T>(name: string, handler: JobHandler<T>, options?: ConsumerOptions<T>): Consumer {
      return super.consume<T>(name, async (job) => {
        await handler(job);
        await handler({ ...job, attempt: job.attempt + 1 });
      }, options);
    }
  }

  async function run(deliveries?: DeliveryLog) {
    const logger = silentLogger();
    const queue = new RedeliveringQueue({ maxAttempts: 3, backoffMs: 5, maxBackoffMs: 20, maxPending: 100 });
    const translator = new AddressTranslator({ componentDomain: COMPONENT, xmppDomains: ['xmpp.test'] });
    const router = new Router({ translator, queue, logger, identities: aliceOnly() });
    const adapters = {} as Record<Side, RecordingAdapter>;
    const bridge = new Bridge({
      queue,
      router,
      logger,
      drainTimeoutMs: 1000,
      ...(deliveries === undefined ? {} : { deliveries }),
      createAdapter: (side, hooks) => (adapters[side] = new RecordingAdapter(side, hooks)),
    });
    await bridge.start();
    await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'once'));
    await bridge.stop();
    return adapters.sip.sent;
  }

  it('sends it twice without a delivery log (the at-least-once inside)', async () => {
    expect(await run()).toHaveLength(2);
  });

  it('sends it once with a delivery log', async () => {
    expect(await run(new MemoryDeliveryLog())).toHaveLength(1);
  });
});

describe('bridge: federation policy and the toll-fraud guard', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  /** Our users: corp.example (SIP) and xmpp.test; one SIP partner, globex, for IM only, 1 message/s with a burst of 2. */
  async function started(ownNumbers?: string[]) {
    const registry = new PartnerRegistry(
      partnersSchema.parse({
        partners: [{ name: 'globex', side: 'sip', domains: ['globex.example'], features: ['im'], limits: { messagesPerSecond: 1, burst: 2 } }],
      }),
    );
    const federation = new FederationPolicy({ registry, local: { sip: ['corp.example'], xmpp: ['xmpp.test'] } });
    const built = build({ federation, ...(ownNumbers === undefined ? {} : { ownNumbers: new NumberRanges(ownNumbers) }) });
    await built.bridge.start();
    stop = () => built.bridge.stop();
    return built;
  }

  const fromSip = (user: string, domain: string, n: number) =>
    messageEvent({
      origin: 'sip',
      from: { side: 'sip', user, domain },
      to: { side: 'sip', user: 'romeo', domain: 'xmpp.test' },
      body: `m${n}`,
      dedupeKey: `sip:fed-${user}-${n}`,
      createdAt: 0,
    });

  it('admits our own SIP users and a partner, refuses an unknown domain with 403 / forbidden', async () => {
    const { adapters } = await started();
    await adapters.sip.hooks.onEvent(fromSip('alice', 'corp.example', 1));
    await adapters.sip.hooks.onEvent(fromSip('bob', 'Globex.Example', 2));
    await expect(adapters.sip.hooks.onEvent(fromSip('eve', 'unknown.example', 3))).rejects.toMatchObject({
      code: 'FEDERATION_DENIED',
      condition: 'forbidden',
      sipStatus: 403,
    });
    await waitFor('two deliveries', () => adapters.xmpp.sent.length === 2 || undefined);
  });

  it('refuses a partner past its burst with 503 and a Retry-After, while our own users go on', async () => {
    const { adapters } = await started();
    await adapters.sip.hooks.onEvent(fromSip('bob', 'globex.example', 1));
    await adapters.sip.hooks.onEvent(fromSip('bob', 'globex.example', 2));
    await expect(adapters.sip.hooks.onEvent(fromSip('bob', 'globex.example', 3))).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      condition: 'resource-constraint',
      sipStatus: 503,
      retryAfterS: 1,
    });
    await expect(adapters.sip.hooks.onEvent(fromSip('alice', 'corp.example', 4))).resolves.toBeUndefined();
  });

  it('keeps another partner\'s messages flowing while one partner floods', async () => {
    const registry = new PartnerRegistry(
      partnersSchema.parse({
        partners: [
          { name: 'globex', side: 'sip', domains: ['globex.example'], limits: { messagesPerSecond: 1, burst: 2 } },
          { name: 'initech', side: 'sip', domains: ['initech.example'], limits: { messagesPerSecond: 1, burst: 5 } },
        ],
      }),
    );
    const built = build({ federation: new FederationPolicy({ registry, local: { sip: ['corp.example'], xmpp: ['xmpp.test'] } }) });
    await built.bridge.start();
    stop = () => built.bridge.stop();
    const { adapters } = built;
    // A bounded flood from globex: 50 messages, all but its burst refused.
    const flood = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => adapters.sip.hooks.onEvent(fromSip('bob', 'globex.example', 100 + i))));
    expect(flood.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    // initech's own bucket is untouched: all five of its messages go through.
    for (let i = 0; i < 5; i++) await adapters.sip.hooks.onEvent(fromSip('peter', 'initech.example', 200 + i));
    await waitFor('seven deliveries', () => adapters.xmpp.sent.length === 7 || undefined);
  });

  it('refuses presence from a partner allowed IM only', async () => {
    const { adapters } = await started();
    const subscribe = subscriptionEvent({
      origin: 'sip',
      from: { side: 'sip', user: 'bob', domain: 'globex.example' },
      to: { side: 'sip', user: 'romeo', domain: 'xmpp.test' },
      action: 'subscribe',
      dedupeKey: 'fed-sub',
      createdAt: 0,
    });
    await expect(adapters.sip.hooks.onEvent(subscribe)).rejects.toMatchObject({ code: 'FEDERATION_DENIED', condition: 'forbidden' });
  });

  it('does not route to a SIP domain that is neither ours nor a partner', async () => {
    const { adapters } = await started();
    await expect(adapters.xmpp.hooks.onEvent(fromJuliet('dave\\40elsewhere.example'))).rejects.toMatchObject({
      code: 'FEDERATION_UNKNOWN_TARGET',
      condition: 'remote-server-not-found',
    });
  });

  describe('with a partner that proves itself by certificate (mutual TLS)', () => {
    async function trusting() {
      const registry = new PartnerRegistry(
        partnersSchema.parse({ partners: [{ name: 'initech', side: 'sip', domains: ['initech.example'], trust: { certificateNames: ['sip.initech.example'] } }] }),
      );
      const federation = new FederationPolicy({ registry, local: { sip: ['corp.example'], xmpp: ['xmpp.test'] } });
      const built = build({ federation });
      await built.bridge.start();
      stop = () => built.bridge.stop();
      return built;
    }
    const signed = (user: string, domain: string, extra: { peer?: { certificateIdentities: string[] }; assertedDomains?: string[] }) => ({
      ...fromSip(user, domain, Math.floor(Math.random() * 1e9)),
      ...extra,
    });
    const certificate = { peer: { certificateIdentities: ['sip.initech.example'] } };

    it('admits its users when the certificate names it', async () => {
      const { adapters } = await trusting();
      await expect(adapters.sip.hooks.onEvent(signed('peter', 'initech.example', certificate))).resolves.toBeUndefined();
    });

    it.each([
      ['its domain without a certificate', 'peter', 'initech.example', {}],
      ['one of our own domains over its connection', 'ceo', 'corp.example', certificate],
      ['another domain in P-Asserted-Identity', 'peter', 'initech.example', { ...certificate, assertedDomains: ['corp.example'] }],
    ])('refuses %s as a spoofing attempt (403)', async (_name, user, domain, extra) => {
      const { adapters } = await trusting();
      await expect(adapters.sip.hooks.onEvent(signed(user, domain, extra))).rejects.toMatchObject({
        code: 'SPOOFED_IDENTITY',
        condition: 'forbidden',
        sipStatus: 403,
      });
    });
  });

  describe('the audit log', () => {
    function audited(ownNumbers?: string[]) {
      const lines: Record<string, unknown>[] = [];
      const audit = new AuditLog({ warn: (details: object) => lines.push(details as Record<string, unknown>) } as never);
      const registry = new PartnerRegistry(
        partnersSchema.parse({
          partners: [{ name: 'globex', side: 'sip', domains: ['globex.example'], features: ['im'], limits: { messagesPerSecond: 1, burst: 1 } }],
        }),
      );
      const federation = new FederationPolicy({ registry, local: { sip: ['corp.example'], xmpp: ['xmpp.test'] } });
      const built = build({ federation, audit, ...(ownNumbers === undefined ? {} : { ownNumbers: new NumberRanges(ownNumbers) }) });
      stop = () => built.bridge.stop();
      return { ...built, lines, start: () => built.bridge.start() };
    }

    it.each([
      { name: 'an unknown domain', send: fromSip('eve', 'unknown.example', 7), rule: 'federation-denied', who: 'sip:eve@unknown.example' },
      { name: 'a target outside the federation', send: fromJuliet('dave\\40elsewhere.example'), rule: 'unknown-domain', who: 'xmpp:juliet@xmpp.test/balcony' },
      { name: 'a number outside the ranges', send: fromJuliet('+15559876543', 'to the PSTN?', 'pstn'), rule: 'number-not-ours', who: 'xmpp:juliet@xmpp.test/balcony' },
    ])('given $name, then one denial line names who, what and the rule', async ({ send, rule, who }) => {
      const built = audited(['+1555123']);
      await built.start();
      const side = send.origin;
      await expect(built.adapters[side].hooks.onEvent(send)).rejects.toBeInstanceOf(Error);
      expect(built.lines).toEqual([expect.objectContaining({ audit: 'denial', rule, who, what: 'message', event: send.id, reason: expect.any(String) })]);
    });

    it('given a partner over its rate, then the refusals are one line, and the next line after the window counts them', async () => {
      const built = audited();
      await built.start();
      await built.adapters.sip.hooks.onEvent(fromSip('peter', 'globex.example', 1));
      for (let i = 2; i <= 4; i++) await expect(built.adapters.sip.hooks.onEvent(fromSip('peter', 'globex.example', i))).rejects.toMatchObject({ code: 'RATE_LIMITED' });
      expect(built.lines).toEqual([expect.objectContaining({ audit: 'denial', rule: 'rate-limited', who: 'sip:peter@globex.example', what: 'message' })]);
    });
  });

  it('resolves only numbers inside the operator\'s ranges (toll-fraud guard)', async () => {
    const { adapters } = await started(['+1555123']);
    await expect(adapters.xmpp.hooks.onEvent(fromJuliet('+15559876543', 'to the PSTN?', 'pstn'))).rejects.toMatchObject({
      code: 'NUMBER_NOT_OURS',
      condition: 'item-not-found',
    });
    await adapters.xmpp.hooks.onEvent(fromJuliet('+15551234567', 'ours', 'own'));
    await waitFor('delivery to alice', () => adapters.sip.sent.length === 1 || undefined);
  });
});
