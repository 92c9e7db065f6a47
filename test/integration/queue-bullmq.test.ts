/**
 * The BullMQ queue backend against a private redis-server: the queue contract unchanged, then
 * what only a shared Redis shows: two processes' consumers on one queue, a lane that lost its
 * token, Redis going away, Redis killed and restarted with its append-only file.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Queue as BullQueue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BullMQQueue, type BullMQQueueOptions } from '../../src/core/queue/bullmq.js';
import { queueContract } from '../contract/queue.contract.js';
import { waitFor } from '../support/ports.js';
import { startRedis, type RedisServer } from '../support/redis.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});

queueContract('bullmq', (options) => new BullMQQueue({ ...options, connection: redis.url, prefix: redis.prefix() }));

describe('BullMQQueue on a shared Redis', () => {
  const opened: BullMQQueue[] = [];
  const open = (options: Partial<BullMQQueueOptions> & { prefix: string }, server = redis): BullMQQueue => {
    const q = new BullMQQueue({ maxAttempts: 3, backoffMs: 5, maxBackoffMs: 50, maxPending: 1000, connection: server.url, ...options });
    opened.push(q);
    return q;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((q) => q.close()));
  });

  it('keeps each key in order and one at a time across two processes consuming one queue, retries included', async () => {
    const prefix = redis.prefix();
    const producer = open({ prefix });
    const seen = new Map<string, number[]>();
    const running = new Set<string>();
    let overlaps = 0;
    const handler = async (job: { data: unknown; attempt: number }) => {
      const { key, n } = job.data as { key: string; n: number };
      if (running.has(key)) overlaps += 1;
      running.add(key);
      try {
        // Hand the turn to the other consumer now and then, so the two interleave.
        if (n % 3 === 0) await new Promise((r) => setImmediate(r));
        if (n % 7 === 0 && job.attempt === 1) throw new Error('transient');
        seen.set(key, [...(seen.get(key) ?? []), n]);
      } finally {
        running.delete(key);
      }
    };
    open({ prefix }).consume('q', handler, { concurrency: 4 });
    open({ prefix }).consume('q', handler, { concurrency: 4 });
    const keys = ['a', 'b', 'c', 'd', 'e'];
    for (let n = 1; n <= 20; n++) for (const key of keys) await producer.enqueue('q', { key, n }, { orderingKey: key });
    await waitFor('every job', () => keys.every((k) => seen.get(k)?.length === 20) || undefined, 20_000);
    for (const key of keys) expect(seen.get(key)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(overlaps).toBe(0);
    expect(await producer.counts('q')).toEqual({ pending: 0, active: 0 });
  });

  it('gives a lane that lost its token a new one when a consumer starts', async () => {
    const prefix = redis.prefix();
    const q = open({ prefix });
    await q.enqueue('q', { n: 1 }, { orderingKey: 'k' });
    await q.enqueue('q', { n: 2 }, { orderingKey: 'k' });
    // As if the process died between holding the job and adding its BullMQ job.
    const bull = new BullQueue('q', { connection: { host: redis.host, port: redis.port }, prefix });
    await bull.obliterate({ force: true });
    await bull.close();
    const seen: number[] = [];
    q.consume('q', async (job) => void seen.push((job.data as { n: number }).n));
    await waitFor('both jobs', () => seen.length === 2 || undefined);
    expect(seen).toEqual([1, 2]);
  });

  it('hands a job whose worker process was killed to another worker, as its next attempt', async () => {
    const prefix = redis.prefix();
    const options = { maxAttempts: 3, backoffMs: 5, maxBackoffMs: 50, maxPending: 100, connection: redis.url, prefix, lockDurationMs: 500 };
    const dir = await mkdtemp(join(tmpdir(), 'bridge-worker-'));
    const script = join(dir, 'hung-worker.ts');
    // A consumer in its own process that takes the job, says so, and never settles it.
    await writeFile(
      script,
      `import { BullMQQueue } from ${JSON.stringify(resolve('src/core/queue/bullmq.ts'))};
const q = new BullMQQueue(${JSON.stringify(options)});
q.consume('q', (job) => { console.log('started ' + job.attempt); return new Promise(() => {}); });
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      const q = open(options);
      await q.enqueue('q', { n: 1 }, { orderingKey: 'k' });
      await q.enqueue('q', { n: 2 }, { orderingKey: 'k' });
      await waitFor('the other process to take the job', () => output.includes('started 1') || undefined, 15_000);
      child.kill('SIGKILL');
      const seen: Array<{ n: number; attempt: number }> = [];
      q.consume('q', async (job) => void seen.push({ n: (job.data as { n: number }).n, attempt: job.attempt }));
      await waitFor('both jobs here', () => seen.length === 2 || undefined, 15_000);
      expect(seen).toEqual([
        { n: 1, attempt: 2 },
        { n: 2, attempt: 1 },
      ]);
    } finally {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports the depth and the age of the oldest job held', async () => {
    const q = open({ prefix: redis.prefix() });
    expect(await q.stats('q')).toEqual({ pending: 0, active: 0, oldestAgeMs: undefined });
    const before = Date.now();
    await q.enqueue('q', { n: 1 });
    await q.enqueue('q', { n: 2 });
    const stats = await q.stats('q');
    expect(stats).toMatchObject({ pending: 2, active: 0 });
    expect(stats.oldestAgeMs).toBeGreaterThanOrEqual(0);
    expect(stats.oldestAgeMs).toBeLessThanOrEqual(Date.now() - before);
  });

  it('refuses a queue name that would reach into other keys', async () => {
    const q = open({ prefix: redis.prefix() });
    await expect(q.enqueue('a:b', {})).rejects.toThrow(/queue name/);
  });
});

describe('BullMQQueue when Redis goes away', () => {
  let own: RedisServer;
  beforeAll(async () => {
    own = await startRedis({ private: true, durable: true });
  });
  afterAll(async () => {
    await own?.close();
  });

  it('refuses enqueue promptly as remote-server-timeout, and takes and delivers jobs again once Redis is back', async () => {
    const q = new BullMQQueue({ maxAttempts: 3, backoffMs: 5, maxBackoffMs: 50, maxPending: 100, connection: own.url, prefix: own.prefix(), commandTimeoutMs: 1_000 });
    try {
      const seen: number[] = [];
      q.consume('q', async (job) => void seen.push((job.data as { n: number }).n));
      await q.enqueue('q', { n: 1 });
      await waitFor('the first job', () => seen.length === 1 || undefined);
      await own.stop();
      const started = Date.now();
      await expect(q.enqueue('q', { n: 2 })).rejects.toMatchObject({
        code: 'QUEUE_UNAVAILABLE',
        condition: 'remote-server-timeout',
        sipStatus: 503,
        retryable: true,
      });
      expect(Date.now() - started).toBeLessThan(3_000);
      await expect(q.counts('q')).rejects.toMatchObject({ code: 'QUEUE_UNAVAILABLE' });
      await own.restart();
      await waitFor('enqueue accepted again', () => q.enqueue('q', { n: 3 }).catch(() => undefined), 10_000, 100);
      await waitFor('the job after the restart', () => seen.length === 2 || undefined, 15_000);
      expect(seen).toEqual([1, 3]);
    } finally {
      await q.close();
    }
  });

  it('closes while Redis is away, a consumer included', async () => {
    const q = new BullMQQueue({ maxAttempts: 3, backoffMs: 5, maxBackoffMs: 50, maxPending: 100, connection: own.url, prefix: own.prefix() });
    q.consume('q', async () => {});
    await q.enqueue('q', { n: 1 });
    await own.stop();
    try {
      await q.close();
      await expect(q.enqueue('q', { n: 2 })).rejects.toMatchObject({ code: 'QUEUE_CLOSED' });
    } finally {
      await own.restart();
    }
  });

  it('keeps what enqueue acknowledged through a SIGKILL of Redis (append-only, fsync always)', async () => {
    const prefix = own.prefix();
    const options = { maxAttempts: 3, backoffMs: 5, maxBackoffMs: 50, maxPending: 100, connection: own.url, prefix };
    const before = new BullMQQueue(options);
    for (let n = 1; n <= 10; n++) await before.enqueue('q', { n }, { orderingKey: 'k' });
    await own.kill();
    await own.restart();
    await before.close();
    const after = new BullMQQueue(options);
    try {
      const seen: number[] = [];
      after.consume('q', async (job) => void seen.push((job.data as { n: number }).n));
      await waitFor('all ten', () => seen.length === 10 || undefined);
      expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    } finally {
      await after.close();
    }
  });
});
