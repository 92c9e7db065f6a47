/**
 * One message, one trace, across processes (issue 7 item 1): a SIP edge, a router and an XMPP
 * edge run as three bridge processes sharing a Redis queue, each exporting its spans over
 * OTLP/HTTP to a collector this test runs (node:http, keeping the decoded spans in memory: the
 * in-memory exporter, across processes). A MESSAGE from a raw SIP peer reaches a Prosody user,
 * and a chat message from that user reaches the SIP peer; each must leave one connected trace,
 * rooted at the receiving adapter's span, its spans from more than one process.
 *
 * The exporter's BatchSpanProcessor sends every ~5 s, so the test waits (bounded) for the
 * collector to hold the spans rather than for a fixed time.
 */
import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import xml from '@xmpp/xml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBridgeProcess, type BridgeProcess } from '../support/bridge-process.js';
import { freePort, waitFor } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { header, newBranch, rawRequest, RawUdpPeer, statusOf } from '../support/raw-sip.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { connectUser, type TestUser } from '../support/xmpp-client.js';

/** A span as the collector received it (OTLP JSON: ids in hex). */
interface CollectedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Readonly<Record<string, unknown>>;
}

/** OTLP/HTTP JSON (opentelemetry-proto's ExportTraceServiceRequest), only the fields read here. */
interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<{ key: string; value: OtlpValue }> };
    scopeSpans?: Array<{
      spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: Array<{ key: string; value: OtlpValue }> }>;
    }>;
  }>;
}

/** OTLP span kinds (opentelemetry-proto SpanKind). */
const SERVER = 2;

const SERVICES = { sipEdge: 'bridge-sip-edge', router: 'bridge-router', xmppEdge: 'bridge-xmpp-edge' } as const;

let redis: RedisServer;
let prosody: Prosody;
let collector: Server;
let juliet: TestUser;
/** The SIP side's peer: sends the MESSAGE in, and is the outbound proxy that answers the one out. */
let sipPeer: RawUdpPeer;
let sipPort: number;
const spans: CollectedSpan[] = [];
const processes: BridgeProcess[] = [];

beforeAll(async () => {
  [redis, prosody] = await Promise.all([startRedis(), startProsody({ domain: 'xmpp.test', component: 'sip.xmpp.test' })]);
  const collectorPort = await freePort();
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const raw = Buffer.concat(chunks);
        const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        spans.push(...decode(JSON.parse(body.toString('utf8')) as OtlpRequest));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
  });
  await new Promise<void>((resolve) => collector.listen(collectorPort, '127.0.0.1', resolve));
  sipPeer = await RawUdpPeer.open();
  sipPort = await freePort();

  const base = (serviceName: string) => ({
    xmpp: { component: prosody.component, server: { host: prosody.host, port: prosody.componentPort }, secret: prosody.secret },
    mapping: { xmppDomains: [prosody.domain] },
    queue: { backend: 'redis' },
    redis: { url: redis.url, prefix: redis.prefix() },
    log: { level: 'info' },
    telemetry: { tracing: { enabled: true, otlpUrl: `http://127.0.0.1:${collectorPort}/v1/traces` }, serviceName },
  });
  // One Redis prefix for all three: they share the queues.
  const shared = base('');
  const config = (role: string, serviceName: string, extra: Record<string, unknown> = {}) => ({
    ...shared,
    role,
    telemetry: { ...shared.telemetry, serviceName },
    ...extra,
  });
  const launch = async (name: string, cfg: Record<string, unknown>): Promise<void> => {
    // Three start at once on a shared machine: more time than one alone needs.
    processes.push(await startBridgeProcess({ name, config: cfg, startTimeoutMs: 60_000 }));
  };
  await Promise.all([
    launch(
      'sip-edge',
      config('sip-edge', SERVICES.sipEdge, {
        sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: sipPort }], outboundProxy: `sip:127.0.0.1:${sipPeer.port}`, timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 } },
      }),
    ),
    launch('router', config('router', SERVICES.router)),
    launch('xmpp-edge', config('xmpp-edge', SERVICES.xmppEdge)),
  ]);
  juliet = await connectUser(prosody, prosody.users[0]!);
}, 120_000);

afterAll(async () => {
  await juliet?.stop();
  await Promise.allSettled(processes.map((p) => p.close()));
  await sipPeer?.close();
  await new Promise<void>((resolve) => (collector ? collector.close(() => resolve()) : resolve()));
  await prosody?.stop();
  await redis?.close();
}, 60_000);

describe('tracing across processes', () => {
  it('gives a SIP MESSAGE delivered to an XMPP user one trace, rooted at the SIP edge, through the router to the XMPP edge', async () => {
    // Given three processes exporting to the collector
    const callId = `${newBranch()}@127.0.0.1`;
    // When a MESSAGE for juliet arrives at the SIP edge
    await sipPeer.send(rawRequest({ uri: `sip:juliet@${prosody.domain}`, callId, body: 'traced across processes', via: { transport: 'UDP', port: sipPeer.port } }), sipPort);
    expect(statusOf(await sipPeer.next(10_000))).toBe(202);
    await juliet.next((el) => el.name === 'message' && el.getChildText('body') === 'traced across processes', 15_000);

    // Then, once exported, every span of its trace forms one tree rooted at the receive span
    const receive = await waitFor('the sip receive span', () => spans.find((s) => s.name === 'sip receive MESSAGE' && s.attributes['sip.call_id'] === callId), 20_000);
    const trace = await waitFor(
      'the XMPP edge to export its spans of this trace',
      () => {
        const mine = spans.filter((s) => s.traceId === receive.traceId);
        return mine.some((s) => s.name === 'xmpp write message') ? mine : undefined;
      },
      20_000,
    );
    expect(receive.kind).toBe(SERVER);
    expect(receive.service).toBe(SERVICES.sipEdge);
    expect(receive.attributes).toMatchObject({ 'sip.status_code': 202, 'network.transport': 'udp' });
    expectOneTree(trace, receive);
    const route = trace.find((s) => s.name === 'route message');
    const send = trace.find((s) => s.name === 'xmpp send message');
    expect(route).toMatchObject({ service: SERVICES.router, parentSpanId: receive.spanId });
    expect(route?.attributes).toMatchObject({ 'bridge.policy.decision': 'allowed', 'bridge.to.domain': prosody.domain });
    expect(send).toMatchObject({ service: SERVICES.xmppEdge, parentSpanId: route?.spanId });
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set(Object.values(SERVICES)));
  }, 60_000);

  it('gives a chat message from an XMPP user to a SIP user one trace, rooted at the XMPP edge, ending in the SIP transaction', async () => {
    // Given the SIP peer answers the MESSAGE it will get as the outbound proxy
    const answered = answerNextMessage(200);
    // When juliet writes to carol@sip.example.com through the component
    const stanzaId = `trace-${newBranch()}`;
    await juliet.client.send(xml('message', { to: `carol\\40sip.example.com@${prosody.component}`, type: 'chat', id: stanzaId }, xml('body', {}, 'traced back')));
    const callId = await answered;

    // Then the trace runs from the XMPP edge's receive span to the SIP edge's client transaction
    const receive = await waitFor('the xmpp receive span', () => spans.find((s) => s.name === 'xmpp receive message' && s.attributes['xmpp.stanza_id'] === stanzaId), 20_000);
    const trace = await waitFor(
      'the SIP edge to export its spans of this trace',
      () => {
        const mine = spans.filter((s) => s.traceId === receive.traceId);
        return mine.some((s) => s.name === 'sip request MESSAGE') ? mine : undefined;
      },
      20_000,
    );
    expect(receive).toMatchObject({ service: SERVICES.xmppEdge, kind: SERVER });
    expect(receive.attributes).toMatchObject({ 'bridge.outcome': 'handed-on', 'xmpp.to': `carol\\40sip.example.com@${prosody.component}` });
    expectOneTree(trace, receive);
    const request = trace.find((s) => s.name === 'sip request MESSAGE');
    const send = trace.find((s) => s.name === 'sip send message');
    expect(request).toMatchObject({ service: SERVICES.sipEdge, parentSpanId: send?.spanId });
    expect(request?.attributes).toMatchObject({ 'sip.call_id': callId, 'sip.status_code': 200 });
    expect(String(request?.attributes['sip.via.branch'])).toMatch(/^z9hG4bK/);
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set(Object.values(SERVICES)));
  }, 60_000);
});

/** Every span's parent is in the trace, but the root's; the root is `root`; no span is left out. */
function expectOneTree(trace: readonly CollectedSpan[], root: CollectedSpan): void {
  const ids = new Set(trace.map((s) => s.spanId));
  const roots = trace.filter((s) => s.parentSpanId === undefined || !ids.has(s.parentSpanId));
  expect(roots.map((s) => s.name)).toEqual([root.name]);
  expect(roots[0]?.spanId).toBe(root.spanId);
  // Each span reaches the root by parent links (no cycle, no second tree).
  const byId = new Map(trace.map((s) => [s.spanId, s]));
  for (const span of trace) {
    let at: CollectedSpan | undefined = span;
    for (let hops = 0; at !== undefined && at.spanId !== root.spanId && hops <= trace.length; hops++) at = at.parentSpanId === undefined ? undefined : byId.get(at.parentSpanId);
    expect(at?.spanId, `${span.name} (${span.service}) reaches the root`).toBe(root.spanId);
  }
}

/** Waits for the next MESSAGE at the SIP peer, answers it `status`, resolves with its Call-ID. */
async function answerNextMessage(status: number): Promise<string> {
  for (;;) {
    const request = await sipPeer.next(20_000);
    if (!request.startsWith('MESSAGE ')) continue;
    const copied = ['Via', 'From', 'To', 'Call-ID', 'CSeq'].map((name) => `${name}: ${header(request, name) ?? ''}`);
    // The response goes where the top Via says: the edge's sent-by (RFC 3261 §18.2.2).
    const via = header(request, 'Via') ?? '';
    const port = Number(/^SIP\/2\.0\/UDP [^:;]+:(\d+)/i.exec(via)?.[1] ?? sipPort);
    await sipPeer.send([`SIP/2.0 ${status} OK`, ...copied, 'Content-Length: 0', '', ''].join('\r\n'), port);
    return header(request, 'Call-ID') ?? '';
  }
}

function decode(request: OtlpRequest): CollectedSpan[] {
  const out: CollectedSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const service = String(valueOf(rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value) ?? '');
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const attributes: Record<string, unknown> = {};
        for (const a of s.attributes ?? []) attributes[a.key] = valueOf(a.value);
        out.push({
          service,
          traceId: s.traceId,
          spanId: s.spanId,
          ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
          name: s.name,
          kind: s.kind,
          attributes,
        });
      }
    }
  }
  return out;
}

function valueOf(v: OtlpValue | undefined): unknown {
  if (v === undefined) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.boolValue !== undefined) return v.boolValue;
  return v.doubleValue;
}
