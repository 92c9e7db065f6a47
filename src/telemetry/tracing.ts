/**
 * Traces through OpenTelemetry (issue 7 item 1): one trace per message or presence change, from
 * the receiving adapter through the router and the queue to the sending adapter. Context crosses
 * the queue (and Redis, between processes) as W3C `traceparent`/`tracestate` strings stored in
 * `event.trace`: a span started from that carrier is a child of the span that wrote it.
 * When disabled no SDK object exists and every call returns one shared no-op handle.
 */
import { createRequire } from 'node:module';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, defaultTextMapGetter, defaultTextMapSetter, INVALID_SPAN_CONTEXT, type Attributes, type Span, type TextMapPropagator, type Tracer } from '@opentelemetry/api';
import type { BasicTracerProvider, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';

/**
 * Only the API (a few no-op classes) is loaded up front; the SDK and the OTLP exporter are
 * required when tracing is on, so a disabled bridge pays neither their startup time nor their
 * memory (docs/decisions/0008-telemetry.md). They are CommonJS: `createTracing` stays synchronous.
 */
const load = createRequire(import.meta.url);

/** W3C trace context as plain strings (`traceparent`, maybe `tracestate`): survives JSON. */
export type TraceCarrier = Readonly<Record<string, string>>;

export type SpanRole = 'server' | 'client' | 'producer' | 'consumer' | 'internal';

export type SpanAttributes = Readonly<Record<string, string | number | boolean | undefined>>;

export interface SpanHandle {
  /** The OpenTelemetry span, for attributes learnt later (`span.setAttribute`); non-recording when off. */
  readonly span: Span;
  /** This span's context to store in `event.trace`; undefined when tracing is off, so events carry nothing. */
  carrier(): TraceCarrier | undefined;
  /** Ends the span once; an error marks it failed and is recorded on it. */
  end(error?: unknown): void;
}

export interface BridgeTracing {
  readonly enabled: boolean;
  /**
   * Starts a span, the child of `parent` when that carrier holds a valid `traceparent`, else the
   * root of a new trace. Attributes whose value is undefined are left out.
   */
  startSpan(name: string, attributes?: SpanAttributes, parent?: TraceCarrier, role?: SpanRole): SpanHandle;
  /**
   * Exports what is buffered and stops. Never rejects, and waits at most `shutdownTimeoutMs`:
   * an unreachable collector (the exporter retries for about ten seconds) must not hold up the
   * bridge's stop; what could not be exported is reported to `logger` and dropped.
   */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  enabled: boolean;
  /** OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`; none: spans are made (for context) but not exported. */
  otlpUrl?: string;
  serviceName?: string;
  /** Exports each span as it ends to this exporter instead (tests: the in-memory exporter). */
  exporter?: SpanExporter;
  /** Told when the last export at shutdown failed or did not finish in time (a pino logger fits). */
  logger?: { warn(details: object, message: string): void };
  /** 2000 unless given. */
  shutdownTimeoutMs?: number;
}

export function createTracing(options: TracingOptions): BridgeTracing {
  return options.enabled ? new OtelTracing(options) : NOOP_TRACING;
}

const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

const NOOP_HANDLE: SpanHandle = Object.freeze({
  span: NOOP_SPAN,
  carrier: () => undefined,
  end: () => undefined,
});

const NOOP_TRACING: BridgeTracing = Object.freeze({
  enabled: false,
  startSpan: () => NOOP_HANDLE,
  shutdown: () => Promise.resolve(),
});

const KINDS: Record<SpanRole, SpanKind> = {
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
  internal: SpanKind.INTERNAL,
};

class OtelTracing implements BridgeTracing {
  readonly enabled = true;
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private readonly propagator: TextMapPropagator;

  constructor(private readonly options: TracingOptions) {
    const sdk = load('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
    const core = load('@opentelemetry/core') as typeof import('@opentelemetry/core');
    const resources = load('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
    const processors: SpanProcessor[] = [];
    if (options.exporter !== undefined) processors.push(new sdk.SimpleSpanProcessor(options.exporter));
    else if (options.otlpUrl !== undefined) {
      const otlp = load('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
      processors.push(new sdk.BatchSpanProcessor(new otlp.OTLPTraceExporter({ url: options.otlpUrl })));
    }
    this.propagator = new core.W3CTraceContextPropagator();
    this.provider = new sdk.BasicTracerProvider({
      resource: resources.resourceFromAttributes({ 'service.name': options.serviceName ?? 'sip-xmpp-bridge' }),
      spanProcessors: processors,
    });
    this.tracer = this.provider.getTracer('sip-xmpp-bridge');
  }

  startSpan(name: string, attributes?: SpanAttributes, parent?: TraceCarrier, role: SpanRole = 'internal'): SpanHandle {
    // A carrier from the queue is untrusted data: the propagator ignores a malformed traceparent.
    const context = parent === undefined ? ROOT_CONTEXT : this.propagator.extract(ROOT_CONTEXT, parent, defaultTextMapGetter);
    const span = this.tracer.startSpan(name, { kind: KINDS[role], attributes: definedOnly(attributes) }, context);
    let ended = false;
    // A span's context never changes: one carrier serves every event fanned out from it.
    let carrier: Record<string, string> | undefined;
    return {
      span,
      carrier: () => {
        if (carrier === undefined) {
          carrier = {};
          this.propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
        }
        return carrier;
      },
      end: (error?: unknown) => {
        if (ended) return;
        ended = true;
        if (error !== undefined) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        }
        span.end();
      },
    };
  }

  async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.options.shutdownTimeoutMs ?? 2000;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), timeoutMs);
    });
    try {
      const outcome = await Promise.race([this.provider.shutdown(), late]);
      if (outcome === 'late') this.options.logger?.warn({ timeoutMs }, 'trace export unfinished at shutdown: buffered spans dropped');
    } catch (err) {
      this.options.logger?.warn({ err }, 'trace export failed at shutdown: buffered spans dropped');
    } finally {
      clearTimeout(timer);
    }
  }
}

function definedOnly(attributes: SpanAttributes | undefined): Attributes | undefined {
  if (attributes === undefined) return undefined;
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
}
