/**
 * The queue contract (src/core/queue/queue.ts), run against every backend.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/core/errors.js';
import type { Queue, QueueJob } from '../../src/core/queue/queue.js';
import { waitFor } from '../support/ports.js';

export interface QueueFactoryOptions {
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  maxPending: number;
}

const defaults: QueueFactoryOptions = { maxAttempts: 3, backoffMs: 5, maxBackoffMs: 50, maxPending: 1000 };

/** Lets the backend run whatever it has ready: one full turn of the event loop. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export function queueContract(backend: string, create: (options: QueueFactoryOptions) => Promise<Queue> | Queue): void {
  describe(`queue contract: ${backend}`, () => {
    let queue: Queue | undefined;
    const open = async (options: Partial<QueueFactoryOptions> = {}) => {
      queue = await create({ ...defaults, ...options });
      return queue;
    };
    afterEach(async () => {
      await queue?.close();
      queue = undefined;
    });

    it('delivers an enqueued job with its data intact', async () => {
      const q = await open();
      const seen: QueueJob<unknown>[] = [];
      q.consume('q', async (job) => void seen.push(job));
      const data = { kind: 'message', body: 'héllo 🌍', nested: { n: 1, list: [1, 'two'] } };
      const id = await q.enqueue('q', data);
      await waitFor('delivery', () => seen.length === 1 || undefined);
      expect(seen[0]).toMatchObject({ id, queue: 'q', data, attempt: 1 });
    });

    it('holds jobs enqueued before a consumer exists', async () => {
      const q = await open();
      await q.enqueue('q', { n: 1 });
      await q.enqueue('q', { n: 2 });
      const seen: unknown[] = [];
      q.consume('q', async (job) => void seen.push(job.data));
      await waitFor('both jobs', () => seen.length === 2 || undefined);
      expect(seen).toEqual(expect.arrayContaining([{ n: 1 }, { n: 2 }]));
    });

    it('does not deliver an acknowledged job again', async () => {
      const q = await open();
      const seen: number[] = [];
      q.consume('q', async (job) => void seen.push((job.data as { n: number }).n));
      await q.enqueue('q', { n: 1 }, { orderingKey: 'k' });
      await q.enqueue('q', { n: 2 }, { orderingKey: 'k' });
      await waitFor('second job', () => seen.includes(2) || undefined);
      expect(seen).toEqual([1, 2]);
      expect(await q.counts('q')).toEqual({ pending: 0, active: 0 });
    });

    it('delivers a rejected job again with the next attempt number', async () => {
      const q = await open();
      const attempts: number[] = [];
      q.consume('q', async (job) => {
        attempts.push(job.attempt);
        if (job.attempt === 1) throw new Error('transient');
      });
      await q.enqueue('q', { n: 1 });
      await waitFor('retry', () => attempts.length === 2 || undefined);
      expect(attempts).toEqual([1, 2]);
    });

    it('dead-letters a job once after maxAttempts, with the last error', async () => {
      const q = await open({ maxAttempts: 3 });
      let calls = 0;
      const dead: Array<{ job: QueueJob<unknown>; error: unknown }> = [];
      q.consume(
        'q',
        async (job) => {
          calls += 1;
          throw new Error(`attempt ${job.attempt}`);
        },
        { onDeadLetter: (job, error) => void dead.push({ job, error }) },
      );
      await q.enqueue('q', { n: 1 });
      await waitFor('dead letter', () => dead.length === 1 || undefined);
      expect(calls).toBe(3);
      expect((dead[0]!.error as Error).message).toBe('attempt 3');
      expect(await q.counts('q')).toEqual({ pending: 0, active: 0 });
    });

    it('does not retry an error marked not retryable', async () => {
      const q = await open({ maxAttempts: 5 });
      let calls = 0;
      const dead: unknown[] = [];
      q.consume(
        'q',
        async () => {
          calls += 1;
          throw new BridgeError('SIP_REJECTED', 'busy here', { condition: 'recipient-unavailable', retryable: false });
        },
        { onDeadLetter: (_job, error) => void dead.push(error) },
      );
      await q.enqueue('q', { n: 1 });
      await waitFor('dead letter', () => dead.length === 1 || undefined);
      expect(calls).toBe(1);
      expect((dead[0] as BridgeError).code).toBe('SIP_REJECTED');
    });

    it('keeps the order of one key through a retry', async () => {
      const q = await open();
      const seen: number[] = [];
      q.consume(
        'q',
        async (job) => {
          const n = (job.data as { n: number }).n;
          if (n === 3 && job.attempt === 1) throw new Error('transient');
          seen.push(n);
        },
        { concurrency: 4 },
      );
      for (let n = 1; n <= 20; n++) await q.enqueue('q', { n }, { orderingKey: 'alice|bob' });
      await waitFor('all twenty', () => seen.length === 20 || undefined);
      expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });

    it('lets other keys through while one key waits out its retries', async () => {
      const q = await open({ maxAttempts: 100, backoffMs: 60_000, maxBackoffMs: 60_000 });
      const seen: string[] = [];
      q.consume(
        'q',
        async (job) => {
          const { key } = job.data as { key: string };
          if (key === 'slow') throw new Error('peer away');
          seen.push(key);
        },
        { concurrency: 1 },
      );
      await q.enqueue('q', { key: 'slow' }, { orderingKey: 'slow' });
      await q.enqueue('q', { key: 'fast-1' }, { orderingKey: 'fast' });
      await q.enqueue('q', { key: 'fast-2' }, { orderingKey: 'fast' });
      await waitFor('fast key delivered', () => seen.length === 2 || undefined);
      expect(seen).toEqual(['fast-1', 'fast-2']);
      expect((await q.counts('q')).pending).toBe(1);
    });

    it('treats an id still in the queue as the same job', async () => {
      const q = await open();
      const gate = deferred();
      const seen: string[] = [];
      q.consume('q', async (job) => {
        seen.push(job.id);
        await gate.promise;
      });
      await q.enqueue('q', { n: 1 }, { jobId: 'dedupe-1' });
      await q.enqueue('q', { n: 1 }, { jobId: 'dedupe-1' });
      expect((await q.counts('q')).pending).toBe(1);
      gate.resolve();
      await waitFor('drained', async () => ((await q.counts('q')).pending === 0) || undefined);
      expect(seen).toEqual(['dedupe-1']);
    });

    it('runs up to `concurrency` jobs of different keys at once', async () => {
      const q = await open();
      const gate = deferred();
      let running = 0;
      let peak = 0;
      q.consume(
        'q',
        async () => {
          running += 1;
          peak = Math.max(peak, running);
          await gate.promise;
          running -= 1;
        },
        { concurrency: 3 },
      );
      for (let n = 0; n < 5; n++) await q.enqueue('q', { n }, { orderingKey: `k${n}` });
      await waitFor('three running', () => running === 3 || undefined);
      await turn();
      expect(peak).toBe(3);
      expect((await q.counts('q')).active).toBe(3);
      gate.resolve();
      await waitFor('drained', async () => ((await q.counts('q')).pending === 0) || undefined);
    });

    it('delivers nothing while paused and everything after resume', async () => {
      const q = await open();
      const seen: number[] = [];
      const consumer = q.consume('q', async (job) => void seen.push((job.data as { n: number }).n));
      consumer.pause();
      await q.enqueue('q', { n: 1 });
      await turn();
      expect(seen).toEqual([]);
      expect((await q.counts('q')).pending).toBe(1);
      consumer.resume();
      await waitFor('delivery after resume', () => seen.length === 1 || undefined);
      expect(seen).toEqual([1]);
    });

    it('refuses jobs past maxPending with resource-constraint', async () => {
      const q = await open({ maxPending: 2 });
      await q.enqueue('q', { n: 1 });
      await q.enqueue('q', { n: 2 });
      await expect(q.enqueue('q', { n: 3 })).rejects.toMatchObject({ code: 'QUEUE_FULL', condition: 'resource-constraint' });
    });

    it('close() waits for jobs in progress', async () => {
      const q = await open();
      const gate = deferred();
      let finished = false;
      q.consume('q', async () => {
        await gate.promise;
        finished = true;
      });
      await q.enqueue('q', { n: 1 });
      await waitFor('job started', async () => ((await q.counts('q')).active === 1) || undefined);
      const closing = q.close();
      gate.resolve();
      await closing;
      expect(finished).toBe(true);
      queue = undefined;
    });
  });
}
