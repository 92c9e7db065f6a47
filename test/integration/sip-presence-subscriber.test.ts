/**
 * XMPP watchers → SIP presentities through the SIP adapter's subscriber role (RFC 6665 §4.1,
 * RFC 8048 §5.2 and §6.3), against a real Kamailio presence server: a sipp user agent PUBLISHes
 * bob's presence there, the test plays the core by calling adapter.send() with juliet's
 * subscription requests and collects the events the adapter hands on.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { sipSchema } from '../../src/config/schema.js';
import { BridgeError } from '../../src/core/errors.js';
import {
  probeEvent,
  subscriptionEvent,
  type Address,
  type CanonicalEvent,
  type PresenceEvent,
  type SubscriptionAction,
} from '../../src/core/events.js';
import { MemorySubscriptionStore } from '../../src/core/state/memory-subscriptions.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { startKamailioPresence, type KamailioPresence } from '../support/kamailio-presence.js';
import { waitFor } from '../support/ports.js';
import { startSipp } from '../support/sipp.js';

const DOMAIN = 'presence.example.org';
const JULIET: Address = { side: 'sip', user: 'juliet', domain: 'xmpp.example.org' };
/** Subscriptions last this long, so the adapter refreshes them during the tests. */
const EXPIRES = 4;

let kamailio: KamailioPresence;
let adapter: SipAdapter;
let store: MemorySubscriptionStore;
const events: CanonicalEvent[] = [];

beforeAll(async () => {
  kamailio = await startKamailioPresence({ refuse: ['mallory'] });
  const config = sipSchema.parse({
    listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }],
    outboundProxy: kamailio.uri('udp'),
    timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
  });
  store = new MemorySubscriptionStore({ maxRecords: 100 });
  adapter = new SipAdapter(config, { onEvent: (e) => (events.push(e), Promise.resolve()) }, silentLogger(), {
    subscriptions: store,
    presence: { defaultExpires: EXPIRES, minExpires: 1 },
  });
  await adapter.start();
});

afterAll(async () => {
  await adapter?.stop();
  await kamailio?.stop();
});

beforeEach(() => {
  events.length = 0;
});

function user(name: string): Address {
  return { side: 'sip', user: name, domain: DOMAIN };
}

function fromJuliet(action: SubscriptionAction, to: Address): Promise<void> {
  return adapter.send(subscriptionEvent({ origin: 'xmpp', from: JULIET, to, action, dedupeKey: randomBytes(8).toString('hex'), createdAt: Date.now() }));
}

/** Publishes `name`'s presence through sipp; returns the entity-tag for a later modifying PUBLISH. */
async function publish(name: string, basic: 'open' | 'closed', note: string, etag?: string): Promise<string> {
  const sipp = await startSipp({
    role: 'uac',
    scenario: etag === undefined ? 'presence-publish.xml' : 'presence-publish-modify.xml',
    transport: 'udp',
    target: { host: kamailio.host, port: kamailio.port },
    service: name,
    keys: { domain: DOMAIN, basic, note, ...(etag === undefined ? {} : { etag }) },
  });
  try {
    const result = await sipp.done;
    expect(result.code, `sipp exit ${result.code}\n${result.errors}\n${result.messages}`).toBe(0);
    const tag = /^SIP-ETag:\s*(\S+)/im.exec(result.messages)?.[1];
    if (tag === undefined) throw new Error(`no SIP-ETag in the PUBLISH answer:\n${result.messages}`);
    return tag;
  } finally {
    await sipp.stop();
  }
}

function presences(from: string): PresenceEvent[] {
  return events.filter((e): e is PresenceEvent => e.kind === 'presence' && e.from.user === from);
}

/** The SUBSCRIBEs that started a subscription to `name` (no To tag yet). */
function initialSubscribes(name: string): string[] {
  return kamailio.requests().filter((r) => r.startsWith(`SUBSCRIBE sip:${name}@`) && r.includes('totag=<null>'));
}

/** The SUBSCRIBEs in the dialog a logged initial SUBSCRIBE started (refreshes, the un-SUBSCRIBE). */
function inDialogSubscribes(initial: string): string[] {
  const callId = / callid=(\S+)$/.exec(initial)?.[1];
  return kamailio.requests().filter((r) => r.startsWith('SUBSCRIBE ') && r.endsWith(` callid=${callId}`) && !r.includes('totag=<null>'));
}

describe('juliet watches bob', () => {
  let etag: string;

  it('given bob published "open" with a note, when juliet subscribes, then approve and his presence with the note reach her', async () => {
    etag = await publish('bob', 'open', 'at the harbour');
    await fromJuliet('subscribe', user('bob'));
    await waitFor('bob\'s presence', () => presences('bob')[0]);

    expect(events[0]).toMatchObject({ kind: 'subscription', action: 'approve', origin: 'sip', from: user('bob'), to: JULIET });
    expect(presences('bob')).toEqual([expect.objectContaining({ availability: 'available', note: 'at the harbour', to: JULIET })]);
  });

  it('given bob publishes "closed", then juliet sees him unavailable', async () => {
    await publish('bob', 'closed', 'gone fishing', etag);
    const gone = await waitFor('bob unavailable', () => presences('bob').find((p) => p.availability === 'unavailable'));
    expect(gone.note).toBe('gone fishing');
  });

  it('given the subscription runs past its duration, then the adapter refreshed it in its dialog and it is still active', async () => {
    const [initial] = initialSubscribes('bob');
    const refresh = await waitFor('a refresh in the dialog', () => inDialogSubscribes(initial!)[0], 3 * EXPIRES * 1000);
    await waitFor('the refresh confirmed', async () => {
      const [record] = await store.byWatcher<{ phase: string }>('juliet@xmpp.example.org', 'subscriber');
      return record?.data.phase === 'live' ? record : undefined;
    });

    expect(refresh).toMatch(new RegExp(` expires=${EXPIRES} `));
    expect(await store.byWatcher('juliet@xmpp.example.org', 'subscriber')).toEqual([expect.objectContaining({ state: 'active' })]);
  });

  it('given juliet subscribes again, then no second SIP subscription: approve and the last presence come from the bridge', async () => {
    await fromJuliet('subscribe', user('bob'));

    expect(initialSubscribes('bob')).toHaveLength(1);
    expect(events.map((e) => e.kind)).toEqual(['subscription', 'presence']);
    expect(presences('bob')[0]).toMatchObject({ availability: 'unavailable', note: 'gone fishing' });
  });

  it('given an XMPP probe for bob, then the last presence answers it', async () => {
    await adapter.send(probeEvent({ origin: 'xmpp', from: { ...JULIET, resource: 'balcony' }, to: user('bob'), dedupeKey: 'probe-1', createdAt: Date.now() }));
    expect(presences('bob')).toEqual([expect.objectContaining({ availability: 'unavailable', to: { ...JULIET, resource: 'balcony' } })]);
  });

  it('given juliet unsubscribes, then Kamailio gets SUBSCRIBE Expires: 0, the subscription is gone and juliet is told "unsubscribed"', async () => {
    await fromJuliet('unsubscribe', user('bob'));
    await waitFor('the subscription to go', async () => ((await store.byWatcher('juliet@xmpp.example.org', 'subscriber')).length === 0 ? true : undefined));

    expect(inDialogSubscribes(initialSubscribes('bob')[0]!).at(-1)).toMatch(/ expires=0 /);
    expect(events).toEqual([expect.objectContaining({ kind: 'subscription', action: 'deny', from: user('bob'), to: JULIET })]);
  });
});

describe('refusals', () => {
  it('given the presence server refuses the SUBSCRIBE (403), then send() rejects with forbidden, not retryable, and nothing is kept', async () => {
    const refused = await fromJuliet('subscribe', user('mallory')).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(BridgeError);
    expect(refused).toMatchObject({ condition: 'forbidden', sipStatus: 403, retryable: false });
    expect(await store.byWatcher('juliet@xmpp.example.org', 'subscriber')).toEqual([]);
  });

  it('given a probe for someone juliet does not watch, then nothing is sent to her', async () => {
    await adapter.send(probeEvent({ origin: 'xmpp', from: JULIET, to: user('carol'), dedupeKey: 'probe-2', createdAt: Date.now() }));
    expect(events).toEqual([]);
  });
});

describe('over TCP', () => {
  it('given the presence server is reached over TCP, then the SUBSCRIBE, its NOTIFYs and the unsubscribe go over TCP', async () => {
    const config = sipSchema.parse({
      listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
      outboundProxy: kamailio.uri('tcp'),
      timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
    });
    const seen: CanonicalEvent[] = [];
    const overTcp = new SipAdapter(config, { onEvent: (e) => (seen.push(e), Promise.resolve()) }, silentLogger());
    await overTcp.start();
    try {
      await publish('dave', 'open', 'on the wire');
      await overTcp.send(subscriptionEvent({ origin: 'xmpp', from: JULIET, to: user('dave'), action: 'subscribe', dedupeKey: 'tcp-1', createdAt: Date.now() }));
      await waitFor('dave\'s presence', () => seen.find((e) => e.kind === 'presence'));
      await overTcp.send(subscriptionEvent({ origin: 'xmpp', from: JULIET, to: user('dave'), action: 'unsubscribe', dedupeKey: 'tcp-2', createdAt: Date.now() }));

      expect(seen.map((e) => (e.kind === 'subscription' ? e.action : e.kind))).toEqual(['approve', 'presence', 'deny']);
      expect(seen[1]).toMatchObject({ availability: 'available', note: 'on the wire' });
      const dialog = [initialSubscribes('dave')[0]!, ...inDialogSubscribes(initialSubscribes('dave')[0]!)];
      expect(dialog.at(-1)).toMatch(/ expires=0 /);
      expect(dialog.every((r) => r.includes(' proto=tcp '))).toBe(true);
    } finally {
      await overTcp.stop();
    }
  });
});
