/**
 * SIP watchers → the SIP adapter's notifier role (RFC 6665 §4.2, RFC 3856, RFC 8048 §5.3): sipp
 * and a raw UDP peer subscribe to an XMPP user; the test plays the core, collecting the events
 * the adapter hands on and calling adapter.send() with the XMPP user's answers and presence.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { sipSchema } from '../../src/config/schema.js';
import { BridgeError } from '../../src/core/errors.js';
import { presenceEvent, subscriptionEvent, type Address, type CanonicalEvent, type SubscriptionAction } from '../../src/core/events.js';
import { MemorySubscriptionStore } from '../../src/core/state/memory-subscriptions.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { waitFor } from '../support/ports.js';
import { header, newBranch, RawUdpPeer, statusOf } from '../support/raw-sip.js';
import { startSipp } from '../support/sipp.js';

const JULIET: Address = { side: 'sip', user: 'juliet', domain: 'xmpp.example.org' };
const ALICE: Address = { side: 'sip', user: 'alice', domain: 'corp.example' };
const MIN_EXPIRES = 2;

let adapter: SipAdapter;
let store: MemorySubscriptionStore;
let udpPort: number;
let tcpPort: number;
const events: CanonicalEvent[] = [];
/** What the core answers for the next events; reset to "accepted" before each test. */
let core: (e: CanonicalEvent) => Promise<void>;

beforeAll(async () => {
  const config = sipSchema.parse({
    listen: [
      { transport: 'udp', host: '127.0.0.1', port: 0 },
      { transport: 'tcp', host: '127.0.0.1', port: 0 },
    ],
    timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
  });
  store = new MemorySubscriptionStore({ maxRecords: 1000 });
  const hooks = { onEvent: (e: CanonicalEvent) => (events.push(e), core(e)) };
  adapter = new SipAdapter(config, hooks, silentLogger(), { subscriptions: store, presence: { minExpires: MIN_EXPIRES } });
  await adapter.start();
  udpPort = adapter.boundPorts().find((b) => b.transport === 'udp')!.port;
  tcpPort = adapter.boundPorts().find((b) => b.transport === 'tcp')!.port;
});

afterAll(async () => {
  await adapter?.stop();
});

beforeEach(async () => {
  events.length = 0;
  core = () => Promise.resolve();
  // Each test starts with no subscription (an approved one would cover the next test's watcher).
  for (const r of await store.list('notifier', 1000)) await store.delete(r.id);
});

function fromJuliet(action: SubscriptionAction): Promise<void> {
  return adapter.send(subscriptionEvent({ origin: 'xmpp', from: JULIET, to: ALICE, action, dedupeKey: randomBytes(8).toString('hex'), createdAt: Date.now() }));
}

function julietPresence(availability: 'available' | 'dnd' | 'unavailable', note?: string, resource = 'balcony'): Promise<void> {
  return adapter.send(
    presenceEvent({
      origin: 'xmpp',
      from: { ...JULIET, resource },
      to: ALICE,
      availability,
      ...(note === undefined ? {} : { note }),
      dedupeKey: randomBytes(8).toString('hex'),
      createdAt: Date.now(),
    }),
  );
}

function kinds(): string[] {
  return events.map((e) => (e.kind === 'subscription' ? `subscription:${e.action}` : e.kind === 'presence' ? `presence:${e.availability}` : e.kind));
}

function notifierRecords(): Promise<{ id: string; state: string; data: { lastBody?: string } }[]> {
  return store.byPresentity('juliet@xmpp.example.org', 'notifier');
}

describe.each(['udp', 'tcp'] as const)('sipp watcher over %s', (transport) => {
  it('given a SUBSCRIBE, then pending, active on approve, each presence change, a refresh and the un-SUBSCRIBE reach it as NOTIFYs', async () => {
    const sipp = await startSipp({
      role: 'uac',
      scenario: 'presence-watcher.xml',
      transport,
      target: { host: '127.0.0.1', port: transport === 'udp' ? udpPort : tcpPort },
      service: 'juliet',
    });
    try {
      await waitFor('the subscribe event', async () => {
        const ended = await Promise.race([sipp.done, Promise.resolve(undefined)]);
        if (ended) throw new Error(`sipp ended early: ${ended.output.slice(-1500)}\n${ended.errors}`);
        return events.find((e) => e.kind === 'subscription');
      });
      await fromJuliet('approve');
      await waitFor('the subscription to be active', async () => (await notifierRecords()).find((r) => r.state === 'active'));
      await julietPresence('available', 'at my desk');
      await waitFor('the first presence NOTIFY', async () => (await notifierRecords()).find((r) => r.data.lastBody?.includes('at my desk')));
      await julietPresence('dnd', 'in a meeting');
      const result = await sipp.done;

      expect(result.code, `sipp exit ${result.code}\n${result.errors}\n${result.messages.slice(-3000)}`).toBe(0);
      expect(events[0]).toMatchObject({ kind: 'subscription', action: 'subscribe', origin: 'sip', from: ALICE, to: JULIET });
      // RFC 8048 §5.3.3: when the watcher leaves, the XMPP user sees it unavailable.
      expect(kinds()).toEqual(['subscription:subscribe', 'presence:unavailable']);
      expect(await notifierRecords()).toEqual([]);
    } finally {
      await sipp.stop();
    }
  });
});

/** A SIP watcher on a raw UDP socket, for the cases sipp cannot express briefly. */
class Watcher {
  readonly callId = `${randomBytes(8).toString('hex')}@127.0.0.1`;
  readonly fromTag = randomBytes(6).toString('hex');
  toTag: string | undefined;
  private cseq = 0;
  private readonly seenNotifies = new Set<string>();

  private constructor(
    readonly peer: RawUdpPeer,
    private readonly target: number,
  ) {}

  /** A watcher that talks to the adapter on UDP port `target` (default the shared adapter's). */
  static async open(target = udpPort): Promise<Watcher> {
    return new Watcher(await RawUdpPeer.open(), target);
  }

  subscribe(o: { expires?: number; event?: string | null; accept?: string; toTag?: string } = {}): Promise<void> {
    this.cseq++;
    const toTag = o.toTag ?? this.toTag;
    const lines = [
      `SUBSCRIBE sip:juliet@xmpp.example.org SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.peer.port};branch=${newBranch()};rport`,
      'Max-Forwards: 70',
      `From: <sip:alice@corp.example>;tag=${this.fromTag}`,
      `To: <sip:juliet@xmpp.example.org>${toTag ? `;tag=${toTag}` : ''}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${this.cseq} SUBSCRIBE`,
      `Contact: <sip:alice@127.0.0.1:${this.peer.port}>`,
      ...(o.event === null ? [] : [`Event: ${o.event ?? 'presence'}`]),
      ...(o.accept === undefined ? [] : [`Accept: ${o.accept}`]),
      ...(o.expires === undefined ? [] : [`Expires: ${o.expires}`]),
      'Content-Length: 0',
      '',
      '',
    ];
    return this.peer.send(lines.join('\r\n'), this.target);
  }

  /** The next response (the dialog's To tag is kept from a 2xx). */
  async response(): Promise<string> {
    const msg = await this.next();
    if (!msg.startsWith('SIP/2.0')) throw new Error(`expected a response, got:\n${msg}`);
    if (statusOf(msg) < 300) this.toTag ??= /;tag=([^;\s]+)/.exec(header(msg, 'To') ?? '')?.[1];
    return msg;
  }

  /** The next NOTIFY, answered with `status` (200 unless told). */
  async notify(status = 200): Promise<{ state: string; body: string; text: string }> {
    const msg = await this.next();
    if (!msg.startsWith('NOTIFY ')) throw new Error(`expected a NOTIFY, got:\n${msg}`);
    await this.answer(msg, status);
    return { state: header(msg, 'Subscription-State') ?? '', body: msg.slice(msg.indexOf('\r\n\r\n') + 4), text: msg };
  }

  /** The next NOTIFY, left unanswered (its retransmissions are skipped later). */
  async held(): Promise<string> {
    const msg = await this.next();
    if (!msg.startsWith('NOTIFY ')) throw new Error(`expected a NOTIFY, got:\n${msg}`);
    return msg;
  }

  /** Whether anything other than copies of NOTIFYs already seen is waiting. */
  async nothingNew(): Promise<boolean> {
    while (this.peer.waiting > 0) {
      const msg = await this.peer.next();
      if (!this.isRepeat(msg)) return false;
    }
    return true;
  }

  async answer(notify: string, status: number): Promise<void> {
    const copy = ['Via', 'From', 'To', 'Call-ID', 'CSeq'].map((name) => `${name}: ${header(notify, name)}`);
    await this.peer.send([`SIP/2.0 ${status} Whatever`, ...copy, 'Content-Length: 0', '', ''].join('\r\n'), this.target);
  }

  close(): Promise<void> {
    return this.peer.close();
  }

  /** The next message, skipping retransmissions of NOTIFYs already seen. */
  private async next(): Promise<string> {
    for (let i = 0; i < 50; i++) {
      const msg = await this.peer.next();
      if (!this.isRepeat(msg)) return msg;
    }
    throw new Error('only retransmissions arrived');
  }

  private isRepeat(msg: string): boolean {
    if (!msg.startsWith('NOTIFY ')) return false;
    const cseq = header(msg, 'CSeq') ?? '';
    if (this.seenNotifies.has(cseq)) return true;
    this.seenNotifies.add(cseq);
    return false;
  }
}

describe('raw watcher', () => {
  let watcher: Watcher;
  beforeEach(async () => {
    watcher = await Watcher.open();
    return () => watcher.close();
  });

  async function subscribed(expires = 600): Promise<void> {
    await watcher.subscribe({ expires });
    expect(statusOf(await watcher.response())).toBe(200);
    expect((await watcher.notify()).state).toMatch(/^pending;expires=\d+$/);
  }

  it('given an Event other than presence, then 489 with Allow-Events: presence and no event', async () => {
    await watcher.subscribe({ event: 'dialog' });
    const res = await watcher.response();
    expect(statusOf(res)).toBe(489);
    expect(header(res, 'Allow-Events')).toBe('presence');
    expect(events).toEqual([]);
  });

  it('given no Event header, then 489 (RFC 6665 §4.2.3: no PINT here)', async () => {
    await watcher.subscribe({ event: null });
    expect(statusOf(await watcher.response())).toBe(489);
  });

  it('given an Accept without application/pidf+xml, then 406 naming it', async () => {
    await watcher.subscribe({ accept: 'application/xpidf+xml' });
    const res = await watcher.response();
    expect(statusOf(res)).toBe(406);
    expect(header(res, 'Accept')).toBe('application/pidf+xml');
  });

  it('given an Expires below the minimum, then 423 with Min-Expires', async () => {
    await watcher.subscribe({ expires: 1 });
    const res = await watcher.response();
    expect(statusOf(res)).toBe(423);
    expect(header(res, 'Min-Expires')).toBe(String(MIN_EXPIRES));
  });

  it('given an Expires above the maximum, then the 200 grants the maximum', async () => {
    await watcher.subscribe({ expires: 10_000_000 });
    const res = await watcher.response();
    expect(header(res, 'Expires')).toBe('86400');
    await watcher.notify();
  });

  it('given a SUBSCRIBE with a To tag of no subscription, then 481', async () => {
    await watcher.subscribe({ expires: 600, toTag: 'nosuchdialog' });
    expect(statusOf(await watcher.response())).toBe(481);
  });

  it('given the core refuses the subscription, then its SIP status and nothing is kept', async () => {
    core = (e) => (e.kind === 'subscription' ? Promise.reject(new BridgeError('POLICY', 'hidden', { condition: 'forbidden', sipStatus: 403 })) : Promise.resolve());
    await watcher.subscribe({ expires: 600 });
    expect(statusOf(await watcher.response())).toBe(403);
    expect(await notifierRecords()).toEqual([]);
  });

  it('given the XMPP user denies, then NOTIFY terminated;reason=rejected and the subscription is gone', async () => {
    await subscribed();
    const denying = fromJuliet('deny'); // resolves once the watcher has answered the NOTIFY
    expect((await watcher.notify()).state).toBe('terminated;reason=rejected');
    await denying;
    expect(await notifierRecords()).toEqual([]);
  });

  it('given approve with presence known, then the active NOTIFY carries it; a repeat of the same presence sends nothing', async () => {
    await subscribed();
    await julietPresence('available', 'known before approval');
    const approving = fromJuliet('approve');
    const active = await watcher.notify();
    await approving;
    await julietPresence('available', 'known before approval');
    await julietPresence('dnd', 'changed');
    const changed = await watcher.notify();

    expect(active.state).toMatch(/^active;expires=\d+$/);
    expect(active.body).toContain('known before approval');
    expect(changed.body).toContain('changed'); // the repeat in between produced no NOTIFY
  });

  it('given a burst of presence changes while a NOTIFY is unanswered, then one more NOTIFY with the latest', async () => {
    await subscribed();
    const approving = fromJuliet('approve');
    await watcher.notify();
    await approving;
    await julietPresence('available', 'first');
    const first = await watcher.held();
    for (const note of ['second', 'third', 'fourth', 'latest']) await julietPresence('available', note);
    await watcher.answer(first, 200);
    const next = await watcher.notify();

    expect(first).toContain('first');
    expect(next.body).toContain('latest');
    await waitFor('the latest presence to be the last sent', async () => (await notifierRecords())[0]?.data.lastBody?.includes('latest'));
    expect(await watcher.nothingNew()).toBe(true);
  });

  it('given a NOTIFY over 1300 bytes and a watcher without TCP, then it still arrives over UDP (RFC 3261 §18.1.1 fallback)', async () => {
    await subscribed();
    const approving = fromJuliet('approve');
    await watcher.notify();
    await approving;
    for (const device of ['one', 'two', 'three', 'four', 'five']) await julietPresence('available', `${device} ${'x'.repeat(300)}`, device);
    const big = await waitFor('a NOTIFY with all five devices', async () => {
      const { body, text } = await watcher.notify();
      return body.includes('ID-five') ? text : undefined;
    });

    expect(Buffer.byteLength(big)).toBeGreaterThan(1300);
    expect(header(big, 'Via')).toMatch(/^SIP\/2\.0\/UDP /);
  });

  it('given the watcher answers a NOTIFY with 481, then the subscription is removed (RFC 6665 §4.2.2)', async () => {
    await watcher.subscribe({ expires: 600 });
    await watcher.response();
    await watcher.notify(481);
    await waitFor('the subscription to go', async () => ((await notifierRecords()).length === 0 ? true : undefined));
    expect(kinds()).toContain('presence:unavailable');
  });

  it('given a subscription not refreshed, then NOTIFY terminated;reason=timeout at its expiry and the XMPP user sees the watcher leave', async () => {
    await subscribed(MIN_EXPIRES);
    const ended = await watcher.notify();

    expect(ended.state).toBe('terminated;reason=timeout');
    expect(await notifierRecords()).toEqual([]);
    await waitFor('the unavailable presence', () => events.find((e) => e.kind === 'presence'));
    expect(events.at(-1)).toMatchObject({ kind: 'presence', availability: 'unavailable', from: ALICE, to: JULIET });
  });

  it('given a new SUBSCRIBE with Expires: 0 (a poll, RFC 8048 §7.2) from a watcher not authorized, then 200 and one empty NOTIFY terminated; nothing kept', async () => {
    await watcher.subscribe({ expires: 0 });
    expect(statusOf(await watcher.response())).toBe(200);
    const only = await watcher.notify();

    expect(only.state).toBe('terminated;reason=timeout');
    expect(only.body).toBe(''); // not authorized: nothing to show
    expect(await notifierRecords()).toEqual([]);
  });

  it('given a poll from an authorized watcher, then the NOTIFY carries the presence known; with none known, a probe asks for it', async () => {
    await subscribed();
    const approving = fromJuliet('approve');
    await watcher.notify();
    await approving;
    const poll = async (): Promise<string> => {
      const poller = await Watcher.open(); // each poll is a dialog of its own
      try {
        await poller.subscribe({ expires: 0 });
        await poller.response();
        return (await poller.notify()).body;
      } finally {
        await poller.close();
      }
    };

    expect(await poll()).toBe('');
    await waitFor('the probe', () => events.find((e) => e.kind === 'probe'));
    await julietPresence('available', 'polled');
    await watcher.notify();
    expect(await poll()).toContain('polled');
    expect(events.filter((e) => e.kind === 'probe')).toEqual([expect.objectContaining({ from: ALICE, to: JULIET })]);
  });

  it('given a second dialog from a watcher already approved, then it starts active without asking the XMPP user again', async () => {
    await subscribed();
    const approving = fromJuliet('approve');
    await watcher.notify();
    await approving;
    await julietPresence('available', 'still here');
    await watcher.notify();
    const second = await Watcher.open();
    try {
      events.length = 0;
      await second.subscribe({ expires: 600 });
      await second.response();
      const first = await second.notify();

      expect(first.state).toMatch(/^active;/);
      expect(first.body).toContain('still here');
      expect(kinds()).not.toContain('subscription:subscribe');
    } finally {
      await second.close();
    }
  });

  it('given PUBLISH (we are no presence server), then 405 with the Allow list', async () => {
    const lines = [
      'PUBLISH sip:juliet@xmpp.example.org SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:${watcher.peer.port};branch=${newBranch()};rport`,
      'Max-Forwards: 70',
      'From: <sip:alice@corp.example>;tag=p1',
      'To: <sip:juliet@xmpp.example.org>',
      `Call-ID: ${watcher.callId}`,
      'CSeq: 1 PUBLISH',
      'Event: presence',
      'Content-Length: 0',
      '',
      '',
    ];
    await watcher.peer.send(lines.join('\r\n'), udpPort);
    const res = await watcher.response();
    expect(statusOf(res)).toBe(405);
    expect(header(res, 'Allow')).toBe('MESSAGE, OPTIONS, SUBSCRIBE, NOTIFY');
  });
});

describe('a full subscription store', () => {
  it('given the store holds its maximum, then a new SUBSCRIBE gets 503 with Retry-After', async () => {
    const config = sipSchema.parse({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 } });
    const small = new SipAdapter(config, { onEvent: () => Promise.resolve() }, silentLogger(), {
      subscriptions: new MemorySubscriptionStore({ maxRecords: 1 }),
    });
    await small.start();
    const port = small.boundPorts()[0]!.port;
    const first = await Watcher.open(port);
    const second = await Watcher.open(port);
    try {
      await first.subscribe({ expires: 600 });
      expect(statusOf(await first.response())).toBe(200);
      await first.notify();
      await second.subscribe({ expires: 600 });
      const refused = await second.response();

      expect(statusOf(refused)).toBe(503);
      expect(header(refused, 'Retry-After')).toMatch(/^\d+$/);
    } finally {
      await first.close();
      await second.close();
      await small.stop();
    }
  });
});
