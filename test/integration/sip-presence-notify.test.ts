/**
 * NOTIFYs the SIP adapter's subscriber role receives (RFC 6665 §4.1.3, §4.1.2.4), from a raw
 * UDP peer playing the presence server, for the orders and faults a real server seldom
 * produces on demand: a NOTIFY before the 2xx, unknown dialogs, bad bodies, terminations.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { sipSchema } from '../../src/config/schema.js';
import { subscriptionEvent, type Address, type CanonicalEvent } from '../../src/core/events.js';
import { MemorySubscriptionStore } from '../../src/core/state/memory-subscriptions.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { waitFor } from '../support/ports.js';
import { header, newBranch, RawUdpPeer, statusOf } from '../support/raw-sip.js';

const JULIET: Address = { side: 'sip', user: 'juliet', domain: 'xmpp.example.org' };
const BOB: Address = { side: 'sip', user: 'bob', domain: 'presence.example.org' };
const PIDF = (basic: string, note: string): string =>
  `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@presence.example.org"><tuple id="t"><status><basic>${basic}</basic></status><note>${note}</note></tuple></presence>`;

let server: RawUdpPeer;
let adapter: SipAdapter;
let adapterPort: number;
let store: MemorySubscriptionStore;
const events: CanonicalEvent[] = [];

beforeAll(async () => {
  server = await RawUdpPeer.open();
  const config = sipSchema.parse({
    listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }],
    outboundProxy: `sip:127.0.0.1:${server.port}`,
    timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
  });
  store = new MemorySubscriptionStore({ maxRecords: 100 });
  adapter = new SipAdapter(config, { onEvent: (e) => (events.push(e), Promise.resolve()) }, silentLogger(), { subscriptions: store });
  await adapter.start();
  adapterPort = adapter.boundPorts()[0]!.port;
});

afterAll(async () => {
  await adapter?.stop();
  await server?.close();
});

beforeEach(async () => {
  events.length = 0;
  for (const r of await store.list('subscriber', 100)) await store.delete(r.id);
});

/** The presence server's side of one subscription dialog. */
class Dialog {
  readonly toTag = randomBytes(6).toString('hex');
  private cseq = 0;

  constructor(readonly subscribe: string) {}

  get callId(): string {
    return header(this.subscribe, 'Call-ID')!;
  }

  /** A response to the SUBSCRIBE, with our To tag. */
  async answer(status: number, expires = 600): Promise<void> {
    const lines = [
      `SIP/2.0 ${status} Whatever`,
      `Via: ${header(this.subscribe, 'Via')}`,
      `From: ${header(this.subscribe, 'From')}`,
      `To: ${withTag(header(this.subscribe, 'To')!, this.toTag)}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${header(this.subscribe, 'CSeq')}`,
      `Contact: <sip:bob@127.0.0.1:${server.port}>`,
      `Expires: ${expires}`,
      'Content-Length: 0',
      '',
      '',
    ];
    await server.send(lines.join('\r\n'), adapterPort);
  }

  /** Sends a NOTIFY in the dialog; `o.event`/`o.state` null leave the header out. */
  async notify(o: { state?: string | null; body?: string; event?: string | null; callId?: string }): Promise<void> {
    this.cseq++;
    const body = o.body ?? '';
    const lines = [
      `NOTIFY sip:juliet@127.0.0.1:${adapterPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${server.port};branch=${newBranch()};rport`,
      'Max-Forwards: 70',
      `From: <sip:bob@presence.example.org>;tag=${this.toTag}`,
      `To: ${header(this.subscribe, 'From')}`,
      `Call-ID: ${o.callId ?? this.callId}`,
      `CSeq: ${this.cseq} NOTIFY`,
      `Contact: <sip:bob@127.0.0.1:${server.port}>`,
      ...(o.event === null ? [] : [`Event: ${o.event ?? 'presence'}`]),
      ...(o.state === null ? [] : [`Subscription-State: ${o.state ?? 'active;expires=600'}`]),
      ...(body === '' ? [] : ['Content-Type: application/pidf+xml']),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ];
    await server.send(lines.join('\r\n'), adapterPort);
  }
}

/** A To header with our tag, unless the request carried one already (in the dialog). */
function withTag(to: string, tag: string): string {
  return /;\s*tag=/i.test(to) ? to : `${to};tag=${tag}`;
}

/** The next request from the adapter of `method`, skipping retransmissions of ones already taken. */
const taken = new Set<string>();
async function nextRequest(method: string, timeoutMs = 5000): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const msg = await server.next(timeoutMs);
    const key = `${header(msg, 'Call-ID')}|${header(msg, 'CSeq')}`;
    if (msg.startsWith(`${method} `) && !taken.has(key)) {
      taken.add(key);
      return msg;
    }
  }
  throw new Error(`no new ${method} arrived`);
}

/** The adapter's answer to the NOTIFY just sent. */
async function notifyAnswer(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const msg = await server.next();
    if (msg.startsWith('SIP/2.0') && /NOTIFY$/.test(header(msg, 'CSeq') ?? '')) return statusOf(msg);
  }
  throw new Error('no answer to the NOTIFY');
}

function julietSubscribes(): Promise<void> {
  return adapter.send(subscriptionEvent({ origin: 'xmpp', from: JULIET, to: BOB, action: 'subscribe', dedupeKey: randomBytes(8).toString('hex'), createdAt: Date.now() }));
}

async function subscribed(): Promise<Dialog> {
  const sending = julietSubscribes();
  const dialog = new Dialog(await nextRequest('SUBSCRIBE'));
  await dialog.answer(200);
  await sending;
  return dialog;
}

function actions(): string[] {
  return events.map((e) => (e.kind === 'subscription' ? e.action : e.kind === 'presence' ? `presence:${e.availability}` : e.kind));
}

it('given a NOTIFY active that overtakes the 2xx (RFC 6665 §4.1.2.4), then it is answered 200 and juliet gets approve and presence', async () => {
  const sending = julietSubscribes();
  const dialog = new Dialog(await nextRequest('SUBSCRIBE'));
  await dialog.notify({ body: PIDF('open', 'early bird') });
  expect(await notifyAnswer()).toBe(200);
  await dialog.answer(200);
  await sending;

  expect(actions()).toEqual(['approve', 'presence:available']);
  expect(await store.byWatcher('juliet@xmpp.example.org', 'subscriber')).toEqual([expect.objectContaining({ state: 'active' })]);
});

it('given a SUBSCRIBE sent, then it carries Event: presence, Accept: application/pidf+xml, Expires and a Contact', async () => {
  const sending = julietSubscribes();
  const request = await nextRequest('SUBSCRIBE');
  const dialog = new Dialog(request);
  await dialog.answer(200);
  await sending;

  expect(request).toMatch(/^SUBSCRIBE sip:bob@presence\.example\.org SIP\/2\.0\r\n/);
  expect(header(request, 'Event')).toBe('presence');
  expect(header(request, 'Accept')).toBe('application/pidf+xml');
  expect(header(request, 'Expires')).toBe('3600');
  expect(header(request, 'Contact')).toBe(`<sip:juliet@127.0.0.1:${adapterPort}>`);
});

it('given a NOTIFY pending, then nothing reaches juliet (RFC 8048 §5.2.1); active later brings approve', async () => {
  const dialog = await subscribed();
  await dialog.notify({ state: 'pending;expires=600', body: PIDF('open', 'not yet') });
  expect(await notifyAnswer()).toBe(200);
  expect(events).toEqual([]);
  await dialog.notify({ state: 'active;expires=600' });
  expect(await notifyAnswer()).toBe(200);
  expect(actions()).toEqual(['approve']);
});

it('given a NOTIFY for no subscription, then 481', async () => {
  const dialog = await subscribed();
  await dialog.notify({ callId: 'unknown@127.0.0.1' });
  expect(await notifyAnswer()).toBe(481);
});

it('given a NOTIFY of another event package, then 489', async () => {
  const dialog = await subscribed();
  await dialog.notify({ event: 'dialog' });
  expect(await notifyAnswer()).toBe(489);
});

it('given a NOTIFY without Subscription-State, then 400 and nothing reaches juliet', async () => {
  const dialog = await subscribed();
  await dialog.notify({ state: null, body: PIDF('open', 'x') });
  expect(await notifyAnswer()).toBe(400);
  expect(events).toEqual([]);
});

it('given a malformed PIDF, then 400 and nothing acted on; the next good NOTIFY is taken as usual', async () => {
  const dialog = await subscribed();
  await dialog.notify({ body: '<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple' });
  expect(await notifyAnswer()).toBe(400);
  expect(events).toEqual([]);
  await dialog.notify({ body: PIDF('open', 'fixed') });
  expect(await notifyAnswer()).toBe(200);
  expect(actions()).toEqual(['approve', 'presence:available']);
});

it('given the same presence twice, then juliet hears it once', async () => {
  const dialog = await subscribed();
  await dialog.notify({ body: PIDF('open', 'same') });
  await notifyAnswer();
  await dialog.notify({ body: PIDF('open', 'same') });
  await notifyAnswer();
  expect(actions()).toEqual(['approve', 'presence:available']);
});

it('given terminated;reason=rejected, then juliet is denied and the subscription is gone', async () => {
  const dialog = await subscribed();
  await dialog.notify({ state: 'terminated;reason=rejected' });
  expect(await notifyAnswer()).toBe(200);
  expect(actions()).toEqual(['deny']);
  expect(await store.byWatcher('juliet@xmpp.example.org', 'subscriber')).toEqual([]);
});

it('given terminated;reason=timeout after active, then a new SUBSCRIBE in a new dialog; its active NOTIFY brings no second approve', async () => {
  const first = await subscribed();
  await first.notify({ body: PIDF('open', 'here') });
  await notifyAnswer();
  await first.notify({ state: 'terminated;reason=timeout' });
  expect(await notifyAnswer()).toBe(200);
  const second = new Dialog(await nextRequest('SUBSCRIBE'));
  await second.answer(200);
  await second.notify({ body: PIDF('open', 'here') });
  expect(await notifyAnswer()).toBe(200);

  expect(second.callId).not.toBe(first.callId);
  expect(header(second.subscribe, 'To')).not.toMatch(/tag=/);
  expect(actions()).toEqual(['approve', 'presence:available']);
  await waitFor('the new subscription stored', async () => (await store.byWatcher('juliet@xmpp.example.org', 'subscriber')).find((r) => r.state === 'active'));
});

it('given a short subscription, then it is refreshed in its dialog; a 481 to the refresh starts a new dialog (RFC 6665 §4.1.2.2)', async () => {
  const sending = julietSubscribes();
  const first = new Dialog(await nextRequest('SUBSCRIBE'));
  await first.answer(200, 2); // the 2xx grants 2 s: a refresh is due after 1 s
  await sending;
  await first.notify({ state: 'active;expires=2' });
  await notifyAnswer();
  const refresh = await nextRequest('SUBSCRIBE');
  await new Dialog(refresh).answer(481);
  const fresh = await nextRequest('SUBSCRIBE');

  expect(header(refresh, 'Call-ID')).toBe(first.callId);
  expect(header(refresh, 'To')).toContain(`;tag=${first.toTag}`);
  expect(header(refresh, 'CSeq')).toBe('2 SUBSCRIBE');
  expect(refresh).toMatch(new RegExp(`^SUBSCRIBE sip:bob@127\\.0\\.0\\.1:${server.port} SIP/2\\.0`)); // the remote target
  expect(header(fresh, 'Call-ID')).not.toBe(first.callId);
  expect(header(fresh, 'To')).not.toMatch(/tag=/);
  await new Dialog(fresh).answer(200);
  const callIds = async (): Promise<string[]> =>
    (await store.byWatcher<{ dialog: { callId: string } }>('juliet@xmpp.example.org', 'subscriber')).map((r) => r.data.dialog.callId);
  await waitFor('the new dialog stored in place of the old', async () => ((await callIds()).join() === header(fresh, 'Call-ID') ? true : undefined));
});

it('given a 2xx but no NOTIFY within Timer N (64·T1), then the subscription counts as failed and a new SUBSCRIBE goes out', async () => {
  const first = await subscribed();
  const again = await nextRequest('SUBSCRIBE', 64 * 100 + 5000);

  expect(header(again, 'Call-ID')).not.toBe(first.callId);
  await new Dialog(again).answer(200);
  await waitFor('the new dialog stored', async () => (await store.byWatcher('juliet@xmpp.example.org', 'subscriber'))[0]);
});
