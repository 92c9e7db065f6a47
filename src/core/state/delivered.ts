/**
 * Which events were delivered (issue 5 item 4, "exactly once as seen by users"). Inside, the
 * queue is at-least-once: a job whose process died after sending but before acknowledging, a
 * job whose lock lapsed while it ran, is handed out again. The delivering side asks here first
 * and skips what is already marked, so the only duplicate left is a process dying between the
 * peer taking the event and the mark (docs/decisions/0006-delivery-window.md).
 */
import type { Redis } from 'ioredis';
import { DedupeWindow } from '../dedupe.js';
import { openRedis, type RedisConnection } from './redis-connection.js';

export interface DeliveryLog {
  /** True when `eventId` was marked delivered within the log's time to live. */
  delivered(eventId: string): Promise<boolean>;
  markDelivered(eventId: string): Promise<void>;
  close(): Promise<void>;
}

/** Longer than a job can stay queued and retried (the queue's backoff caps at minutes). */
export const DELIVERY_LOG_TTL_MS = 24 * 3600_000;

/** One process: the memory queue never hands a job out twice, but a dead letter may repeat. */
export class MemoryDeliveryLog implements DeliveryLog {
  private readonly window: DedupeWindow;
  private readonly now: () => number;

  constructor(options: { ttlMs?: number; maxEntries?: number; now?: () => number } = {}) {
    this.window = new DedupeWindow({ ttlMs: options.ttlMs ?? DELIVERY_LOG_TTL_MS, maxEntries: options.maxEntries ?? 100_000 });
    this.now = options.now ?? Date.now;
  }

  delivered(eventId: string): Promise<boolean> {
    return Promise.resolve(this.window.has(eventId, this.now()));
  }

  markDelivered(eventId: string): Promise<void> {
    this.window.add(eventId, this.now());
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Shared by every process on one Redis: `SET <prefix>:<id> 1 PX ttl`, one key per event, expiring. */
export class RedisDeliveryLog implements DeliveryLog {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly ttlMs: number;

  constructor(options: { connection: RedisConnection; prefix: string; ttlMs?: number }) {
    // Unlike the queue and the store, a late command does no harm here (marking is idempotent,
    // a late answer is ignored): wait for the connection, but never longer than a second.
    this.redis = openRedis(options.connection, { commandTimeout: 1000, maxRetriesPerRequest: 0 });
    // Connection errors surface in delivered()/markDelivered(), which the bridge logs.
    this.redis.on('error', () => undefined);
    this.prefix = `${options.prefix}:`;
    this.ttlMs = options.ttlMs ?? DELIVERY_LOG_TTL_MS;
  }

  async delivered(eventId: string): Promise<boolean> {
    return (await this.redis.exists(this.prefix + eventId)) === 1;
  }

  async markDelivered(eventId: string): Promise<void> {
    await this.redis.set(this.prefix + eventId, '1', 'PX', this.ttlMs);
  }

  close(): Promise<void> {
    this.redis.disconnect();
    return Promise.resolve();
  }
}
