/**
 * Queue ordering bench (helper E): memory vs BullMQ lanes (chosen) vs plain BullMQ (one job per
 * message, no ordering), same private redis-server, same load. Run: npm run bench:queue
 */
import { Queue as BullQueue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { MemoryQueue } from '../src/core/queue/memory.js';
import { BullMQQueue } from '../src/core/queue/bullmq.js';
import type { Queue } from '../src/core/queue/queue.js';
import { startRedis } from '../test/support/redis.js';

const N = Number(process.env['N'] ?? 4000);
const IN_FLIGHT = 64;
/** RATE set: a steady load of RATE messages/s (latency); unset: as fast as it goes (throughput). */
const RATE = Number(process.env['RATE'] ?? 0);
/** FAIL_EVERY=k: the first attempt of every k-th message fails (retried after 5 ms). */
const FAIL_EVERY = Number(process.env['FAIL_EVERY'] ?? 0);
const failsFirst = (n: number, attempt: number) => FAIL_EVERY > 0 && n % FAIL_EVERY === 0 && attempt === 1;
const CONCURRENCY = 8;
const policy = { maxAttempts: 3, backoffMs: 5, maxBackoffMs: 50, maxPending: 1_000_000 };

interface Result { name: string; keys: number; perSec: number; p50: number; p99: number; ordered: boolean }

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function load(name: string, keys: number, enqueue: (n: number, key: string) => Promise<void>, done: () => Promise<void>, started: Map<number, number>, seen: Map<string, number[]>, latencies: number[]): Promise<Result> {
  const t0 = performance.now();
  let next = 0;
  const producer = async () => {
    while (next < N) {
      const n = next++;
      started.set(n, performance.now());
      await enqueue(n, `k${n % keys}`);
    }
  };
  if (RATE > 0) {
    const sends: Promise<void>[] = [];
    for (let n = 0; n < N; n++) {
      const due = t0 + (n * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      started.set(n, performance.now());
      sends.push(enqueue(n, `k${n % keys}`));
    }
    await Promise.all(sends);
  } else {
    await Promise.all(Array.from({ length: IN_FLIGHT }, producer));
  }
  await done();
  const secs = (performance.now() - t0) / 1000;
  const sorted = [...latencies].sort((a, b) => a - b);
  let ordered = true;
  for (const list of seen.values()) for (let i = 1; i < list.length; i++) if (list[i]! < list[i - 1]!) ordered = false;
  return { name, keys, perSec: Math.round(N / secs), p50: +pct(sorted, 50).toFixed(2), p99: +pct(sorted, 99).toFixed(2), ordered };
}

async function runQueue(name: string, q: Queue, keys: number): Promise<Result> {
  const started = new Map<number, number>();
  const seen = new Map<string, number[]>();
  const latencies: number[] = [];
  let handled = 0;
  let finished!: () => void;
  const all = new Promise<void>((r) => (finished = r));
  const consumer = q.consume<{ n: number; key: string }>('bench', async (job) => {
    if (failsFirst(job.data.n, job.attempt)) throw new Error('transient');
    latencies.push(performance.now() - started.get(job.data.n)!);
    seen.set(job.data.key, [...(seen.get(job.data.key) ?? []), job.data.n]);
    if (++handled === N) finished();
  }, { concurrency: CONCURRENCY });
  const r = await load(name, keys, async (n, key) => void (await q.enqueue('bench', { n, key }, { orderingKey: key })), () => all, started, seen, latencies);
  await consumer.close();
  await q.close();
  return r;
}

async function runPlain(url: string, prefix: string, keys: number): Promise<Result> {
  const started = new Map<number, number>();
  const seen = new Map<string, number[]>();
  const latencies: number[] = [];
  let handled = 0;
  let finished!: () => void;
  const all = new Promise<void>((r) => (finished = r));
  const conn = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new BullQueue('bench', { connection: conn, prefix });
  const worker = new Worker('bench', async (job) => {
    const { n, key } = job.data as { n: number; key: string };
    if (failsFirst(n, job.attemptsMade + 1)) throw new Error('transient');
    latencies.push(performance.now() - started.get(n)!);
    seen.set(key, [...(seen.get(key) ?? []), n]);
    if (++handled === N) finished();
  }, { connection: new Redis(url, { maxRetriesPerRequest: null }), prefix, concurrency: CONCURRENCY });
  const r = await load('plain BullMQ (unordered)', keys, async (n, key) => void (await queue.add('m', { n, key }, { removeOnComplete: true, attempts: 3, backoff: { type: 'fixed', delay: 5 } })), () => all, started, seen, latencies);
  await worker.close();
  await queue.close();
  conn.disconnect();
  return r;
}

const redis = await startRedis({ private: true });
const results: Result[] = [];
try {
  for (const keys of [100, 1]) {
    results.push(await runQueue('memory', new MemoryQueue(policy), keys));
    results.push(await runQueue('BullMQ lanes', new BullMQQueue({ ...policy, connection: redis.url, prefix: redis.prefix() }), keys));
    results.push(await runPlain(redis.url, redis.prefix(), keys));
  }
} finally {
  await redis.close();
}
console.log(`N=${N} messages, ${RATE > 0 ? `steady ${RATE}/s` : `${IN_FLIGHT} enqueues in flight`}, consumer concurrency ${CONCURRENCY}, no-op handler${FAIL_EVERY > 0 ? `, first attempt of every ${FAIL_EVERY}th message fails` : ''}`);
console.log('| backend | keys | msgs/s | p50 ms | p99 ms | per-key order kept |');
console.log('|---|---|---|---|---|---|');
for (const r of results) console.log(`| ${r.name} | ${r.keys} | ${r.perSec} | ${r.p50} | ${r.p99} | ${r.ordered ? 'yes' : 'NO'} |`);
process.exit(0);
