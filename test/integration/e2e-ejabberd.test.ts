/**
 * The bridge mounted as an external component (XEP-0114) on a real ejabberd (issue 7): messages
 * both ways and presence both ways, with sipp and raw SIP sockets on the SIP side. Everything on
 * loopback; ejabberd is started once for the file (test/support/ejabberd.ts, config quoted in
 * docs/ejabberd.md).
 */
import { createSocket, type Socket } from 'node:dgram';
import xml from '@xmpp/xml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Bridge } from '../../src/core/bridge.js';
import { createLogger, silentLogger } from '../../src/telemetry/logger.js';
import { startEjabberd, type Ejabberd } from '../support/ejabberd.js';
import { freePort, waitFor } from '../support/ports.js';
import { header, newBranch, rawRequest, RawUdpPeer, statusOf } from '../support/raw-sip.js';
import { SipWatcher, subscriptionState } from '../support/sip-watcher.js';
import { startSipp } from '../support/sipp.js';
import { connectUser, requestRoster, type TestUser } from '../support/xmpp-client.js';

let ejabberd: Ejabberd;
let bridge: Bridge;
let juliet: TestUser;
let bridgePort: number;
/** The bridge's outbound proxy: a sipp UAS, or a bare UDP socket, per test. */
let proxyPort: number;

beforeAll(async () => {
  ejabberd = await startEjabberd({ domain: 'xmpp.test', component: 'sip.xmpp.test' });
  bridgePort = await freePort();
  proxyPort = await freePort();
  const config = parseConfig({
    sip: {
      listen: [{ transport: 'udp', host: '127.0.0.1', port: bridgePort }],
      outboundProxy: `sip:127.0.0.1:${proxyPort};transport=udp`,
      timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
    },
    xmpp: {
      component: ejabberd.component,
      server: { host: ejabberd.host, port: ejabberd.componentPort },
      secret: ejabberd.secret,
      reconnect: { initialMs: 100, maxMs: 1000 },
    },
    mapping: { xmppDomains: [ejabberd.domain], identities: [{ e164: '+15551234567', sip: 'sip:alice@corp.example' }] },
    // Every user of the XMPP domain and of corp.example may be seen (default is nobody).
    presence: { visible: [`*@${ejabberd.domain}`, 'sip:*@corp.example'] },
    queue: { maxAttempts: 3, backoffMs: 100 },
  });
  const logger = process.env['BRIDGE_TEST_LOG'] ? createLogger({ level: 'debug' }) : silentLogger();
  bridge = createBridge(config, logger);
  await bridge.start();
  juliet = await connectUser(ejabberd, ejabberd.users[0]!);
  // Roster pushes and subscription approvals go to sessions that asked for the roster.
  await requestRoster(juliet);
}, 60_000);

afterAll(async () => {
  await juliet?.stop();
  await bridge?.stop();
  await ejabberd?.stop();
});

describe('messages through ejabberd', () => {
  it('delivers juliet’s message to a number as a MESSAGE for the mapped SIP user', async () => {
    const uas = await startSipp({ scenario: 'uas-message.xml', role: 'uas', transport: 'udp', port: proxyPort, keys: { status: '200', reason: 'OK' } });
    try {
      const body = 'Hello Alice from ejabberd ☕ 𝄞';
      await juliet.client.send(xml('message', { to: `+15551234567@${ejabberd.component}`, type: 'chat', id: 'ej-x2s-1' }, xml('body', {}, body)));

      const result = await uas.done;
      expect(result.code, result.output + result.errors).toBe(0);
      expect(result.messages).toContain('MESSAGE sip:alice@corp.example SIP/2.0');
      expect(result.messages).toMatch(/From: <sip:juliet@xmpp\.test>;tag=/);
      expect(result.messages).toContain(body);
    } finally {
      await uas.stop();
    }
  });

  it('delivers a SIP MESSAGE for juliet to her client, from the escaped SIP address', async () => {
    const peer = await RawUdpPeer.open();
    try {
      const body = 'Hi Juliet, via the component on ejabberd';
      await peer.send(rawRequest({ uri: `sip:juliet@${ejabberd.domain}`, via: { transport: 'UDP', port: peer.port }, body }), bridgePort);

      const msg = await juliet.next((el) => el.is('message') && el.getChildText('body') === body);
      expect(msg.attrs['from']).toBe(`carol\\40sip.example.com@${ejabberd.component}`);
      expect(msg.attrs['to']).toMatch(new RegExp(`^juliet@${ejabberd.domain}`));
      // RFC 3428 §7: 202, the bridge relays the message.
      expect(statusOf(await waitForFinal(peer))).toBe(202);
    } finally {
      await peer.close();
    }
  });
});

describe('presence through ejabberd', () => {
  it('given a SIP watcher subscribes to juliet, when she approves in her client, then it gets NOTIFY active', async () => {
    const aliceJid = `alice\\40corp.example@${ejabberd.component}`;
    const watcher = await SipWatcher.subscribe(bridgePort, 'alice@corp.example', `juliet@${ejabberd.domain}`);
    try {
      await watcher.notify('NOTIFY pending', (n) => subscriptionState(n).startsWith('pending'));
      const request = await juliet.next((el) => el.name === 'presence' && el.attrs['type'] === 'subscribe' && el.attrs['from'] === aliceJid);
      // ejabberd addresses the request to the full JID of the resource it delivers it to
      // (Prosody keeps the bare JID the bridge sent).
      expect(request.attrs['to']?.startsWith(`juliet@${ejabberd.domain}`)).toBe(true);

      await juliet.client.send(xml('presence', { to: aliceJid, type: 'subscribed' }));
      const active = await watcher.notify('NOTIFY active', (n) => subscriptionState(n).startsWith('active'));
      expect(header(active, 'Event')).toBe('presence');

      // Un-SUBSCRIBE (RFC 6665 §4.2.1.4), so the bridge has no watcher left to NOTIFY at stop.
      expect(statusOf(await watcher.request(0))).toBe(200);
      await watcher.notify('NOTIFY terminated', (n) => subscriptionState(n).startsWith('terminated'));
    } finally {
      await watcher.close();
    }
  });

  it('given juliet subscribes to a SIP user, then ejabberd routes it to the bridge, which SUBSCRIBEs through its proxy', async () => {
    const proxy = await UdpProxy.bind(proxyPort);
    try {
      await juliet.client.send(xml('presence', { to: `bob\\40corp.example@${ejabberd.component}`, type: 'subscribe', id: 'ej-sub-bob' }));

      const subscribe = await waitFor('the bridge’s SUBSCRIBE at its outbound proxy', () => proxy.received.find((m) => m.startsWith('SUBSCRIBE ')));
      expect(subscribe).toMatch(/^SUBSCRIBE sip:bob@corp\.example[ ;]/);
      expect(header(subscribe, 'Event')).toBe('presence');
      expect(header(subscribe, 'From')).toContain('sip:juliet@xmpp.test');
      // No SIP presence server here: refuse it, so the transaction ends at once.
      await proxy.answer(subscribe, '404 Not Found');
    } finally {
      await proxy.close();
    }
  });

  it('given juliet watches a SIP user, when she logs in again, then ejabberd probes the bridge and the new session gets the SIP user’s presence', async () => {
    const carolJid = `carol\\40corp.example@${ejabberd.component}`;
    const proxy = await UdpProxy.bind(proxyPort);
    let second: TestUser | undefined;
    try {
      await juliet.client.send(xml('presence', { to: carolJid, type: 'subscribe', id: 'ej-sub-carol' }));
      const subscribe = await waitFor('the SUBSCRIBE for carol', () => proxy.received.find((m) => m.startsWith('SUBSCRIBE sip:carol@corp.example')));
      await proxy.answer(subscribe, '200 OK', ['Expires: 600', `Contact: <sip:carol@127.0.0.1:${proxyPort}>`]);
      // Carol's presence server accepts at once and tells her state (RFC 6665 §4.2.1.2).
      await proxy.notify(subscribe, bridgePort, 1, 'active;expires=600', 'open', 'at my desk');
      await waitFor('the 200 to the NOTIFY', () => proxy.received.find((m) => m.startsWith('SIP/2.0 200') && header(m, 'CSeq') === '1 NOTIFY'));
      await juliet.next((el) => el.name === 'presence' && el.attrs['type'] === 'subscribed' && el.attrs['from'] === carolJid);
      await juliet.next((el) => el.name === 'presence' && el.attrs['from']?.startsWith(carolJid) === true && el.getChildText('status') === 'at my desk');

      // A second session: ejabberd probes carol for it (from juliet's full JID, where RFC 6121
      // §4.3.1 says the bare one); the bridge answers from the state it holds.
      second = await connectUser(ejabberd, ejabberd.users[0]!, 'second');
      const probed = await second.next((el) => el.name === 'presence' && el.attrs['from']?.startsWith(carolJid) === true && el.getChildText('status') === 'at my desk');
      expect(probed.attrs['to']).toBe(second.jid);
      expect(probed.attrs['type']).toBeUndefined();

      // Unsubscribing ends the SIP subscription, so nothing is left for the bridge at stop.
      await juliet.client.send(xml('presence', { to: carolJid, type: 'unsubscribe' }));
      const ending = await waitFor('the un-SUBSCRIBE for carol', () => proxy.received.find((m) => m.startsWith('SUBSCRIBE sip:') && /^0$/.test(header(m, 'Expires') ?? '')));
      await proxy.answer(ending, '200 OK', ['Expires: 0']);
      // RFC 6665 §4.2.1.4: the notifier's last NOTIFY ends the subscription.
      await proxy.notify(subscribe, bridgePort, 2, 'terminated;reason=timeout', 'closed', 'gone');
      await waitFor('the 200 to the last NOTIFY', () => proxy.received.find((m) => m.startsWith('SIP/2.0 200') && header(m, 'CSeq') === '2 NOTIFY'));
    } finally {
      await second?.stop();
      await proxy.close();
    }
  });
});

/** The first final response a raw peer receives (provisional ones skipped), bounded. */
async function waitForFinal(peer: RawUdpPeer): Promise<string> {
  for (let i = 0; i < 10; i++) {
    const msg = await peer.next();
    if (statusOf(msg) >= 200) return msg;
  }
  throw new Error('no final response among the first 10 messages');
}

/** The tag the fake proxy puts on the dialogs it answers. */
const PROXY_TAG = 'proxy1';

/** A bare UDP socket on the outbound proxy's port that keeps what it receives and can answer. */
class UdpProxy {
  readonly received: string[] = [];

  private constructor(private readonly socket: Socket) {
    socket.on('message', (d) => {
      if (this.received.length < 100) this.received.push(d.toString('utf8'));
    });
  }

  static async bind(port: number): Promise<UdpProxy> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '127.0.0.1', () => resolve());
    });
    return new UdpProxy(socket);
  }

  /** A response to `request` (RFC 3261 §8.2.6.2: Via, From, To, Call-ID and CSeq copied) back to its Via. */
  answer(request: string, status: string, extra: string[] = []): Promise<void> {
    const via = header(request, 'Via') ?? '';
    const port = Number(/^SIP\/2\.0\/UDP [^:;\s]+:(\d+)/i.exec(via)?.[1] ?? 5060);
    const to = header(request, 'To') ?? '';
    return this.send(
      [
        `SIP/2.0 ${status}`,
        `Via: ${via}`,
        `From: ${header(request, 'From') ?? ''}`,
        `To: ${/;tag=/.test(to) ? to : `${to};tag=${PROXY_TAG}`}`,
        `Call-ID: ${header(request, 'Call-ID') ?? ''}`,
        `CSeq: ${header(request, 'CSeq') ?? ''}`,
        ...extra,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
      port,
    );
  }

  /** NOTIFY number `cseq` in the dialog `subscribe` created (RFC 6665 §4.2.2), with a PIDF body (RFC 3863). */
  notify(subscribe: string, port: number, cseq: number, state: string, basic: 'open' | 'closed', note: string): Promise<void> {
    const target = /<([^>]+)>/.exec(header(subscribe, 'Contact') ?? '')?.[1] ?? '';
    const body = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:carol@corp.example">',
      `<tuple id="phone"><status><basic>${basic}</basic></status><note>${note}</note></tuple>`,
      '</presence>',
    ].join('\r\n');
    return this.send(
      [
        `NOTIFY ${target} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${newBranch()};rport`,
        'Max-Forwards: 70',
        `From: ${header(subscribe, 'To') ?? ''};tag=${PROXY_TAG}`,
        `To: ${header(subscribe, 'From') ?? ''}`,
        `Call-ID: ${header(subscribe, 'Call-ID') ?? ''}`,
        `CSeq: ${cseq} NOTIFY`,
        `Contact: <sip:carol@127.0.0.1:${this.port}>`,
        'Event: presence',
        `Subscription-State: ${state}`,
        'Content-Type: application/pidf+xml',
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        body,
      ].join('\r\n'),
      port,
    );
  }

  private get port(): number {
    return this.socket.address().port;
  }

  private send(text: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(text, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
