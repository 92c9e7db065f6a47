/**
 * The bridge wires the two adapters, the router and the queue together. It knows adapters
 * only through the Adapter contract: the composition root (src/app.ts) builds the real ones.
 */
import type { Check } from '../telemetry/health.js';
import type { Logger } from '../telemetry/logger.js';
import { directionOf, type BridgeMetrics } from '../telemetry/metrics.js';
import type { BridgeTracing } from '../telemetry/tracing.js';
import type { Adapter, AdapterHooks } from './adapter.js';
import { BridgeError, toBridgeError } from './errors.js';
import { failureOf, type CanonicalEvent, type Side } from './events.js';
import type { Consumer, Queue, QueueJob } from './queue/queue.js';
import type { DeliveryLog } from './state/delivered.js';
import { enqueueForDelivery, INBOUND_QUEUE, QUEUE_FOR, type Router } from './router.js';

/**
 * What one process does (config `role`, issue 5): `all` runs both adapters and routes inbound
 * events at once (a SIP sender gets 404 for an unknown user before any 202); an edge runs one
 * adapter and queues what it receives on the inbound queue; a router routes that queue. Edges
 * never look up identities, so a SIP edge in a DMZ reaches nothing inside but the queue.
 */
export type BridgeRole = 'all' | 'sip-edge' | 'xmpp-edge' | 'router';

const SIDES_OF: Readonly<Record<BridgeRole, readonly Side[]>> = {
  all: ['sip', 'xmpp'],
  'sip-edge': ['sip'],
  'xmpp-edge': ['xmpp'],
  router: [],
};

export type AdapterFactory = (side: Side, hooks: AdapterHooks) => Adapter;

export interface BridgeOptions {
  queue: Queue;
  /** Default `all`. */
  role?: BridgeRole;
  /** Needed by the roles that route: `all` and `router`. */
  router?: Router;
  logger: Logger;
  createAdapter: AdapterFactory;
  now?: () => number;
  /** Delivered and failed events, end-to-end latency, XMPP connection state (config `telemetry.metrics`). */
  metrics?: BridgeMetrics;
  /** A span per delivery, the child of the event's route span. */
  tracing?: BridgeTracing;
  /** Skips events already delivered when the queue hands one out again (exactly once as users see it). */
  deliveries?: DeliveryLog;
  /** Events handed to one adapter at once (its sends in flight). */
  concurrency?: number;
  /**
   * How long stop() waits for queued events to be delivered (memory queue: what is left is
   * lost). 0 with a shared Redis queue: what is queued stays there for the other processes.
   */
  drainTimeoutMs?: number;
}

export class Bridge {
  private readonly adapters = new Map<Side, Adapter>();
  private readonly consumers = new Map<Side, Consumer>();
  /** Last availability each adapter reported (XMPP: component connected). */
  private readonly available = new Map<Side, boolean>();
  private inboundConsumer: Consumer | undefined;
  private readonly now: () => number;
  private readonly role: BridgeRole;
  private readonly sides: readonly Side[];
  private running = false;
  private stopping = false;

  constructor(private readonly options: BridgeOptions) {
    this.now = options.now ?? Date.now;
    this.role = options.role ?? 'all';
    this.sides = SIDES_OF[this.role];
    if ((this.role === 'all' || this.role === 'router') && options.router === undefined) {
      throw new Error(`the ${this.role} role needs a router`);
    }
  }

  adapter(side: Side): Adapter {
    const a = this.adapters.get(side);
    if (!a) throw new Error(`bridge not started: no ${side} adapter`);
    return a;
  }

  async start(): Promise<void> {
    const { logger } = this.options;
    if (this.role === 'router') {
      this.inboundConsumer = this.options.queue.consume<CanonicalEvent>(INBOUND_QUEUE, (job) => this.routeInbound(job.data), {
        concurrency: this.options.concurrency ?? 64,
        onDeadLetter: (job, error) => this.unroutable(job.data, error),
      });
    }
    for (const side of this.sides) {
      const adapter = this.options.createAdapter(side, {
        onEvent: (event) => this.inbound(event),
        onAvailability: (available) => {
          this.available.set(side, available);
          if (side === 'xmpp') this.options.metrics?.xmppConnected(available);
          if (this.stopping) return;
          const consumer = this.consumers.get(side);
          if (available) consumer?.resume();
          else consumer?.pause();
          logger.info({ side, available }, available ? 'adapter available: delivering' : 'adapter unavailable: holding events');
        },
      });
      this.adapters.set(side, adapter);
      this.consumers.set(
        side,
        this.options.queue.consume<CanonicalEvent>(QUEUE_FOR[side], (job) => this.deliver(adapter, job), {
          concurrency: this.options.concurrency ?? 64,
          onDeadLetter: (job, error) => this.undeliverable(job, error),
        }),
      );
    }
    try {
      // SIP first: it only listens. XMPP start() fails fast on a refused secret.
      for (const side of this.sides) await this.adapter(side).start();
      this.running = true;
      logger.info({ role: this.role }, 'bridge started');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /**
   * What /readyz asks (issue 7 item 3): each adapter of this role up (SIP listening, XMPP
   * component connected) and the queue answering. Failing checks say why.
   */
  readinessChecks(): Record<string, () => Promise<Check>> {
    const checks: Record<string, () => Promise<Check>> = {};
    for (const side of this.sides) {
      checks[side] = () => {
        if (!this.running) return Promise.resolve({ ok: false, detail: this.stopping ? 'stopping' : 'not started' });
        if (side === 'xmpp' && this.available.get('xmpp') !== true) return Promise.resolve({ ok: false, detail: 'component not connected' });
        return Promise.resolve({ ok: true });
      };
    }
    const queueName = this.role === 'router' ? INBOUND_QUEUE : QUEUE_FOR[this.sides[0] ?? 'sip'];
    checks['queue'] = async () => {
      const counts = await this.options.queue.counts(queueName);
      return { ok: true, detail: `${counts.pending} pending in ${queueName}` };
    };
    return checks;
  }

  async stop(): Promise<void> {
    const { logger, queue } = this.options;
    this.stopping = true;
    await this.drain(this.options.drainTimeoutMs ?? 5000);
    await Promise.all([...this.consumers.values(), ...(this.inboundConsumer ? [this.inboundConsumer] : [])].map((c) => c.close()));
    this.inboundConsumer = undefined;
    for (const side of this.sides) {
      const pending = (await queue.counts(QUEUE_FOR[side]).catch(() => ({ pending: 0 }))).pending;
      if (pending > 0) logger.warn({ side, pending }, 'stopping with events not delivered (a memory queue loses them; Redis keeps them)');
    }
    await Promise.allSettled([...this.adapters.values()].map((a) => a.stop()));
    await queue.close();
    this.consumers.clear();
    this.adapters.clear();
    if (this.running) logger.info('bridge stopped');
    this.running = false;
    this.stopping = false;
  }

  /**
   * An event an adapter received: routed here (`all`) or queued for a router process (edges).
   * Once stop() has begun nothing new is taken (SIP 503, XMPP service-unavailable), so the
   * drain that follows ends.
   */
  private async inbound(event: CanonicalEvent): Promise<void> {
    if (this.stopping && event.kind !== 'failure') {
      throw new BridgeError('BRIDGE_STOPPING', 'the bridge is shutting down; try again shortly', {
        condition: 'service-unavailable',
        sipStatus: 503,
        retryable: true,
      });
    }
    if (this.role === 'all') return (this.options.router as Router).route(event);
    // A failure is already in its receiver's terms: it needs no router.
    if (event.kind === 'failure') return enqueueForDelivery(this.options.queue, event);
    await this.options.queue.enqueue(INBOUND_QUEUE, event, { jobId: event.id });
  }

  /**
   * The router role's handler for the inbound queue. A refusal (unknown user, bad address)
   * goes back to the sender as a failure; "try later" (identity sources down) is retried.
   */
  private async routeInbound(event: CanonicalEvent): Promise<void> {
    try {
      await (this.options.router as Router).route(event);
    } catch (err) {
      const e = toBridgeError(err);
      if (e.retryable) throw e;
      await this.unroutable(event, e);
    }
  }

  private async unroutable(event: CanonicalEvent, error: unknown): Promise<void> {
    const e = toBridgeError(error);
    this.options.logger.info({ event: event.id, kind: event.kind, code: e.code, condition: e.condition }, `inbound event refused: ${e.message}`);
    if (event.kind === 'failure') return;
    const failure = failureOf(event, { condition: e.condition, text: e.message, ...(e.sipStatus === undefined ? {} : { sipStatus: e.sipStatus }) }, this.now());
    // Addressed back to the sender in its own terms: straight to the origin side's queue.
    await enqueueForDelivery(this.options.queue, failure);
  }

  private async deliver(adapter: Adapter, job: QueueJob<CanonicalEvent>): Promise<void> {
    const { deliveries, logger } = this.options;
    const id = job.data.id;
    // Asked only for a repeat: a first attempt cannot have been delivered yet.
    if (job.attempt > 1 && deliveries !== undefined && (await deliveries.delivered(id).catch(() => false))) {
      logger.info({ event: id, side: adapter.side, attempt: job.attempt }, 'already delivered: not sent again');
      return;
    }
    const event = job.data;
    const span = this.options.tracing?.startSpan(
      `${adapter.side} send ${event.kind}`,
      { 'bridge.event': id, 'bridge.kind': event.kind, 'bridge.attempt': job.attempt, 'bridge.to.domain': event.to.domain },
      event.trace,
      'consumer',
    );
    try {
      // The adapter's own span (the SIP transaction, the stanza written) is this span's child.
      const carrier = span?.carrier();
      await adapter.send(carrier === undefined ? event : { ...event, trace: carrier });
      await deliveries?.markDelivered(id).catch((err: unknown) => logger.warn({ event: id, err }, 'could not mark an event delivered'));
      span?.end();
      if (event.kind !== 'failure') {
        const direction = directionOf(event.origin);
        this.options.metrics?.event(direction, event.kind, 'delivered', event.partner);
        this.options.metrics?.latency(direction, event.kind, this.now() - event.createdAt);
      }
    } catch (err) {
      span?.end(err);
      const e = toBridgeError(err);
      this.options.logger.warn(
        { event: job.data.id, side: adapter.side, attempt: job.attempt, code: e.code, condition: e.condition, retryable: e.retryable },
        `delivery failed: ${e.message}`,
      );
      throw e;
    }
  }

  /** DESIGN.md: what can never be delivered becomes a failure back to the sender, never a silent drop. */
  private async undeliverable(job: QueueJob<CanonicalEvent>, error: unknown): Promise<void> {
    const event = job.data;
    const e = toBridgeError(error);
    if (event.kind !== 'failure') this.options.metrics?.event(directionOf(event.origin), event.kind, 'failed', event.partner);
    if (event.kind === 'failure') {
      this.options.logger.error({ event: event.id, ref: event.ref, code: e.code }, 'failure notice could not be delivered to its sender');
      return;
    }
    const failure = failureOf(event, { condition: e.condition, text: e.message, ...(e.sipStatus === undefined ? {} : { sipStatus: e.sipStatus }) }, this.now());
    try {
      await enqueueForDelivery(this.options.queue, failure);
    } catch (err) {
      this.options.logger.error({ event: event.id, err }, 'failure notice could not be queued');
    }
  }

  private async drain(timeoutMs: number): Promise<void> {
    const deadline = this.now() + timeoutMs;
    for (;;) {
      let pending = 0;
      for (const side of this.sides) pending += (await this.options.queue.counts(QUEUE_FOR[side]).catch(() => ({ pending: 0 }))).pending;
      if (pending === 0 || this.now() >= deadline) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
