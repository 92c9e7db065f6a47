/**
 * Telemetry over HTTP as the peers see it: a Prometheus scraper fetching `/metrics` after a known
 * sequence of calls (the counters moved by exactly that much, the text parses), and an OTLP/HTTP
 * collector on loopback receiving the spans of one trace that crossed a JSON carrier.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics, metricsHandler, PROMETHEUS_CONTENT_TYPE, type BridgeMetrics } from '../../src/telemetry/metrics.js';
import { createTracing } from '../../src/telemetry/tracing.js';
import { waitFor } from '../support/ports.js';

const servers: Server[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Serves metrics at /metrics as the health server will, 404 elsewhere. */
async function serveMetrics(metrics: BridgeMetrics): Promise<string> {
  const handler = metricsHandler(metrics);
  return listen((req, res) => {
    if ((req.url ?? '').split('?')[0] === '/metrics') handler(req, res);
    else res.writeHead(404).end();
  });
}

interface Family {
  type: string;
  samples: Map<string, number>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$/;

/**
 * A strict reading of the Prometheus text format 0.0.4: every sample belongs to the family its
 * TYPE line announced (histograms by their _bucket/_sum/_count suffixes), every value is a number.
 */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: { name: string; family: Family } | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      const [, name = '', kind = ''] = type;
      expect(name).toMatch(NAME);
      expect(families.has(name), `family ${name} announced twice`).toBe(false);
      current = { name, family: { type: kind, samples: new Map() } };
      families.set(name, current.family);
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = SAMPLE.exec(line);
    expect(sample, `not a sample line: ${line}`).not.toBeNull();
    const [, name = '', labels = '', value = ''] = sample ?? [];
    expect(current, `sample before any TYPE: ${line}`).toBeDefined();
    const allowed = current?.family.type === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => `${current?.name}${s}`) : [current?.name];
    expect(allowed, `sample ${name} outside its family`).toContain(name);
    expect(Number.isNaN(Number(value)) && value !== 'NaN', `value of ${line}`).toBe(false);
    current?.family.samples.set(`${name}${labels}`, Number(value));
  }
  return families;
}

async function scrape(base: string): Promise<Map<string, Family>> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
  return parseExposition(await res.text());
}

function value(families: Map<string, Family>, family: string, series: string): number | undefined {
  return families.get(family)?.samples.get(series);
}

describe('GET /metrics', () => {
  it('shows exactly the counts of a known sequence of calls, in parseable Prometheus text', async () => {
    const metrics = createMetrics({ enabled: true });
    cleanups.push(() => metrics.shutdown());
    const base = await serveMetrics(metrics);
    metrics.observeQueues(() => [{ queue: 'to-xmpp', pending: 2, oldestAgeMs: 750 }]);
    metrics.observeSubscriptions(() => [{ role: 'sip-watcher', count: 3 }]);
    // Given: three SIP→XMPP messages (two delivered, one refused by policy), a rate-limited
    // XMPP→SIP presence, SIP transactions and identity lookups.
    for (let i = 0; i < 3; i += 1) metrics.event('sip-to-xmpp', 'message', 'routed', 'a.example');
    metrics.event('sip-to-xmpp', 'message', 'delivered', 'a.example');
    metrics.event('sip-to-xmpp', 'message', 'delivered', 'a.example');
    metrics.latency('sip-to-xmpp', 'message', 4);
    metrics.latency('sip-to-xmpp', 'message', 30);
    metrics.event('sip-to-xmpp', 'message', 'refused', 'a.example');
    metrics.policyDenial('FEATURE');
    metrics.rateLimited('b.example');
    metrics.event('xmpp-to-sip', 'presence', 'refused', 'b.example');
    metrics.sipTransaction('MESSAGE', 202);
    metrics.sipTransaction('MESSAGE', 202);
    metrics.sipTransaction('MESSAGE', 403);
    metrics.identityLookup('ldap', 'found', 3);
    metrics.identityLookup('ldap', 'error', 5000);
    metrics.xmppConnected(true);

    const first = await scrape(base);
    expect(first.get('sxb_events_total')?.type).toBe('counter');
    expect(value(first, 'sxb_events_total', 'sxb_events_total{direction="sip-to-xmpp",kind="message",outcome="routed",partner="a.example"}')).toBe(3);
    expect(value(first, 'sxb_events_total', 'sxb_events_total{direction="sip-to-xmpp",kind="message",outcome="delivered",partner="a.example"}')).toBe(2);
    expect(value(first, 'sxb_events_total', 'sxb_events_total{direction="sip-to-xmpp",kind="message",outcome="refused",partner="a.example"}')).toBe(1);
    expect(value(first, 'sxb_events_total', 'sxb_events_total{direction="xmpp-to-sip",kind="presence",outcome="refused",partner="b.example"}')).toBe(1);
    expect(first.get('sxb_events_total')?.samples.size).toBe(4);
    expect(first.get('sxb_delivery_latency_seconds')?.type).toBe('histogram');
    expect(value(first, 'sxb_delivery_latency_seconds', 'sxb_delivery_latency_seconds_bucket{direction="sip-to-xmpp",kind="message",le="0.005"}')).toBe(1);
    expect(value(first, 'sxb_delivery_latency_seconds', 'sxb_delivery_latency_seconds_bucket{direction="sip-to-xmpp",kind="message",le="0.05"}')).toBe(2);
    expect(value(first, 'sxb_delivery_latency_seconds', 'sxb_delivery_latency_seconds_count{direction="sip-to-xmpp",kind="message"}')).toBe(2);
    expect(value(first, 'sxb_policy_denials_total', 'sxb_policy_denials_total{rule="FEATURE"}')).toBe(1);
    expect(value(first, 'sxb_rate_limited_total', 'sxb_rate_limited_total{partner="b.example"}')).toBe(1);
    expect(value(first, 'sxb_sip_transactions_total', 'sxb_sip_transactions_total{method="MESSAGE",status="202"}')).toBe(2);
    expect(value(first, 'sxb_sip_transactions_total', 'sxb_sip_transactions_total{method="MESSAGE",status="403"}')).toBe(1);
    expect(value(first, 'sxb_identity_lookup_duration_seconds', 'sxb_identity_lookup_duration_seconds_count{source="ldap",outcome="error"}')).toBe(1);
    expect(value(first, 'sxb_identity_lookup_duration_seconds', 'sxb_identity_lookup_duration_seconds_bucket{source="ldap",outcome="error",le="5"}')).toBe(1);
    expect(value(first, 'sxb_xmpp_connected', 'sxb_xmpp_connected')).toBe(1);
    expect(value(first, 'sxb_queue_depth', 'sxb_queue_depth{queue="to-xmpp"}')).toBe(2);
    expect(value(first, 'sxb_queue_oldest_age_seconds', 'sxb_queue_oldest_age_seconds{queue="to-xmpp"}')).toBe(0.75);
    expect(value(first, 'sxb_active_subscriptions', 'sxb_active_subscriptions{role="sip-watcher"}')).toBe(3);

    // When: one more delivery and a disconnect. Then: counters are cumulative across scrapes.
    metrics.event('sip-to-xmpp', 'message', 'delivered', 'a.example');
    metrics.xmppConnected(false);
    const second = await scrape(base);
    expect(value(second, 'sxb_events_total', 'sxb_events_total{direction="sip-to-xmpp",kind="message",outcome="delivered",partner="a.example"}')).toBe(3);
    expect(value(second, 'sxb_events_total', 'sxb_events_total{direction="sip-to-xmpp",kind="message",outcome="routed",partner="a.example"}')).toBe(3);
    expect(value(second, 'sxb_xmpp_connected', 'sxb_xmpp_connected')).toBe(0);
  });

  it('escapes label values a partner could choose, keeping the text parseable', async () => {
    const metrics = createMetrics({ enabled: true });
    cleanups.push(() => metrics.shutdown());
    const base = await serveMetrics(metrics);
    metrics.rateLimited('evil"}\nsxb_fake 1\\');
    const families = await scrape(base);
    expect(families.has('sxb_fake')).toBe(false);
    expect(value(families, 'sxb_rate_limited_total', 'sxb_rate_limited_total{partner="evil\\"}\\nsxb_fake 1\\\\"}')).toBe(1);
  });

  it('answers HEAD without a body and 404 when metrics are off', async () => {
    const on = createMetrics({ enabled: true });
    cleanups.push(() => on.shutdown());
    const head = await fetch(`${await serveMetrics(on)}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const off = await fetch(`${await serveMetrics(createMetrics({ enabled: false }))}/metrics`);
    expect(off.status).toBe(404);
    expect(await off.text()).toBe('metrics are disabled\n');
  });
});

describe('OTLP/HTTP export', () => {
  it('delivers the spans of one trace, joined through a JSON carrier, to a collector', async () => {
    const bodies: unknown[] = [];
    const collector = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/v1/traces' && req.headers['content-type'] === 'application/json') bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    const tracing = createTracing({ enabled: true, otlpUrl: `${collector}/v1/traces`, serviceName: 'bridge-test' });
    const receive = tracing.startSpan('sip.receive MESSAGE', { partner: 'a.example' }, undefined, 'server');
    const carrier = JSON.parse(JSON.stringify(receive.carrier())) as Record<string, string>;
    receive.end();
    tracing.startSpan('xmpp.send message', {}, carrier, 'consumer').end();
    // Shutdown flushes the batch processor: the export has been answered when it resolves.
    await tracing.shutdown();

    type OtlpSpan = { traceId: string; spanId: string; parentSpanId?: string; name: string };
    type OtlpBody = { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[] };
    const received = await waitFor('spans at the collector', () => (bodies.length > 0 ? (bodies as OtlpBody[]) : undefined));
    const spans = received.flatMap((b) => b.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
    const service = received[0]?.resourceSpans[0]?.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
    expect(service).toBe('bridge-test');
    expect(spans.map((s) => s.name).sort()).toEqual(['sip.receive MESSAGE', 'xmpp.send message']);
    const parent = spans.find((s) => s.name === 'sip.receive MESSAGE');
    const child = spans.find((s) => s.name === 'xmpp.send message');
    expect(parent?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(child?.traceId).toBe(parent?.traceId);
    expect(child?.parentSpanId).toBe(parent?.spanId);
    expect(parent?.parentSpanId ?? '').toBe('');
  });

  it.each([
    ['keeps failing (503, which the exporter retries)', 503, 'trace export unfinished at shutdown: buffered spans dropped'],
    ['refuses the spans (400)', 400, 'trace export failed at shutdown: buffered spans dropped'],
  ])('stops without rejecting when the collector %s, and says what was dropped', async (_name, status, said) => {
    const collector = await listen((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(status).end());
    });
    const warnings: string[] = [];
    const logger = { warn: (_obj: object, msg: string) => void warnings.push(msg) };
    const tracing = createTracing({ enabled: true, otlpUrl: `${collector}/v1/traces`, logger, shutdownTimeoutMs: 300 });
    tracing.startSpan('sip.receive MESSAGE').end();
    await expect(tracing.shutdown()).resolves.toBeUndefined();
    expect(warnings).toEqual([said]);
  });
});
