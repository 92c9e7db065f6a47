/**
 * In-memory queue backend: the default for one process (nothing to install). Jobs live in
 * per-key lanes so one conversation's retries hold up only that conversation (STYLE.md habit 10).
 */
import { BridgeError } from '../errors.js';
import { newEventId } from '../ids.js';
import {
  isUnrecoverable,
  retryDelay,
  type Consumer,
  type ConsumerOptions,
  type EnqueueOptions,
  type JobHandler,
  type Queue,
  type QueueCounts,
  type QueueJob,
  type RetryPolicy,
} from './queue.js';

interface StoredJob {
  readonly id: string;
  readonly data: unknown;
  readonly orderingKey: string | undefined;
  attempt: number;
}

interface Lane {
  readonly jobs: StoredJob[];
  /** A job of this lane is in progress or waiting out its retry delay. */
  busy: boolean;
}

class NamedQueue {
  readonly lanes = new Map<string, Lane>();
  /** Lanes with a job ready to run, oldest first (Set keeps insertion order). */
  readonly ready = new Set<string>();
  readonly ids = new Set<string>();
  active = 0;
  consumer: MemoryConsumer | undefined;
}

export interface MemoryQueueOptions extends RetryPolicy {
  /** Jobs held per queue, at most; past it enqueue is refused. */
  maxPending: number;
}

export class MemoryQueue implements Queue {
  private readonly queues = new Map<string, NamedQueue>();
  private closed = false;

  constructor(private readonly options: MemoryQueueOptions) {}

  async enqueue<T>(queue: string, data: T, options: EnqueueOptions = {}): Promise<string> {
    if (this.closed) throw new BridgeError('QUEUE_CLOSED', 'the queue is closed', { condition: 'service-unavailable', retryable: true });
    const q = this.named(queue);
    const id = options.jobId ?? newEventId();
    if (q.ids.has(id)) return id;
    if (q.ids.size >= this.options.maxPending) {
      throw new BridgeError('QUEUE_FULL', `queue ${queue} holds ${q.ids.size} jobs, its limit`, {
        condition: 'resource-constraint',
        // An overloaded SIP server answers 503 (RFC 3261 §21.5.4), not RFC 7247's 500.
        sipStatus: 503,
        retryable: true,
      });
    }
    // Round-trip through JSON: what a Redis backend would hand over, so memory mode cannot
    // depend on sharing objects.
    const job: StoredJob = { id, data: JSON.parse(JSON.stringify(data)), orderingKey: options.orderingKey, attempt: 0 };
    const laneKey = options.orderingKey ?? `job:${id}`;
    let lane = q.lanes.get(laneKey);
    if (!lane) {
      lane = { jobs: [], busy: false };
      q.lanes.set(laneKey, lane);
    }
    lane.jobs.push(job);
    q.ids.add(id);
    if (!lane.busy) q.ready.add(laneKey);
    q.consumer?.pump();
    return id;
  }

  consume<T>(queue: string, handler: JobHandler<T>, options: ConsumerOptions<T> = {}): Consumer {
    const q = this.named(queue);
    if (q.consumer) throw new Error(`queue ${queue} already has a consumer`);
    const consumer = new MemoryConsumer(queue, q, handler as JobHandler<unknown>, options as ConsumerOptions<unknown>, this.options);
    q.consumer = consumer;
    consumer.pump();
    return consumer;
  }

  async counts(queue: string): Promise<QueueCounts> {
    const q = this.named(queue);
    return { pending: q.ids.size, active: q.active };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.queues.values()].map((q) => q.consumer?.close()));
  }

  private named(queue: string): NamedQueue {
    let q = this.queues.get(queue);
    if (!q) {
      q = new NamedQueue();
      this.queues.set(queue, q);
    }
    return q;
  }
}

class MemoryConsumer implements Consumer {
  private paused = false;
  private closing = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly concurrency: number;

  constructor(
    private readonly name: string,
    private readonly q: NamedQueue,
    private readonly handler: JobHandler<unknown>,
    private readonly options: ConsumerOptions<unknown>,
    private readonly policy: RetryPolicy,
  ) {
    this.concurrency = Math.max(1, options.concurrency ?? 1);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (this.closing) return;
    this.paused = false;
    this.pump();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.paused = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
    if (this.q.consumer === this) this.q.consumer = undefined;
  }

  pump(): void {
    while (!this.paused && this.q.active < this.concurrency) {
      const next = this.q.ready.values().next();
      if (next.done) return;
      const laneKey = next.value;
      this.q.ready.delete(laneKey);
      const lane = this.q.lanes.get(laneKey);
      const job = lane?.jobs[0];
      if (!lane || !job) continue;
      lane.busy = true;
      this.run(laneKey, lane, job);
    }
  }

  private run(laneKey: string, lane: Lane, job: StoredJob): void {
    job.attempt += 1;
    this.q.active += 1;
    const view: QueueJob<unknown> = {
      id: job.id,
      queue: this.name,
      data: job.data,
      attempt: job.attempt,
      ...(job.orderingKey === undefined ? {} : { orderingKey: job.orderingKey }),
    };
    const settled = Promise.resolve()
      .then(() => this.handler(view))
      .then(
        () => this.finish(laneKey, lane),
        (error: unknown) => this.failed(laneKey, lane, job, view, error),
      )
      .finally(() => {
        this.inFlight.delete(settled);
        this.pump();
      });
    this.inFlight.add(settled);
  }

  private finish(laneKey: string, lane: Lane): void {
    this.q.active -= 1;
    const done = lane.jobs.shift();
    if (done) this.q.ids.delete(done.id);
    lane.busy = false;
    if (lane.jobs.length > 0) this.q.ready.add(laneKey);
    else this.q.lanes.delete(laneKey);
  }

  private async failed(laneKey: string, lane: Lane, job: StoredJob, view: QueueJob<unknown>, error: unknown): Promise<void> {
    if (isUnrecoverable(error) || job.attempt >= this.policy.maxAttempts) {
      try {
        await this.options.onDeadLetter?.(view, error);
      } catch {
        // The dead-letter handler owns reporting (the bridge's logs and turns it into a
        // failure event); its own fault must not wedge the lane.
      } finally {
        this.finish(laneKey, lane);
      }
      return;
    }
    this.q.active -= 1;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      lane.busy = false;
      this.q.ready.add(laneKey);
      this.pump();
    }, retryDelay(this.policy, job.attempt));
    this.timers.add(timer);
  }
}
