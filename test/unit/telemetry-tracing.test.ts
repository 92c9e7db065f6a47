import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { createTracing, type BridgeTracing } from '../../src/telemetry/tracing.js';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { sipSchema } from '../../src/config/schema.js';
import { FederationPolicy } from '../../src/core/policy/federation.js';
import { PartnerRegistry, partnersSchema } from '../../src/core/policy/partners.js';
import { MemoryQueue } from '../../src/core/queue/memory.js';
import { Router } from '../../src/core/router.js';
import { AddressTranslator } from '../../src/mapping/address.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { waitFor } from '../support/ports.js';
import { header, newBranch, rawRequest, RawUdpPeer, statusOf } from '../support/raw-sip.js';

/** A 200 to a request received as text (the headers a UAS copies, RFC 3261 §8.2.6.2). */
function okTo(request: string): string {
  const copied = ['Via', 'From', 'To', 'Call-ID', 'CSeq'].map((name) => `${name}: ${header(request, name) ?? ''}`);
  return ['SIP/2.0 200 OK', ...copied, 'Content-Length: 0', '', ''].join('\r\n');
}

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/;

let tracings: BridgeTracing[] = [];
afterEach(async () => {
  await Promise.all(tracings.map((t) => t.shutdown()));
  tracings = [];
});

function recording(serviceName = 'bridge'): { tracing: BridgeTracing; exporter: InMemorySpanExporter } {
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({ enabled: true, serviceName, exporter });
  tracings.push(tracing);
  return { tracing, exporter };
}

describe('tracing: context across the queue', () => {
  it('continues the trace through a carrier that went through JSON, as through Redis', () => {
    const { tracing, exporter } = recording();
    const receive = tracing.startSpan('sip.receive MESSAGE', { 'sip.call_id': 'abc@host', partner: 'a.example' }, undefined, 'server');
    const carrier = receive.carrier();
    receive.end();
    const stored = JSON.parse(JSON.stringify({ trace: carrier })) as { trace: Record<string, string> };
    const send = tracing.startSpan('xmpp.send message', { 'xmpp.stanza_id': 'm1' }, stored.trace, 'consumer');
    send.end();

    const [parent, child] = exporter.getFinishedSpans();
    expect(carrier?.['traceparent']).toMatch(TRACEPARENT);
    expect(child?.spanContext().traceId).toBe(parent?.spanContext().traceId);
    expect(child?.parentSpanContext?.spanId).toBe(parent?.spanContext().spanId);
    expect(parent?.parentSpanContext).toBeUndefined();
    expect(parent?.kind).toBe(SpanKind.SERVER);
    expect(child?.kind).toBe(SpanKind.CONSUMER);
    expect(parent?.attributes).toEqual({ 'sip.call_id': 'abc@host', partner: 'a.example' });
  });

  it('joins two processes into one trace: each has its own provider, only the carrier crosses', () => {
    const a = recording('bridge-a');
    const b = recording('bridge-b');
    const received = a.tracing.startSpan('xmpp.receive message');
    const wire = JSON.stringify(received.carrier());
    received.end();
    b.tracing.startSpan('sip.send MESSAGE', {}, JSON.parse(wire) as Record<string, string>).end();

    const [first] = a.exporter.getFinishedSpans();
    const [second] = b.exporter.getFinishedSpans();
    expect(second?.spanContext().traceId).toBe(first?.spanContext().traceId);
    expect(second?.parentSpanContext?.spanId).toBe(first?.spanContext().spanId);
    expect(second?.resource.attributes['service.name']).toBe('bridge-b');
  });

  it.each([
    ['an empty carrier', {}],
    ['a malformed traceparent', { traceparent: 'not-a-trace' }],
    ['an all-zero trace id', { traceparent: '00-00000000000000000000000000000000-0000000000000001-01' }],
    ['a non-string traceparent', { traceparent: ['x'] as unknown as string }],
  ])('starts a new root trace from %s, without throwing', (_name, carrier) => {
    const { tracing, exporter } = recording();
    tracing.startSpan('router.route', {}, carrier).end();
    const [span] = exporter.getFinishedSpans();
    expect(span?.parentSpanContext).toBeUndefined();
    expect(span?.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('tracing: carriers as data from the queue (properties)', () => {
  const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`)).filter((h) => /[1-9a-f]/.test(h));

  it('continues any valid sampled traceparent: same trace id, the sender as parent', () => {
    const { tracing, exporter } = recording();
    fc.assert(
      fc.property(hex(32), hex(16), (traceId, spanId) => {
        exporter.reset();
        tracing.startSpan('router.route', {}, { traceparent: `00-${traceId}-${spanId}-01` }).end();
        const [span] = exporter.getFinishedSpans();
        expect(span?.spanContext().traceId).toBe(traceId);
        expect(span?.parentSpanContext?.spanId).toBe(spanId);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps an upstream "not sampled" decision: nothing recorded, the trace id still passed on', () => {
    const { tracing, exporter } = recording();
    fc.assert(
      fc.property(hex(32), hex(16), (traceId, spanId) => {
        exporter.reset();
        const handle = tracing.startSpan('router.route', {}, { traceparent: `00-${traceId}-${spanId}-00` });
        handle.end();
        expect(exporter.getFinishedSpans()).toHaveLength(0);
        expect(handle.carrier()?.['traceparent']).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
      }),
      { numRuns: 100 },
    );
  });

  it('never throws on an arbitrary carrier, and always yields a usable span', () => {
    const { tracing, exporter } = recording();
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('traceparent', 'tracestate', 'x'), fc.string({ maxLength: 80 })), (carrier) => {
        exporter.reset();
        const handle = tracing.startSpan('router.route', {}, carrier);
        expect(handle.carrier()?.['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
        handle.end();
        expect(exporter.getFinishedSpans()).toHaveLength(1);
      }),
      { numRuns: 300 },
    );
  });
});

describe('tracing: spans', () => {
  it('leaves out attributes whose value is undefined', () => {
    const { tracing, exporter } = recording();
    tracing.startSpan('router.route', { partner: undefined, 'policy.decision': 'allow', attempt: 1 }).end();
    expect(exporter.getFinishedSpans()[0]?.attributes).toEqual({ 'policy.decision': 'allow', attempt: 1 });
  });

  it('marks a span ended with an error as failed and records the exception', () => {
    const { tracing, exporter } = recording();
    tracing.startSpan('sip.send MESSAGE').end(new Error('408 Request Timeout'));
    const [span] = exporter.getFinishedSpans();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: '408 Request Timeout' });
    expect(span?.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('ends a span once however often end is called', () => {
    const { tracing, exporter } = recording();
    const handle = tracing.startSpan('xmpp.send presence');
    handle.end();
    handle.end(new Error('late'));
    expect(exporter.getFinishedSpans()).toHaveLength(1);
    expect(exporter.getFinishedSpans()[0]?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('gives the same carrier however often asked (a presence fanned out to many watchers)', () => {
    const { tracing } = recording();
    const handle = tracing.startSpan('xmpp.receive presence');
    expect(handle.carrier()).toBe(handle.carrier());
    expect(Object.keys(handle.carrier() ?? {})).toEqual(['traceparent']);
    handle.end();
  });

  it('keeps attributes set later through the span', () => {
    const { tracing, exporter } = recording();
    const handle = tracing.startSpan('router.route');
    handle.span.setAttribute('policy.rule', 'UNKNOWN_DOMAIN');
    handle.end();
    expect(exporter.getFinishedSpans()[0]?.attributes).toEqual({ 'policy.rule': 'UNKNOWN_DOMAIN' });
  });
});

describe('tracing: disabled', () => {
  it('hands out one shared no-op handle: no carrier, nothing recorded, nothing thrown', async () => {
    const tracing = createTracing({ enabled: false, otlpUrl: 'http://127.0.0.1:9/v1/traces' });
    const a = tracing.startSpan('sip.receive MESSAGE', { partner: 'a.example' });
    const b = tracing.startSpan('router.route', {}, { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    expect(tracing.enabled).toBe(false);
    expect(a).toBe(b);
    expect(a.carrier()).toBeUndefined();
    a.span.setAttribute('x', 1);
    expect(a.span.isRecording()).toBe(false);
    a.end(new Error('ignored'));
    await tracing.shutdown();
    expect(createTracing({ enabled: false })).toBe(tracing);
  });
});

describe('tracing: the receiving adapter starts the trace', () => {
  const XMPP_DOMAIN = 'xmpp.test';
  let adapter: SipAdapter | undefined;
  let peer: RawUdpPeer | undefined;
  afterEach(async () => {
    await adapter?.stop();
    await peer?.close();
    adapter = undefined;
    peer = undefined;
  });

  /** A SIP adapter on a loopback UDP port handing what it takes to a real router. */
  async function sipIntoRouter(tracing: BridgeTracing, federation?: FederationPolicy): Promise<{ port: number; queue: MemoryQueue }> {
    const queue = new MemoryQueue({ maxAttempts: 1, backoffMs: 1, maxBackoffMs: 1, maxPending: 10 });
    const router = new Router({
      translator: new AddressTranslator({ componentDomain: 'sip.xmpp.test', xmppDomains: [XMPP_DOMAIN] }),
      identities: { name: 'none', byNumber: () => Promise.resolve(undefined), bySipAddress: () => Promise.resolve(undefined) },
      queue,
      logger: silentLogger(),
      tracing,
      ...(federation === undefined ? {} : { federation }),
    });
    const config = sipSchema.parse({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 } });
    adapter = new SipAdapter(config, { onEvent: (event) => router.route(event) }, silentLogger(), { tracing });
    await adapter.start();
    peer = await RawUdpPeer.open();
    return { port: adapter.boundPorts()[0]!.port, queue };
  }

  it('makes the SIP receive span the parent of the router span, naming the transaction and the peer', async () => {
    // Given a SIP adapter and a router sharing one in-memory exporter
    const { tracing, exporter } = recording();
    const { port, queue } = await sipIntoRouter(tracing);
    const branch = newBranch();
    // When a MESSAGE for a served XMPP user arrives
    await peer!.send(rawRequest({ uri: `sip:juliet@${XMPP_DOMAIN}`, branch, callId: 'trace-1@127.0.0.1', body: 'hi', via: { transport: 'UDP', port: peer!.port } }), port);
    expect(statusOf(await peer!.next())).toBe(202);

    // Then the receive span (server) is the root and the router's span its child, in one trace
    const spans = await waitFor('receive and route spans', () => (exporter.getFinishedSpans().length >= 2 ? exporter.getFinishedSpans() : undefined));
    const receive = spans.find((s) => s.name === 'sip receive MESSAGE');
    const route = spans.find((s) => s.name === 'route message');
    expect(receive?.kind).toBe(SpanKind.SERVER);
    expect(receive?.parentSpanContext).toBeUndefined();
    expect(route?.spanContext().traceId).toBe(receive?.spanContext().traceId);
    expect(route?.parentSpanContext?.spanId).toBe(receive?.spanContext().spanId);
    expect(receive?.attributes).toMatchObject({
      'sip.call_id': 'trace-1@127.0.0.1',
      'sip.cseq': '1 MESSAGE',
      'sip.via.branch': branch,
      'network.transport': 'udp',
      'network.peer.address': '127.0.0.1',
      'network.peer.port': peer!.port,
      'sip.status_code': 202,
    });
    expect(route?.attributes).toMatchObject({ 'bridge.policy.decision': 'allowed', 'bridge.from.domain': 'sip.example.com', 'bridge.to.domain': XMPP_DOMAIN });
    // And the queued event is counted, its context the router span's (checked across processes in test/integration/tracing-cross-process.test.ts)
    expect((await queue.counts('to-xmpp')).pending).toBe(1);
  });

  it('records the refusal on both spans: the status on the receive span, the failed routing on the router span', async () => {
    // Given the same pair
    const { tracing, exporter } = recording();
    const { port } = await sipIntoRouter(tracing);
    // When a MESSAGE for a domain the bridge does not serve arrives
    await peer!.send(rawRequest({ uri: 'sip:juliet@elsewhere.example', via: { transport: 'UDP', port: peer!.port } }), port);
    expect(statusOf(await peer!.next())).toBe(404);

    // Then the receive span says 404 (a client error: not failed), the router span failed
    const spans = await waitFor('receive and route spans', () => (exporter.getFinishedSpans().length >= 2 ? exporter.getFinishedSpans() : undefined));
    const receive = spans.find((s) => s.name === 'sip receive MESSAGE');
    const route = spans.find((s) => s.name === 'route message');
    expect(receive?.attributes['sip.status_code']).toBe(404);
    expect(receive?.status.code).toBe(SpanStatusCode.UNSET);
    expect(route?.parentSpanContext?.spanId).toBe(receive?.spanContext().spanId);
    expect(route?.status.code).toBe(SpanStatusCode.ERROR);
    expect(route?.attributes).toMatchObject({ 'bridge.policy.decision': 'refused', 'bridge.policy.rule': 'DOMAIN_NOT_SERVED' });
  });

  it('names the federation partner and its denial on the router span', async () => {
    // Given a closed federation with one SIP partner, globex
    const { tracing, exporter } = recording();
    const registry = new PartnerRegistry(partnersSchema.parse({ partners: [{ name: 'globex', side: 'sip', domains: ['globex.example'], features: ['im'] }] }));
    const { port } = await sipIntoRouter(tracing, new FederationPolicy({ registry, local: { sip: ['corp.example'], xmpp: [XMPP_DOMAIN] } }));
    // When globex sends a MESSAGE, then a domain that is no partner does
    const sentFrom = (domain: string) =>
      rawRequest({ uri: `sip:juliet@${XMPP_DOMAIN}`, via: { transport: 'UDP', port: peer!.port } }).replace(/^From: .*$/m, `From: <sip:carol@${domain}>;tag=t1`);
    await peer!.send(sentFrom('globex.example'), port);
    expect(statusOf(await peer!.next())).toBe(202);
    await peer!.send(sentFrom('stranger.example'), port);
    expect(statusOf(await peer!.next())).toBe(403);

    // Then the router spans say who and what was decided
    const routes = await waitFor('two router spans', () => {
      const found = exporter.getFinishedSpans().filter((s) => s.name === 'route message');
      return found.length >= 2 ? found : undefined;
    });
    expect(routes[0]?.attributes).toMatchObject({ 'bridge.partner': 'globex', 'bridge.from.domain': 'globex.example', 'bridge.policy.decision': 'allowed' });
    expect(routes[1]?.attributes).toMatchObject({ 'bridge.from.domain': 'stranger.example', 'bridge.policy.decision': 'denied', 'bridge.policy.rule': 'federation-denied' });
    expect(routes[1]?.attributes['bridge.partner']).toBeUndefined();
  });

  it('puts the presence a SUBSCRIBE hands on, and the NOTIFY it sends, in the SUBSCRIBE\'s trace', async () => {
    // Given a SIP adapter and a router sharing one in-memory exporter
    const { tracing, exporter } = recording();
    const { port } = await sipIntoRouter(tracing);
    // When a watcher subscribes to juliet's presence, its Contact our raw peer
    const subscribe = rawRequest({
      method: 'SUBSCRIBE',
      uri: `sip:juliet@${XMPP_DOMAIN}`,
      contentType: null,
      via: { transport: 'UDP', port: peer!.port },
      extraHeaders: [`Contact: <sip:carol@127.0.0.1:${peer!.port}>`, 'Event: presence', 'Accept: application/pidf+xml', 'Expires: 600'],
    });
    await peer!.send(subscribe, port);
    // Then it is answered, and the NOTIFY that follows (RFC 6665 §4.2.1.2) is answered by us
    for (let seen = 0; seen < 2; seen++) {
      const got = await peer!.next();
      if (got.startsWith('NOTIFY ')) await peer!.send(okTo(got), port);
      else expect(statusOf(got)).toBeLessThan(300);
    }

    const spans = await waitFor('receive, route and NOTIFY spans', () => {
      const all = exporter.getFinishedSpans();
      return ['sip receive SUBSCRIBE', 'route subscription', 'sip request NOTIFY'].every((n) => all.some((s) => s.name === n)) ? all : undefined;
    });
    const receive = spans.find((s) => s.name === 'sip receive SUBSCRIBE');
    expect(receive?.parentSpanContext).toBeUndefined();
    for (const name of ['route subscription', 'sip request NOTIFY']) {
      const child = spans.find((s) => s.name === name);
      expect(child?.spanContext().traceId, name).toBe(receive?.spanContext().traceId);
      expect(child?.parentSpanContext?.spanId, name).toBe(receive?.spanContext().spanId);
    }
    expect(spans.find((s) => s.name === 'sip request NOTIFY')?.attributes).toMatchObject({ 'sip.status_code': 200, 'network.transport': 'udp' });
  });

  it('makes no span for an OPTIONS keep-alive', async () => {
    const { tracing, exporter } = recording();
    const { port } = await sipIntoRouter(tracing);
    await peer!.send(rawRequest({ method: 'OPTIONS', via: { transport: 'UDP', port: peer!.port } }), port);
    expect(statusOf(await peer!.next())).toBe(200);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});
