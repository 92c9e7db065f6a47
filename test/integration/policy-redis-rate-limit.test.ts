/**
 * The Redis rate limiter against a private redis-server: the contract unchanged, then what only
 * Redis shows: buckets shared by processes, atomic under concurrent takes, keys that expire,
 * Redis's own clock, Redis going away.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/core/errors.js';
import { RedisRateLimiter, type RedisRateLimiterOptions } from '../../src/core/policy/redis-rate-limit.js';
import { rateLimiterContract } from '../contract/rate-limit.contract.js';
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

rateLimiterContract('redis', (options) => new RedisRateLimiter({ ...options, connection: redis.url, prefix: redis.prefix() }), 30);

describe('RedisRateLimiter', () => {
  const opened: RedisRateLimiter[] = [];
  const open = (options: Partial<RedisRateLimiterOptions> & { prefix: string }): RedisRateLimiter => {
    const limiter = new RedisRateLimiter({ ratePerSecond: 0.001, burst: 50, connection: redis.url, ...options });
    opened.push(limiter);
    return limiter;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((l) => l.close()));
  });

  it('shares one bucket between processes: concurrent takes from two never grant more than the burst', async () => {
    const prefix = redis.prefix();
    const one = open({ prefix });
    const two = open({ prefix });
    // A token per 1000 s: nothing refills during the test, so exactly the burst is granted.
    const decisions = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? one : two).take('acme')));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
    expect(decisions.filter((d) => !d.allowed).every((d) => d.retryAfterMs > 0)).toBe(true);
  });

  it("uses Redis's clock when given none, so processes with skewed clocks agree", async () => {
    const limiter = open({ prefix: redis.prefix(), ratePerSecond: 0.001, burst: 3 });
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await limiter.take('acme'));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(decisions[3]!.retryAfterMs).toBeGreaterThan(990_000);
  });

  it.each([
    [10, 20, 60_000],
    [0.01, 20, 2_001_000],
  ])('gives every bucket a time to live: rate %d/s, burst %d → %d ms (the time to refill, at least a minute)', async (ratePerSecond, burst, ttlMs) => {
    const prefix = redis.prefix();
    const limiter = open({ prefix, ratePerSecond, burst });
    await limiter.take('acme');
    const ttl = await admin.pttl(`${prefix}:acme`);
    expect(ttl).toBeGreaterThan(ttlMs - 10_000);
    expect(ttl).toBeLessThanOrEqual(ttlMs);
  });

  it('keeps partners apart in Redis too: one flooding leaves the other its burst', async () => {
    const prefix = redis.prefix();
    const one = open({ prefix, burst: 5 });
    const two = open({ prefix, burst: 5 });
    const flood = await Promise.all(Array.from({ length: 100 }, () => one.take('messages:flood')));
    expect(flood.filter((d) => d.allowed)).toHaveLength(5);
    const quiet = await Promise.all(Array.from({ length: 5 }, () => two.take('messages:quiet')));
    expect(quiet.every((d) => d.allowed)).toBe(true);
  });

  it('answers a prompt, retryable BridgeError while Redis is away', async () => {
    const gone = await startRedis({ private: true });
    const limiter = new RedisRateLimiter({ ratePerSecond: 1, burst: 5, connection: gone.url, prefix: gone.prefix(), commandTimeoutMs: 500 });
    opened.push(limiter);
    try {
      expect((await limiter.take('acme')).allowed).toBe(true);
      await gone.stop();
      const err = await limiter.take('acme').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BridgeError);
      expect(err).toMatchObject({ code: 'RATE_LIMIT_UNAVAILABLE', sipStatus: 503, retryable: true });
    } finally {
      await gone.close();
    }
  });

  it('refuses takes once closed', async () => {
    const limiter = open({ prefix: redis.prefix() });
    await limiter.close();
    await expect(limiter.take('acme')).rejects.toMatchObject({ code: 'RATE_LIMIT_CLOSED' });
  });
});
