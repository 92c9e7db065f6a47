import { describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/core/errors.js';
import { MemoryRateLimiter, rateLimitedError } from '../../src/core/policy/rate-limit.js';
import { rateLimiterContract } from '../contract/rate-limit.contract.js';

rateLimiterContract('memory', (options) => new MemoryRateLimiter({ ...options, maxKeys: 1000 }));

describe('MemoryRateLimiter', () => {
  it('holds at most maxKeys buckets, however many keys come by', async () => {
    const limiter = new MemoryRateLimiter({ ratePerSecond: 1, burst: 1, maxKeys: 100, now: () => 0 });
    for (let i = 0; i < 10_000; i++) await limiter.take(`k${i}`);
    expect(limiter.size).toBe(100);
  });

  it('evicts the least recently used bucket, so a busy key keeps its (empty) bucket', async () => {
    const limiter = new MemoryRateLimiter({ ratePerSecond: 1, burst: 1, maxKeys: 3, now: () => 0 });
    expect((await limiter.take('flood')).allowed).toBe(true);
    for (let i = 0; i < 20; i++) {
      await limiter.take(`other${i}`);
      expect((await limiter.take('flood')).allowed).toBe(false);
    }
  });

  it.each([
    [{ ratePerSecond: 0, burst: 1, maxKeys: 1 }, /ratePerSecond/],
    [{ ratePerSecond: Number.NaN, burst: 1, maxKeys: 1 }, /ratePerSecond/],
    [{ ratePerSecond: 1, burst: 0.5, maxKeys: 1 }, /burst/],
    [{ ratePerSecond: 1, burst: 1, maxKeys: 0 }, /maxKeys/],
    [{ ratePerSecond: 1, burst: 1, maxKeys: 1.5 }, /maxKeys/],
  ])('refuses the options %j', (options, message) => {
    expect(() => new MemoryRateLimiter(options)).toThrow(message);
  });
});

describe('rateLimitedError', () => {
  it.each([
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [0, 1],
    [120_000, 120],
  ])('after %i ms says Retry-After %i s', (ms, seconds) => {
    const err = rateLimitedError(ms);
    expect(err.retryAfterS).toBe(seconds);
    expect(err.message).toContain(`retry after ${seconds} s`);
  });

  it('is a retryable BridgeError: resource-constraint on XMPP, 503 on SIP', () => {
    const err = rateLimitedError(2500, 'partner acme messages');
    expect(err).toBeInstanceOf(BridgeError);
    expect(err).toMatchObject({ code: 'RATE_LIMITED', condition: 'resource-constraint', sipStatus: 503, retryable: true, retryAfterS: 3 });
    expect(err.message).toMatch(/^partner acme messages over its rate limit/);
  });
});
