/**
 * The queue contract between the router and the adapters. Every backend (memory now, BullMQ on
 * Redis later) passes the same contract suite (test/contract/queue.contract.ts).
 *
 * Semantics:
 * - `enqueue` resolves once the backend has the job (memory: held; Redis: persisted); only then
 *   may the sender be told "accepted".
 * - At-least-once: the handler's settled promise is the explicit ack (resolve) or nack (reject).
 *   A nacked job is delivered again after a backoff, up to `maxAttempts`; an error with
 *   `retryable === false` (a BridgeError) is not retried. A job out of attempts goes to the
 *   consumer's `onDeadLetter` exactly once and leaves the queue.
 * - Ordering: jobs with the same `orderingKey` are handled one at a time in enqueue order,
 *   retries included; a slow or failing key holds up only its own jobs.
 * - `jobId`: enqueueing an id that is still in the queue is a no-op (BullMQ semantics).
 */

export interface QueueJob<T> {
  readonly id: string;
  readonly queue: string;
  readonly data: T;
  /** 1 on the first delivery, 2 on the first retry, … */
  readonly attempt: number;
  readonly orderingKey?: string;
}

export interface EnqueueOptions {
  jobId?: string;
  orderingKey?: string;
}

export type JobHandler<T> = (job: QueueJob<T>) => Promise<void>;

export interface ConsumerOptions<T> {
  /** Jobs handled at once across keys. */
  concurrency?: number;
  /** Called once for a job that will never be delivered (out of attempts, or not retryable). */
  onDeadLetter?: (job: QueueJob<T>, error: unknown) => Promise<void> | void;
}

export interface Consumer {
  /** Stops taking new jobs; jobs in progress finish. */
  pause(): void;
  resume(): void;
  /** Stops taking jobs and resolves when the ones in progress have settled. */
  close(): Promise<void>;
}

export interface QueueCounts {
  /** Waiting, delayed for retry, or in progress. */
  readonly pending: number;
  readonly active: number;
}

export interface RetryPolicy {
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
}

export interface Queue {
  enqueue<T>(queue: string, data: T, options?: EnqueueOptions): Promise<string>;
  consume<T>(queue: string, handler: JobHandler<T>, options?: ConsumerOptions<T>): Consumer;
  counts(queue: string): Promise<QueueCounts>;
  close(): Promise<void>;
}

/** Exponential backoff: backoffMs, 2·backoffMs, 4·backoffMs … capped at maxBackoffMs. */
export function retryDelay(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.max(0, attempt - 1));
}

/** Whether an error asks not to be retried (BridgeError.retryable === false). */
export function isUnrecoverable(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { retryable?: unknown }).retryable === false;
}
