/**
 * SIP peers → the SIP adapter: sipp user agents (and, for bytes no user agent sends, a raw
 * socket) talk to one adapter listening on UDP and TCP loopback ports.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { sipSchema } from '../../src/config/schema.js';
import { BridgeError } from '../../src/core/errors.js';
import { rateLimitedError } from '../../src/core/policy/rate-limit.js';
import type { CanonicalEvent, MessageEvent } from '../../src/core/events.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { LossyUdpRelay } from '../support/lossy-udp.js';
import { header, newBranch, rawRequest, RawTcpPeer, RawUdpPeer, statusOf } from '../support/raw-sip.js';
import { startSipp, type SippOptions, type SippResult } from '../support/sipp.js';

const IDLE_MS = 300;
const MAX_CONNECTIONS = 4;
let adapter: SipAdapter;
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
    maxMessageBytes: 4096,
  });
  adapter = new SipAdapter(config, { onEvent: (e) => { events.push(e); return core(e); } }, silentLogger(), {
    transport: { idleConnectionMs: IDLE_MS, maxConnections: MAX_CONNECTIONS },
  });
  await adapter.start();
  udpPort = adapter.boundPorts().find((b) => b.transport === 'udp')!.port;
  tcpPort = adapter.boundPorts().find((b) => b.transport === 'tcp')!.port;
});

afterAll(async () => {
  await adapter?.stop();
});

beforeEach(() => {
  events.length = 0;
  core = () => Promise.resolve();
});

async function runSipp(opts: Omit<SippOptions, 'role'>): Promise<SippResult> {
  const sipp = await startSipp({ role: 'uac', ...opts });
  try {
    return await sipp.done;
  } finally {
    await sipp.stop();
  }
}

function explain(r: SippResult): string {
  return `sipp exit ${r.code}\n${r.errors}\n${r.output.slice(-2000)}`;
}

it('given UDP and TCP on port 0 on one host, then TCP listens on the UDP port (RFC 3261 §18.2.1)', () => {
  expect(tcpPort).toBe(udpPort);
});

describe.each(['udp', 'tcp'] as const)('sipp UAC over %s', (transport) => {
  it('given a MESSAGE, then it is answered 202 and reaches the core exactly once', async () => {
    const port = transport === 'udp' ? udpPort : tcpPort;
    const result = await runSipp({ scenario: 'uac-message.xml', transport, target: { host: '127.0.0.1', port }, service: 'bob' });

    expect(result.code, explain(result)).toBe(0);
    expect(events).toHaveLength(1);
    const event = events[0] as MessageEvent;
    expect(event).toMatchObject({
      kind: 'message',
      origin: 'sip',
      from: { side: 'sip', user: 'alice', domain: 'sip.example.com' },
      to: { side: 'sip', user: 'bob', domain: 'xmpp.example.org' },
      body: 'hello from sipp 1\r\n', // sipp ends its body with CRLF; the bridge keeps it as sent
      contentType: 'text/plain',
    });
    expect(event.dedupeKey).toBe(`sip:${event.originRef}:1:${/tag=(\S+)/.exec(result.messages)?.[1]}`);
  });
});

describe('retransmission over UDP', () => {
  it('given our 202 is lost, when sipp retransmits the MESSAGE, then the transaction answers it and the core sees it once', async () => {
    const relay = await LossyUdpRelay.start({ target: { host: '127.0.0.1', port: udpPort }, dropToClient: 1 });
    try {
      const result = await runSipp({ scenario: 'uac-message.xml', transport: 'udp', target: { host: '127.0.0.1', port: relay.port }, service: 'bob' });

      expect(result.code, `${explain(result)}\n${relay.seen.join('\n')}`).toBe(0);
      expect(relay.toTarget.forwarded).toBeGreaterThanOrEqual(2); // the MESSAGE and its retransmission
      expect(relay.toClient).toEqual({ dropped: 1, forwarded: relay.toTarget.forwarded - 1 });
      expect(events).toHaveLength(1);
    } finally {
      await relay.close();
    }
  });

  it('given an exact copy of an answered MESSAGE, then the same response comes back without a second event', async () => {
    const peer = await RawUdpPeer.open();
    try {
      const request = rawRequest({ branch: newBranch(), body: 'once' });
      await peer.send(request, udpPort);
      const first = await peer.next();
      await peer.send(request, udpPort);
      const second = await peer.next();

      expect(statusOf(first)).toBe(202);
      expect(second).toBe(first); // same To tag: answered from the transaction
      expect(events).toHaveLength(1);
    } finally {
      await peer.close();
    }
  });
});

describe('methods other than MESSAGE', () => {
  it('given OPTIONS (trunk keep-alive), then 200 with Allow listing MESSAGE', async () => {
    const result = await runSipp({ scenario: 'uac-options.xml', transport: 'udp', target: { host: '127.0.0.1', port: udpPort } });
    expect(result.code, explain(result)).toBe(0);
  });

  it('given an INVITE (IM only, toll-fraud guard), then 405 with Allow: MESSAGE, OPTIONS and no event', async () => {
    const result = await runSipp({ scenario: 'uac-invite-refused.xml', transport: 'tcp', target: { host: '127.0.0.1', port: tcpPort } });
    expect(result.code, explain(result)).toBe(0);
    expect(events).toHaveLength(0);
  });
});

describe('bad input', () => {
  let peer: RawUdpPeer;
  beforeEach(async () => {
    peer = await RawUdpPeer.open();
    return () => peer.close();
  });

  async function ask(text: string): Promise<string> {
    await peer.send(text, udpPort);
    return peer.next();
  }

  it('given a malformed request over UDP, then 400, and the next valid MESSAGE still gets 202', async () => {
    const bad = await ask(rawRequest({ cseqLine: 'CSeq: one MESSAGE' }));
    const good = await ask(rawRequest({ body: 'after the bad one' }));
    expect(statusOf(bad)).toBe(400);
    expect(statusOf(good)).toBe(202);
    expect(events.map((e) => (e as MessageEvent).body)).toEqual(['after the bad one']);
  });

  it('given bytes that are not SIP over UDP, then no answer, and the adapter still answers the next request', async () => {
    await peer.send(Buffer.from([0xff, 0x00, 0x13, 0x37, 0x0d, 0x0a]), udpPort);
    const reply = await ask(rawRequest({ method: 'OPTIONS', contentType: null }));
    expect(statusOf(reply)).toBe(200); // the first thing back is the OPTIONS answer
  });

  it('given a malformed request over TCP, then 400 on the same connection, and the next MESSAGE on it gets 202', async () => {
    const tcp = await RawTcpPeer.open(tcpPort);
    try {
      tcp.send(rawRequest({ via: { transport: 'TCP', port: tcp.localPort }, cseqLine: 'CSeq: 1 MESSAGE extra' }));
      const bad = await tcp.next();
      tcp.send(rawRequest({ via: { transport: 'TCP', port: tcp.localPort }, body: 'tcp after bad' }));
      const good = await tcp.next();
      expect(statusOf(bad)).toBe(400);
      expect(statusOf(good)).toBe(202);
      expect(tcp.closed).toBe(false);
    } finally {
      tcp.close();
    }
  });

  it('given a TCP stream without Content-Length, then the connection is closed (framing is lost)', async () => {
    const tcp = await RawTcpPeer.open(tcpPort);
    tcp.send(rawRequest().replace(/Content-Length: \d+\r\n/, ''));
    await expect.poll(() => tcp.closed, { timeout: 5000 }).toBe(true);
  });

  it('given a TCP connection left idle, then the adapter closes it', async () => {
    const tcp = await RawTcpPeer.open(tcpPort);
    await expect.poll(() => tcp.closed, { timeout: IDLE_MS + 5000 }).toBe(true);
  });

  it('given the connection limit is reached, then one more connection is closed at once and the others still work', async () => {
    await expect.poll(() => adapter.openConnections, { timeout: IDLE_MS + 5000 }).toBe(0);
    const open = await Promise.all(Array.from({ length: MAX_CONNECTIONS }, () => RawTcpPeer.open(tcpPort)));
    const extra = await RawTcpPeer.open(tcpPort);
    try {
      await expect.poll(() => extra.closed, { timeout: 5000 }).toBe(true);
      const first = open[0]!;
      first.send(rawRequest({ via: { transport: 'TCP', port: first.localPort }, method: 'OPTIONS', contentType: null }));
      expect(statusOf(await first.next())).toBe(200);
    } finally {
      for (const c of [...open, extra]) c.close();
    }
  });

  it('given a body that is not text/plain, then 415 with Accept: text/plain and no event', async () => {
    const reply = await ask(rawRequest({ contentType: 'text/html', body: '<b>hi</b>' }));
    expect(statusOf(reply)).toBe(415);
    expect(header(reply, 'Accept')).toBe('text/plain');
    expect(events).toHaveLength(0);
  });

  it('given a text/plain body in another charset, then 415', async () => {
    const reply = await ask(rawRequest({ contentType: 'text/plain; charset=ISO-8859-1', body: 'hi' }));
    expect(statusOf(reply)).toBe(415);
  });

  it('given a Request-URI that is not sip:, sips: or tel:, then 416', async () => {
    const reply = await ask(rawRequest({ uri: 'im:bob@xmpp.example.org' }));
    expect(statusOf(reply)).toBe(416);
    expect(events).toHaveLength(0);
  });

  it('given a tel: Request-URI, then the core gets a message for that number (RFC 3966)', async () => {
    const reply = await ask(rawRequest({ uri: 'tel:+1-555-123-4567', body: 'to a number' }));
    expect(statusOf(reply)).toBe(202);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'message', to: { side: 'sip', user: '+1-555-123-4567', telephone: true } });
  });

  it('given a CANCEL for a MESSAGE still in its transaction, then 200; for no transaction, then 481', async () => {
    const branch = newBranch();
    const callId = 'cancel-me@127.0.0.1';
    await ask(rawRequest({ branch, callId, body: 'to be cancelled' }));
    const matching = await ask(rawRequest({ method: 'CANCEL', branch, callId, contentType: null }));
    const stray = await ask(rawRequest({ method: 'CANCEL', contentType: null }));
    expect(statusOf(matching)).toBe(200);
    expect(statusOf(stray)).toBe(481);
    expect(events).toHaveLength(1);
  });

  it('given a Require naming an extension, then 420 with Unsupported naming it (we support none)', async () => {
    const reply = await ask(rawRequest({ extraHeaders: ['Require: 100rel'], body: 'needs 100rel' }));
    expect(statusOf(reply)).toBe(420);
    expect(header(reply, 'Unsupported')).toBe('100rel');
    expect(events).toHaveLength(0);
  });

  it('given a request larger than maxMessageBytes, then it is refused with 413', async () => {
    const reply = await ask(rawRequest({ body: 'x'.repeat(5000) }));
    expect(statusOf(reply)).toBe(413);
    expect(events).toHaveLength(0);
  });
});

describe('what the core answers', () => {
  let peer: RawUdpPeer;
  beforeEach(async () => {
    peer = await RawUdpPeer.open();
    return () => peer.close();
  });

  it.each([
    { name: 'an unmapped address (item-not-found)', err: new BridgeError('ADDRESS_UNMAPPED', 'no such user', { condition: 'item-not-found' }), status: 404 },
    { name: 'a policy denial with its own SIP status', err: new BridgeError('POLICY', 'rate', { condition: 'policy-violation', sipStatus: 403 }), status: 403 },
    { name: 'a full queue (resource-constraint)', err: new BridgeError('QUEUE_FULL', 'full', { condition: 'resource-constraint' }), status: 500 },
    { name: 'an error that is no BridgeError', err: new Error('boom'), status: 500 },
  ])('given the core rejects with $name, then the MESSAGE is answered $status', async ({ err, status }) => {
    core = () => Promise.reject(err);
    await peer.send(rawRequest({ body: 'refused' }), udpPort);
    expect(statusOf(await peer.next())).toBe(status);
  });

  it('given the queue cannot keep the message (Redis away), then 503 with Retry-After, so the sender retries', async () => {
    core = () => Promise.reject(new BridgeError('QUEUE_UNAVAILABLE', 'Redis is not reachable', { condition: 'remote-server-timeout', sipStatus: 503, retryable: true }));
    await peer.send(rawRequest({ body: 'later' }), udpPort);
    const reply = await peer.next();
    expect(statusOf(reply)).toBe(503);
    expect(header(reply, 'Retry-After')).toBe('5');
  });

  it('given a partner over its rate, then 503 with the Retry-After its bucket names', async () => {
    core = () => Promise.reject(rateLimitedError(2500, 'messages from partner globex'));
    await peer.send(rawRequest({ body: 'flood' }), udpPort);
    const reply = await peer.next();
    expect(statusOf(reply)).toBe(503);
    expect(header(reply, 'Retry-After')).toBe('3');
  });

  it('given the core takes its time, then a retransmission meanwhile is absorbed and one 202 follows', async () => {
    let release!: () => void;
    core = () => new Promise<void>((resolve) => (release = resolve));
    const request = rawRequest({ branch: newBranch(), body: 'slow' });
    await peer.send(request, udpPort);
    await expect.poll(() => events.length).toBe(1);
    await peer.send(request, udpPort);
    // Datagrams from one socket are handled in order: the OPTIONS answer coming first shows the
    // retransmission before it got no answer (absorbed in Trying, RFC 3261 §17.2.2).
    await peer.send(rawRequest({ method: 'OPTIONS', contentType: null }), udpPort);
    expect(statusOf(await peer.next())).toBe(200);
    release();
    expect(statusOf(await peer.next())).toBe(202);
    expect(events).toHaveLength(1);
  });
});
