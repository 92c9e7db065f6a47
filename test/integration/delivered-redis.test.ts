/**
 * The delivery log and the dedupe claims on a private redis-server, beside the memory ones: what
 * one process marks delivered or claims, another sees; keys expire; prefixes keep bridges apart.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryDedupeClaims, type DedupeClaims } from '../../src/core/dedupe.js';
import { MemoryDeliveryLog, RedisDeliveryLog, type DeliveryLog } from '../../src/core/state/delivered.js';
import { RedisDedupeClaims } from '../../src/core/state/redis-dedupe.js';
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

describe.each([
  ['memory', () => ({ a: new MemoryDeliveryLog(), b: undefined })],
  ['redis', () => ({ a: new RedisDeliveryLog({ connection: redis.url, prefix: 'p1' }), b: new RedisDeliveryLog({ connection: redis.url, prefix: 'p1' }) })],
] as const)('%s delivery log', (_name, open: () => { a: DeliveryLog; b: DeliveryLog | undefined }) => {
  it('says delivered only for what was marked, to every process sharing it', async () => {
    const { a, b } = open();
    const id = `ev-${Math.random()}`;
    expect(await a.delivered(id)).toBe(false);
    await a.markDelivered(id);
    expect(await a.delivered(id)).toBe(true);
    if (b !== undefined) expect(await b.delivered(id)).toBe(true);
    expect(await a.delivered(`${id}-other`)).toBe(false);
    await a.close();
    await b?.close();
  });
});

describe('RedisDeliveryLog keys', () => {
  it('expire, and another prefix is another bridge', async () => {
    const log = new RedisDeliveryLog({ connection: redis.url, prefix: 'p2', ttlMs: 60_000 });
    const other = new RedisDeliveryLog({ connection: redis.url, prefix: 'p3' });
    await log.markDelivered('e1');
    const ttl = await admin.pttl('p2:e1');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await other.delivered('e1')).toBe(false);
    await log.close();
    await other.close();
  });
});

describe.each([
  ['memory', () => { const one = new MemoryDedupeClaims({ ttlMs: 60_000, maxEntries: 100 }); return { a: one, b: one, close: async (): Promise<void> => undefined }; }],
  [
    'redis',
    () => {
      const a = new RedisDedupeClaims({ connection: redis.url, prefix: 'd1', ttlMs: 60_000 });
      const b = new RedisDedupeClaims({ connection: redis.url, prefix: 'd1', ttlMs: 60_000 });
      return { a, b, close: async (): Promise<void> => { await a.close(); await b.close(); } };
    },
  ],
] as const)('%s dedupe claims (two routers)', (_name, open: () => { a: DedupeClaims; b: DedupeClaims; close: () => Promise<void> }) => {
  it('grants a key once across routers, and again after a release', async () => {
    const { a, b, close } = open();
    const key = `sip:call-${Math.random()}:1:tag`;
    try {
      const both = await Promise.all([a.claim(key), b.claim(key)]);
      expect(both.filter(Boolean)).toHaveLength(1);
      expect(await a.claim(key)).toBe(false);
      await b.release(key);
      expect(await a.claim(key)).toBe(true);
    } finally {
      await close();
    }
  });
});
