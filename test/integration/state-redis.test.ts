/**
 * The Redis subscription store against a private redis-server: the store contract unchanged,
 * then what only Redis shows: two processes taking expired records at once, TTLs on every key,
 * records Redis expired before anyone took them, Redis going away.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisSubscriptionStore, type RedisSubscriptionStoreOptions } from '../../src/core/state/redis-subscriptions.js';
import type { SubscriptionRecord } from '../../src/core/state/subscriptions.js';
import { subscriptionStoreContract } from '../contract/subscriptions.contract.js';
import { waitFor } from '../support/ports.js';
import { startRedis, type RedisServer } from '../support/redis.js';

let redis: RedisServer;
let admin: Redis;
beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
afterAll(async () => {
  await admin?.quit();
  await redis?.close();
});

subscriptionStoreContract('redis', (options) => new RedisSubscriptionStore({ ...options, connection: redis.url, prefix: redis.prefix() }));

function rec(id: string, expiresAt: number, fields: Partial<SubscriptionRecord> = {}): SubscriptionRecord {
  return { id, role: 'subscriber', watcher: 'w@x.example', presentity: 'p@s.example', state: 'active', expiresAt, data: null, ...fields };
}

describe('RedisSubscriptionStore', () => {
  const opened: RedisSubscriptionStore[] = [];
  const open = (options: Partial<RedisSubscriptionStoreOptions> & { prefix: string }): RedisSubscriptionStore => {
    const store = new RedisSubscriptionStore({ maxRecords: 10_000, connection: redis.url, ...options });
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  it('never hands the same expired record to two processes taking at once', async () => {
    const prefix = redis.prefix();
    const one = open({ prefix });
    const two = open({ prefix });
    for (let i = 0; i < 500; i++) await one.put(rec(`d${i}`, i));
    const taken: string[] = [];
    const take = async (store: RedisSubscriptionStore) => {
      for (let round = 0; round < 200; round++) {
        const batch = await store.takeExpired(Number.MAX_SAFE_INTEGER, 7);
        if (batch.length === 0) return;
        taken.push(...batch.map((r) => r.id));
      }
    };
    await Promise.all([take(one), take(two), take(one), take(two)]);
    expect(taken).toHaveLength(500);
    expect(new Set(taken).size).toBe(500);
    expect(await one.size()).toBe(0);
  });

  it('gives every key it writes a TTL past the record expiry', async () => {
    const prefix = redis.prefix();
    const store = open({ prefix, ttlGraceMs: 60_000 });
    const expiresAt = Date.now() + 30_000;
    await store.put(rec('d1', expiresAt, { role: 'notifier' }));
    await store.put(rec('d2', expiresAt + 10_000));
    const keys = await admin.keys(`${prefix}:*`);
    expect(keys.sort()).toEqual(
      [`${prefix}:expiry`, `${prefix}:presentity:p@s.example`, `${prefix}:rec:d1`, `${prefix}:rec:d2`, `${prefix}:role:notifier`, `${prefix}:role:subscriber`, `${prefix}:watcher:w@x.example`].sort(),
    );
    const ttlAt = async (key: string) => (await admin.pttl(key)) + Date.now();
    const slack = 5_000;
    expect(await ttlAt(`${prefix}:rec:d1`)).toBeGreaterThan(expiresAt + 60_000 - slack);
    expect(await ttlAt(`${prefix}:rec:d1`)).toBeLessThanOrEqual(expiresAt + 60_000 + slack);
    // An index lives as long as the longest-lived record it held.
    for (const key of [`${prefix}:expiry`, `${prefix}:presentity:p@s.example`, `${prefix}:watcher:w@x.example`]) {
      expect(await ttlAt(key)).toBeGreaterThan(expiresAt + 70_000 - slack);
    }
  });

  it('shortens a record TTL when it is refreshed to an earlier expiry, counting from now at least', async () => {
    const prefix = redis.prefix();
    const store = open({ prefix, ttlGraceMs: 60_000 });
    await store.put(rec('d1', Date.now() + 600_000));
    await store.put(rec('d1', 5));
    const ttl = await admin.pttl(`${prefix}:rec:d1`);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('forgets a record Redis expired before anyone took it, everywhere', async () => {
    const prefix = redis.prefix();
    const store = open({ prefix });
    await store.put(rec('gone', 10));
    await store.put(rec('kept', 20));
    // As if its TTL had run out while no bridge process was taking expired records.
    await admin.del(`${prefix}:rec:gone`);
    expect(await store.get('gone')).toBeUndefined();
    expect((await store.byPresentity('p@s.example')).map((r) => r.id)).toEqual(['kept']);
    expect((await store.list('subscriber', 10)).map((r) => r.id)).toEqual(['kept']);
    expect(await store.delete('gone')).toBe(false);
    await store.put(rec('gone-too', 5));
    await admin.del(`${prefix}:rec:gone-too`);
    expect((await store.takeExpired(100, 1)).map((r) => r.id)).toEqual(['kept']);
    expect(await store.size()).toBe(0);
    expect(await store.nextExpiry()).toBeUndefined();
    expect(await store.byWatcher('w@x.example')).toEqual([]);
    expect(await store.byPresentity('p@s.example')).toEqual([]);
    expect(await admin.keys(`${prefix}:*`)).toEqual([]);
  });

  it('refuses every call once closed', async () => {
    const store = open({ prefix: redis.prefix() });
    await store.put(rec('d1', 1));
    await store.close();
    await expect(store.get('d1')).rejects.toMatchObject({ code: 'STATE_CLOSED', condition: 'service-unavailable' });
  });
});

describe('RedisSubscriptionStore when Redis goes away', () => {
  let own: RedisServer;
  beforeAll(async () => {
    own = await startRedis({ private: true });
  });
  afterAll(async () => {
    await own?.close();
  });

  it('keeps what put acknowledged through a SIGKILL of Redis (append-only, fsync always)', async () => {
    const durable = await startRedis({ private: true, durable: true });
    const prefix = durable.prefix();
    const first = new RedisSubscriptionStore({ maxRecords: 10, connection: durable.url, prefix });
    try {
      await first.put(rec('d1', 100, { data: { cseq: 7 } }));
      await first.put(rec('d2', 200));
      await durable.kill();
      await durable.restart();
      const second = new RedisSubscriptionStore({ maxRecords: 10, connection: durable.url, prefix });
      try {
        expect(await second.get('d1')).toEqual(rec('d1', 100, { data: { cseq: 7 } }));
        expect((await second.takeExpired(1_000, 10)).map((r) => r.id)).toEqual(['d1', 'd2']);
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
      await durable.close();
    }
  });

  it('answers promptly with remote-server-timeout, and works again once Redis is back', async () => {
    const store = new RedisSubscriptionStore({ maxRecords: 10, connection: own.url, prefix: own.prefix(), commandTimeoutMs: 1_000 });
    try {
      await store.put(rec('d1', 1));
      await own.stop();
      const started = Date.now();
      await expect(store.put(rec('d2', 1))).rejects.toMatchObject({
        code: 'STATE_UNAVAILABLE',
        condition: 'remote-server-timeout',
        sipStatus: 503,
        retryable: true,
      });
      await expect(store.takeExpired(10, 10)).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
      expect(Date.now() - started).toBeLessThan(3_000);
      await own.restart();
      await waitFor('the store answering again', () => store.size().then((n) => n === 0 || undefined, () => undefined), 10_000, 100);
      await store.put(rec('d3', 1));
      expect(await store.get('d3')).toEqual(rec('d3', 1));
    } finally {
      await store.close();
    }
  });
});
