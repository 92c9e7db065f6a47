/**
 * Presence through the XmppAdapter against a real Prosody and a real @xmpp/client user:
 * subscriptions both ways, presence both ways, probes, the re-probe after a reconnect and the
 * presence withdrawn at stop(). The adapter reaches Prosody through a TCP relay the test can
 * cut, so a reconnect happens without disturbing the user's session.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import xml from '@xmpp/xml';
import { XmppAdapter, type WatchedPair } from '../../src/adapters/xmpp/adapter.js';
import { xmppSchema } from '../../src/config/schema.js';
import { BridgeError } from '../../src/core/errors.js';
import {
  presenceEvent,
  probeEvent,
  subscriptionEvent,
  type Address,
  type CanonicalEvent,
  type PresenceEvent,
  type SubscriptionAction,
} from '../../src/core/events.js';
import { createLogger, silentLogger } from '../../src/telemetry/logger.js';
import { waitFor } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { connectUser, requestRoster, type TestUser } from '../support/xmpp-client.js';

const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

let prosody: Prosody;
let relay: Relay;
let juliet: TestUser;
let adapter: XmppAdapter;
const events: CanonicalEvent[] = [];
const availability: boolean[] = [];
let watched: WatchedPair[] = [];
let refuse: (e: CanonicalEvent) => BridgeError | undefined = () => undefined;

let ALICE: Address;
let JULIET: Address;
let aliceJid: string;

beforeAll(async () => {
  prosody = await startProsody();
  relay = await startRelay(prosody.componentPort);
  ALICE = { side: 'xmpp', user: 'alice\\40corp.example', domain: prosody.component };
  JULIET = { side: 'xmpp', user: 'juliet', domain: prosody.domain };
  aliceJid = `alice\\40corp.example@${prosody.component}`;
  watched = [
    { watcher: ALICE, presentity: JULIET },
    { watcher: ALICE, presentity: { side: 'xmpp', user: 'romeo', domain: prosody.domain } },
  ];
  const logger = process.env['TEST_LOG'] === '1' ? createLogger({ level: 'debug' }) : silentLogger();
  adapter = new XmppAdapter(
    xmppSchema.parse({
      component: prosody.component,
      secret: prosody.secret,
      server: { host: prosody.host, port: relay.port },
      reconnect: { initialMs: 50, maxMs: 200 },
    }),
    {
      onEvent: async (e) => {
        events.push(e);
        const refusal = refuse(e);
        if (refusal !== undefined) throw refusal;
      },
      onAvailability: (up) => availability.push(up),
    },
    logger,
    { watched: async () => watched },
  );
  await adapter.start();
  juliet = await connectUser(prosody, prosody.users[0]!);
  await requestRoster(juliet);
});

afterAll(async () => {
  await juliet?.stop();
  await adapter?.stop();
  relay?.close();
  await prosody?.stop();
});

/** The first recorded event after index `from` that matches. */
function eventAfter(what: string, from: number, match: (e: CanonicalEvent) => boolean): Promise<CanonicalEvent> {
  return waitFor(what, () => events.slice(from).find(match));
}

const fromJuliet = (e: CanonicalEvent): boolean => e.from.user === 'juliet' && e.from.domain === prosody.domain;

function subscription(action: SubscriptionAction, from: Address, to: Address): CanonicalEvent {
  return subscriptionEvent({ origin: 'sip', from, to, action, dedupeKey: `test:${action}:${Math.random()}`, createdAt: Date.now() });
}

describe('XmppAdapter presence with Prosody', () => {
  it('given watched users at start-up, then each is probed once on the first connect', async () => {
    const probes = (log: string, user: string): number => countOf(log, `inbound presence probe from ${aliceJid} for ${user}@${prosody.domain}`);
    const log = await waitFor('both probes in the server log', async () => {
      const text = await prosody.log();
      return probes(text, 'juliet') > 0 && probes(text, 'romeo') > 0 ? text : undefined;
    });
    expect([probes(log, 'juliet'), probes(log, 'romeo')]).toEqual([1, 1]);
    watched = [];
  });

  it('given a subscribe from a SIP user, when the XMPP user approves, then approve and her current presence reach the core', async () => {
    const mark = events.length;
    await adapter.send(subscription('subscribe', ALICE, JULIET));
    const request = await juliet.next((el) => el.name === 'presence' && el.attrs['type'] === 'subscribe' && el.attrs['from'] === aliceJid);
    expect(request.attrs['to']).toBe(`juliet@${prosody.domain}`);

    await juliet.client.send(xml('presence', { to: aliceJid, type: 'subscribed' }));
    const approve = await eventAfter('approve', mark, (e) => e.kind === 'subscription' && fromJuliet(e));
    expect(approve).toMatchObject({ kind: 'subscription', action: 'approve', origin: 'xmpp', to: ALICE });
    // RFC 6121 §3.1.5: the approving user's server sends her current presence to the new subscriber.
    // (Prosody answers the request itself with an unavailable from her bare JID first.)
    const presence = await eventAfter('presence after approval', mark, (e) => e.kind === 'presence' && fromJuliet(e) && e.from.resource === 'test');
    expect(presence).toMatchObject({ availability: 'available', priority: 0, from: { ...JULIET, resource: 'test' }, to: ALICE });
  });

  it('given the XMPP user changes her presence, then a presence event with availability, note, priority and resource arrives', async () => {
    const mark = events.length;
    await juliet.client.send(xml('presence', {}, xml('show', {}, 'away'), xml('status', {}, 'at lunch, back at 2 ☕'), xml('priority', {}, '5')));
    const e = (await eventAfter('away presence', mark, (ev) => ev.kind === 'presence' && fromJuliet(ev))) as PresenceEvent;
    expect(e).toMatchObject({
      kind: 'presence',
      origin: 'xmpp',
      availability: 'away',
      note: 'at lunch, back at 2 ☕',
      priority: 5,
      from: { ...JULIET, resource: 'test' },
      to: ALICE,
    });
  });

  it('given the XMPP user subscribes to a SIP user, then a subscribe event with the request id as dedupe key arrives', async () => {
    const mark = events.length;
    await juliet.client.send(xml('presence', { to: aliceJid, type: 'subscribe', id: 'sub-1' }));
    const e = await eventAfter('subscribe', mark, (ev) => ev.kind === 'subscription' && fromJuliet(ev));
    expect(e).toMatchObject({
      kind: 'subscription',
      action: 'subscribe',
      from: JULIET,
      to: ALICE,
      originRef: 'sub-1',
      dedupeKey: `xmpp:juliet@${prosody.domain}:sub-1`,
    });
  });

  it('given the bridge approves and sends presence, then the XMPP user sees subscribed and the presence', async () => {
    await adapter.send(subscription('approve', ALICE, JULIET));
    await adapter.send(
      presenceEvent({ origin: 'sip', from: ALICE, to: JULIET, availability: 'dnd', note: 'on a call', dedupeKey: 'test:dnd', createdAt: Date.now() }),
    );
    const subscribed = await juliet.next((el) => el.name === 'presence' && el.attrs['type'] === 'subscribed' && el.attrs['from'] === aliceJid);
    expect(subscribed.attrs['to']).toBe(`juliet@${prosody.domain}`);
    const presence = await juliet.next((el) => el.name === 'presence' && el.attrs['from'] === aliceJid && el.getChildText('show') === 'dnd');
    expect(presence.attrs['type']).toBeUndefined();
    expect(presence.getChildText('status')).toBe('on a call');
  });

  it('given the bridge probes a user it is subscribed to, then the server answers with her current presence', async () => {
    const mark = events.length;
    await adapter.send(probeEvent({ origin: 'sip', from: ALICE, to: JULIET, dedupeKey: 'test:probe', createdAt: Date.now() }));
    const e = await eventAfter('probe answer', mark, (ev) => ev.kind === 'presence' && fromJuliet(ev));
    expect(e).toMatchObject({ availability: 'away', note: 'at lunch, back at 2 ☕', from: { ...JULIET, resource: 'test' }, to: ALICE });
  });

  it('given the XMPP user probes a SIP user, then a probe event arrives', async () => {
    const mark = events.length;
    await juliet.client.send(xml('presence', { to: aliceJid, type: 'probe', id: 'probe-1' }));
    const e = await eventAfter('probe', mark, (ev) => ev.kind === 'probe' && fromJuliet(ev));
    expect(e).toMatchObject({ kind: 'probe', to: ALICE, originRef: 'probe-1' });
  });

  it('given a subscribe to a domain the server cannot reach, then the bounce becomes a deny from that address', async () => {
    const mark = events.length;
    const nowhere: Address = { side: 'xmpp', user: 'someone', domain: 'nowhere.example' };
    const sent = subscription('subscribe', ALICE, nowhere);
    await adapter.send(sent);
    const e = await eventAfter('deny from the bounce', mark, (ev) => ev.kind === 'subscription' && ev.from.domain === 'nowhere.example');
    expect(e).toMatchObject({ origin: 'xmpp', action: 'deny', from: nowhere, to: ALICE, dedupeKey: `xmpp-error:${sent.id}`, originRef: sent.id });
  });

  it('given the core refuses a subscribe, then the XMPP user gets a presence error with its condition', async () => {
    refuse = (e) =>
      e.kind === 'subscription' && e.to.user === 'ghost' ? new BridgeError('ADDRESS_UNMAPPED', 'nobody is known by that address', { condition: 'item-not-found' }) : undefined;
    try {
      await juliet.client.send(xml('presence', { to: `ghost@${prosody.component}`, type: 'subscribe', id: 'sub-ghost' }));
      const err = await juliet.next((el) => el.name === 'presence' && el.attrs['type'] === 'error' && el.attrs['id'] === 'sub-ghost');
      expect(err.attrs['from']).toBe(`ghost@${prosody.component}`);
      expect(err.getChild('error')?.attrs['type']).toBe('cancel');
      expect(err.getChild('error')?.getChild('item-not-found', NS_STANZAS)).toBeDefined();
      expect(err.getChild('error')?.getChildText('text', NS_STANZAS)).toBe('nobody is known by that address');
    } finally {
      refuse = () => undefined;
    }
  });

  it('given the component connection drops, when it reconnects, then the watched users are probed and their presence arrives again', async () => {
    watched = [{ watcher: ALICE, presentity: JULIET }];
    const mark = events.length;
    const reports = availability.length;
    const probeLine = `inbound presence probe from ${aliceJid} for juliet@${prosody.domain}`;
    const probesBefore = countOf(await prosody.log(), probeLine);
    relay.cut();
    await waitFor('offline then online again', () => (availability.slice(reports).join() === 'false,true' ? true : undefined));
    const e = await eventAfter('presence after the re-probe', mark, (ev) => ev.kind === 'presence' && fromJuliet(ev));
    expect(e).toMatchObject({ availability: 'away', note: 'at lunch, back at 2 ☕', from: { ...JULIET, resource: 'test' }, to: ALICE });
    // The server re-sends nothing by itself: the bridge's probe is what brought it.
    expect(countOf(await prosody.log(), probeLine) - probesBefore).toBe(1);
  });

  it('given the bridge stops, then the XMPP user sees the SIP user go unavailable', async () => {
    const before = juliet.received.length;
    await adapter.stop();
    const offline = await waitFor('unavailable from the SIP user', () =>
      juliet.received.slice(before).find((el) => el.name === 'presence' && el.attrs['from'] === aliceJid && el.attrs['type'] === 'unavailable'),
    );
    expect(offline.attrs['to']).toBe(`juliet@${prosody.domain}`);
  });
});

function countOf(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

interface Relay {
  readonly port: number;
  /** Destroys every relayed connection (both ends), as a network failure would. */
  cut(): void;
  close(): void;
}

/** A loopback TCP relay to `targetPort`. */
async function startRelay(targetPort: number): Promise<Relay> {
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((inbound) => {
    const outbound = connect({ host: '127.0.0.1', port: targetPort });
    const pair: [Socket, Socket] = [inbound, outbound];
    pairs.add(pair);
    const end = (): void => {
      inbound.destroy();
      outbound.destroy();
      pairs.delete(pair);
    };
    inbound.on('error', end).on('close', end);
    outbound.on('error', end).on('close', end);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    cut: () => {
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
    },
    close: () => {
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
      server.close();
    },
  };
}
