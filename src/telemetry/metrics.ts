/**
 * Metrics through OpenTelemetry, read by Prometheus at `GET /metrics` on the health server
 * (issue 7 item 2). The SDK keeps cumulative state in memory and serializes it only when
 * scraped; nothing is pushed. When disabled every method is a shared no-op and no SDK object
 * exists. Names, labels and PromQL examples: docs/metrics.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Attributes, Gauge, Histogram, Meter } from '@opentelemetry/api';
import type { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { CanonicalEvent, Side } from '../core/events.js';

/**
 * The SDK is loaded only when metrics are on: loading it would cost a disabled bridge about 200 ms of
 * startup and 10 MB of RSS (docs/decisions/0008-telemetry.md). The packages are CommonJS, so a
 * synchronous require keeps `createMetrics` synchronous.
 */
const load = createRequire(import.meta.url);

export type Direction = 'sip-to-xmpp' | 'xmpp-to-sip';
export type EventKind = CanonicalEvent['kind'];
export type EventOutcome = 'routed' | 'delivered' | 'refused' | 'failed' | 'withheld';

export interface QueueSample {
  readonly queue: string;
  readonly pending: number;
  readonly oldestAgeMs?: number;
}

export interface SubscriptionSample {
  readonly role: string;
  readonly count: number;
}

/** Read at each scrape (never on the message path). */
export type Source<T> = () => Promise<readonly T[]> | readonly T[];

export interface BridgeMetrics {
  readonly enabled: boolean;
  /** One event reached a stage; `partner` is the federation partner's domain when known. */
  event(direction: Direction, kind: EventKind, outcome: EventOutcome, partner?: string): void;
  /** End to end, from `event.createdAt` to the sending adapter's delivery. */
  latency(direction: Direction, kind: EventKind, ms: number): void;
  /** Replaces the source read at each scrape for queue depth and oldest job age. */
  observeQueues(source: Source<QueueSample>): void;
  /** Replaces the source read at each scrape for active subscriptions by role. */
  observeSubscriptions(source: Source<SubscriptionSample>): void;
  policyDenial(rule: string): void;
  rateLimited(partner: string): void;
  /** A SIP transaction ended with `status` (a final status code, or `timeout`). */
  sipTransaction(method: string, status: number | 'timeout'): void;
  xmppConnected(up: boolean): void;
  identityLookup(source: string, outcome: 'found' | 'not-found' | 'error', ms: number): void;
  /** The Prometheus text exposition of every metric (empty when disabled). */
  prometheusText(): Promise<string>;
  shutdown(): Promise<void>;
}

/** Prometheus text format 0.0.4, what every scraper accepts. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Delivery latency buckets in seconds: 1 ms to 10 s, about three per decade. */
export const LATENCY_BUCKETS_S: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Identity lookups (static table, ENUM DNS, LDAP): 0.5 ms to 5 s. */
export const LOOKUP_BUCKETS_S: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * Series kept per metric at most; past it new label sets are folded into one series labelled
 * `otel_metric_overflow="true"`, so a flood of partner names cannot grow memory without bound.
 */
export const MAX_SERIES_PER_METRIC = 5000;

/** A scrape never waits longer than this for the queue or subscription sources. */
const OBSERVE_TIMEOUT_MS = 1000;

export function directionOf(origin: Side): Direction {
  return origin === 'sip' ? 'sip-to-xmpp' : 'xmpp-to-sip';
}

export function createMetrics(options: { enabled: boolean; serviceName?: string }): BridgeMetrics {
  return options.enabled ? new OtelMetrics(options.serviceName ?? 'sip-xmpp-bridge') : NOOP_METRICS;
}

/** Serves `prometheusText()` with the exposition content type; 404 when metrics are off. */
export function metricsHandler(metrics: BridgeMetrics): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (!metrics.enabled) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are disabled\n');
      return;
    }
    metrics.prometheusText().then(
      (text) => res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics collection failed: ${String(err)}\n`),
    );
  };
}

const noop = (): void => undefined;

const NOOP_METRICS: BridgeMetrics = Object.freeze({
  enabled: false,
  event: noop,
  latency: noop,
  observeQueues: noop,
  observeSubscriptions: noop,
  policyDenial: noop,
  rateLimited: noop,
  sipTransaction: noop,
  xmppConnected: noop,
  identityLookup: noop,
  prometheusText: () => Promise.resolve(''),
  shutdown: () => Promise.resolve(),
});

const OVERFLOW_KEY = '\u0000overflow';
const OVERFLOW_ATTRIBUTES: Attributes = Object.freeze({ otel_metric_overflow: true });

/**
 * A counter kept in a plain Map and handed to the SDK as an observable counter when scraped.
 * The SDK's synchronous counter hashes its attributes (sorted keys through JSON.stringify) on
 * every add, about 1.6 µs here; this costs one string key. Series are capped like the SDK's own
 * (`MAX_SERIES_PER_METRIC`, the last one being the overflow series).
 */
class Tally {
  private readonly series = new Map<string, { readonly attributes: Attributes; value: number }>();

  constructor(meter: Meter, name: string, description: string) {
    meter.createObservableCounter(name, { description }).addCallback((result) => {
      for (const s of this.series.values()) result.observe(s.value, s.attributes);
    });
  }

  /**
   * `key` identifies the label set: the label values joined by NUL, the one free-form value
   * last (the others are closed sets), so two label sets never share a key.
   */
  add(key: string, attributes: Attributes): void {
    const known = this.series.get(key);
    if (known !== undefined) {
      known.value += 1;
      return;
    }
    if (this.series.size < MAX_SERIES_PER_METRIC - 1) {
      this.series.set(key, { attributes, value: 1 });
      return;
    }
    const overflow = this.series.get(OVERFLOW_KEY);
    if (overflow !== undefined) overflow.value += 1;
    else this.series.set(OVERFLOW_KEY, { attributes: OVERFLOW_ATTRIBUTES, value: 1 });
  }
}

class OtelMetrics implements BridgeMetrics {
  readonly enabled = true;
  private readonly provider: MeterProvider;
  /** Used as a pull-only reader: it collects when scraped and starts no server of its own. */
  private readonly reader: PrometheusExporter;
  private readonly serializer: PrometheusSerializer;
  private readonly events: Tally;
  private readonly latencies: Histogram;
  private readonly denials: Tally;
  private readonly rateLimits: Tally;
  private readonly sipTransactions: Tally;
  private readonly xmppUp: Gauge;
  private readonly lookups: Histogram;
  private queues: Source<QueueSample> | undefined;
  private subscriptions: Source<SubscriptionSample> | undefined;

  constructor(serviceName: string) {
    const sdk = load('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
    const prometheus = load('@opentelemetry/exporter-prometheus') as typeof import('@opentelemetry/exporter-prometheus');
    const resources = load('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
    this.reader = new prometheus.PrometheusExporter({ preventServerStart: true });
    // No scope labels on every series: there is one meter. `target_info` keeps service.name.
    this.serializer = new prometheus.PrometheusSerializer(undefined, false, undefined, false, true);
    this.provider = new sdk.MeterProvider({
      resource: resources.resourceFromAttributes({ 'service.name': serviceName }),
      readers: [this.reader],
      views: [{ instrumentName: '*', aggregationCardinalityLimit: MAX_SERIES_PER_METRIC }],
    });
    const meter = this.provider.getMeter('sip-xmpp-bridge');
    this.events = new Tally(meter, 'sxb_events_total', 'Canonical events by direction, kind, stage outcome and partner');
    this.latencies = meter.createHistogram('sxb_delivery_latency_seconds', {
      description: 'End-to-end latency from receipt on one side to delivery on the other',
      unit: 's',
      advice: { explicitBucketBoundaries: [...LATENCY_BUCKETS_S] },
    });
    this.denials = new Tally(meter, 'sxb_policy_denials_total', 'Events refused or withheld by federation or visibility policy, by rule');
    this.rateLimits = new Tally(meter, 'sxb_rate_limited_total', 'Events dropped by a partner rate limit');
    this.sipTransactions = new Tally(meter, 'sxb_sip_transactions_total', 'SIP transactions by method and final status');
    this.xmppUp = meter.createGauge('sxb_xmpp_connected', { description: '1 while the XMPP component stream is connected, else 0' });
    this.lookups = meter.createHistogram('sxb_identity_lookup_duration_seconds', {
      description: 'Identity-source lookups by source and outcome',
      unit: 's',
      advice: { explicitBucketBoundaries: [...LOOKUP_BUCKETS_S] },
    });
    const depth = meter.createObservableGauge('sxb_queue_depth', { description: 'Jobs waiting or in progress per queue' });
    const age = meter.createObservableGauge('sxb_queue_oldest_age_seconds', { description: 'Age of the oldest waiting job per queue', unit: 's' });
    meter.addBatchObservableCallback(async (result) => {
      const samples = await this.read(this.queues);
      for (const s of samples) {
        result.observe(depth, s.pending, { queue: s.queue });
        if (s.oldestAgeMs !== undefined) result.observe(age, s.oldestAgeMs / 1000, { queue: s.queue });
      }
    }, [depth, age]);
    const active = meter.createObservableGauge('sxb_active_subscriptions', { description: 'Presence subscriptions held, by role' });
    active.addCallback(async (result) => {
      for (const s of await this.read(this.subscriptions)) result.observe(s.count, { role: s.role });
    });
  }

  event(direction: Direction, kind: EventKind, outcome: EventOutcome, partner?: string): void {
    const p = partner ?? 'none';
    this.events.add(`${direction}\u0000${kind}\u0000${outcome}\u0000${p}`, { direction, kind, outcome, partner: p });
  }

  latency(direction: Direction, kind: EventKind, ms: number): void {
    // A clock step between two processes can make it negative: not a latency.
    if (ms >= 0) this.latencies.record(ms / 1000, { direction, kind });
  }

  observeQueues(source: Source<QueueSample>): void {
    this.queues = source;
  }

  observeSubscriptions(source: Source<SubscriptionSample>): void {
    this.subscriptions = source;
  }

  policyDenial(rule: string): void {
    this.denials.add(rule, { rule });
  }

  rateLimited(partner: string): void {
    this.rateLimits.add(partner, { partner });
  }

  sipTransaction(method: string, status: number | 'timeout'): void {
    this.sipTransactions.add(`${status}\u0000${method}`, { method, status: String(status) });
  }

  xmppConnected(up: boolean): void {
    this.xmppUp.record(up ? 1 : 0);
  }

  identityLookup(source: string, outcome: 'found' | 'not-found' | 'error', ms: number): void {
    if (ms >= 0) this.lookups.record(ms / 1000, { source, outcome });
  }

  async prometheusText(): Promise<string> {
    const { resourceMetrics } = await this.reader.collect();
    return this.serializer.serialize(resourceMetrics);
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }

  /** A source that fails or hangs yields no samples: the rest of the scrape still answers. */
  private async read<T>(source: Source<T> | undefined): Promise<readonly T[]> {
    if (source === undefined) return [];
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<readonly T[]>((resolve) => {
      timer = setTimeout(() => resolve([]), OBSERVE_TIMEOUT_MS);
    });
    try {
      return await Promise.race([Promise.resolve().then(source), late]);
    } catch {
      return [];
    } finally {
      clearTimeout(timer);
    }
  }
}
