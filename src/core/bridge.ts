/**
 * The bridge wires the two adapters, the router and the queue together. It knows adapters
 * only through the Adapter contract: the composition root (src/app.ts) builds the real ones.
 */
import type { Logger } from '../telemetry/logger.js';
import type { Adapter, AdapterHooks } from './adapter.js';
import { toBridgeError } from './errors.js';
import { failureOf, type CanonicalEvent, type Side } from './events.js';
import type { Consumer, Queue, QueueJob } from './queue/queue.js';
import { QUEUE_FOR, type Router } from './router.js';

export type AdapterFactory = (side: Side, hooks: AdapterHooks) => Adapter;

export interface BridgeOptions {
  queue: Queue;
  router: Router;
  logger: Logger;
  createAdapter: AdapterFactory;
  now?: () => number;
  /** Events handed to one adapter at once (its sends in flight). */
  concurrency?: number;
  /** How long stop() waits for queued events to be delivered. */
  drainTimeoutMs?: number;
}

const SIDES: readonly Side[] = ['sip', 'xmpp'];

export class Bridge {
  private readonly adapters = new Map<Side, Adapter>();
  private readonly consumers = new Map<Side, Consumer>();
  private readonly now: () => number;
  private running = false;
  private stopping = false;

  constructor(private readonly options: BridgeOptions) {
    this.now = options.now ?? Date.now;
  }

  adapter(side: Side): Adapter {
    const a = this.adapters.get(side);
    if (!a) throw new Error(`bridge not started: no ${side} adapter`);
    return a;
  }

  async start(): Promise<void> {
    const { logger } = this.options;
    for (const side of SIDES) {
      const adapter = this.options.createAdapter(side, {
        onEvent: (event) => this.options.router.route(event),
        onAvailability: (available) => {
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
      for (const side of SIDES) await this.adapter(side).start();
      this.running = true;
      logger.info('bridge started');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const { logger, queue } = this.options;
    this.stopping = true;
    await this.drain(this.options.drainTimeoutMs ?? 5000);
    await Promise.all([...this.consumers.values()].map((c) => c.close()));
    for (const side of SIDES) {
      const pending = (await queue.counts(QUEUE_FOR[side])).pending;
      if (pending > 0) logger.warn({ side, pending }, 'stopping with events not delivered (memory queue: they are lost)');
    }
    await Promise.allSettled([...this.adapters.values()].map((a) => a.stop()));
    await queue.close();
    this.consumers.clear();
    this.adapters.clear();
    if (this.running) logger.info('bridge stopped');
    this.running = false;
    this.stopping = false;
  }

  private async deliver(adapter: Adapter, job: QueueJob<CanonicalEvent>): Promise<void> {
    try {
      await adapter.send(job.data);
    } catch (err) {
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
    if (event.kind === 'failure') {
      this.options.logger.error({ event: event.id, ref: event.ref, code: e.code }, 'failure notice could not be delivered to its sender');
      return;
    }
    const failure = failureOf(event, { condition: e.condition, text: e.message, ...(e.sipStatus === undefined ? {} : { sipStatus: e.sipStatus }) }, this.now());
    try {
      await this.options.router.route(failure);
    } catch (err) {
      this.options.logger.error({ event: event.id, err }, 'failure notice could not be queued');
    }
  }

  private async drain(timeoutMs: number): Promise<void> {
    const deadline = this.now() + timeoutMs;
    for (;;) {
      let pending = 0;
      for (const side of SIDES) pending += (await this.options.queue.counts(QUEUE_FOR[side])).pending;
      if (pending === 0 || this.now() >= deadline) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
