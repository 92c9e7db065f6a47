/**
 * The rate limiter contract (src/core/policy/rate-limit.ts), run against every backend. Time is
 * the test's: each backend takes a `now` the test moves by hand.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { RateLimiter } from '../../src/core/policy/rate-limit.js';

export interface RateLimiterFactoryOptions {
  ratePerSecond: number;
  burst: number;
  now: () => number;
}

/** A clock the test moves, starting well after zero. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_700_000_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

export function rateLimiterContract(
  backend: string,
  create: (options: RateLimiterFactoryOptions) => Promise<RateLimiter> | RateLimiter,
  /** Property runs: fewer where each take is a network round trip. */
  runs = 100,
): void {
  describe(`rate limiter contract: ${backend}`, () => {
    const open: RateLimiter[] = [];
    const openLimiter = async (options: Omit<RateLimiterFactoryOptions, 'now'>, clock = manualClock()) => {
      const limiter = await create({ ...options, now: clock.now });
      open.push(limiter);
      return { limiter, clock };
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((l) => l.close()));
    });

    it('grants a full burst at once, then refuses, saying how long until the next token', async () => {
      const { limiter } = await openLimiter({ ratePerSecond: 2, burst: 5 });
      const decisions = [];
      for (let i = 0; i < 6; i++) decisions.push(await limiter.take('acme'));
      expect(decisions.slice(0, 5)).toEqual(Array(5).fill({ allowed: true, retryAfterMs: 0 }));
      expect(decisions[5]).toEqual({ allowed: false, retryAfterMs: 500 });
    });

    it('grants again after exactly the retryAfterMs it answered', async () => {
      const { limiter, clock } = await openLimiter({ ratePerSecond: 3, burst: 2 });
      await limiter.take('acme', 2);
      const refused = await limiter.take('acme');
      expect(refused.allowed).toBe(false);
      clock.advance(refused.retryAfterMs - 1);
      expect((await limiter.take('acme')).allowed).toBe(false);
      clock.advance(1);
      expect((await limiter.take('acme')).allowed).toBe(true);
    });

    it('refills at the rate and never above the burst', async () => {
      const { limiter, clock } = await openLimiter({ ratePerSecond: 10, burst: 4 });
      await limiter.take('acme', 4);
      clock.advance(250);
      expect(await limiter.take('acme', 2)).toEqual({ allowed: true, retryAfterMs: 0 });
      expect((await limiter.take('acme', 1)).allowed).toBe(false);
      clock.advance(3_600_000);
      expect((await limiter.take('acme', 4)).allowed).toBe(true);
      expect((await limiter.take('acme', 1)).allowed).toBe(false);
    });

    it('charges nothing for a refused take', async () => {
      const { limiter, clock } = await openLimiter({ ratePerSecond: 1, burst: 3 });
      await limiter.take('acme', 2);
      expect((await limiter.take('acme', 3)).allowed).toBe(false);
      expect((await limiter.take('acme', 1)).allowed).toBe(true);
      clock.advance(1000);
      expect((await limiter.take('acme', 1)).allowed).toBe(true);
    });

    it('keeps each key apart: a flooding key leaves another key its whole burst', async () => {
      const { limiter } = await openLimiter({ ratePerSecond: 1, burst: 3 });
      let granted = 0;
      for (let i = 0; i < 50; i++) if ((await limiter.take('flood')).allowed) granted++;
      expect(granted).toBe(3);
      const other = [];
      for (let i = 0; i < 3; i++) other.push((await limiter.take('quiet')).allowed);
      expect(other).toEqual([true, true, true]);
    });

    it('does not drain a bucket when the clock steps back', async () => {
      const { limiter, clock } = await openLimiter({ ratePerSecond: 1, burst: 2 });
      await limiter.take('acme');
      clock.advance(-60_000);
      expect((await limiter.take('acme')).allowed).toBe(true);
      expect((await limiter.take('acme')).allowed).toBe(false);
    });

    it('refuses a cost that no bucket could ever pay, or that is not a positive number', async () => {
      const { limiter } = await openLimiter({ ratePerSecond: 1, burst: 3 });
      for (const cost of [4, 0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(limiter.take('acme', cost)).rejects.toThrow(RangeError);
      }
    });

    it('grants no key more than burst + rate·t in any window of t, and grants what a bucket holds', async () => {
      const step = fc.record({ waitMs: fc.integer({ min: 0, max: 700 }), cost: fc.integer({ min: 1, max: 3 }), key: fc.constantFrom('a', 'b') });
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 20 }),
          fc.integer({ min: 3, max: 10 }),
          fc.array(step, { minLength: 1, maxLength: 40 }),
          async (ratePerSecond, burst, steps) => {
            const clock = manualClock();
            const limiter = await create({ ratePerSecond, burst, now: clock.now });
            try {
              await replay(limiter, clock, ratePerSecond, burst, steps);
            } finally {
              await limiter.close();
            }
          },
        ),
        { numRuns: runs, seed: 6 },
      );
    });
  });
}

async function replay(
  limiter: RateLimiter,
  clock: ReturnType<typeof manualClock>,
  ratePerSecond: number,
  burst: number,
  steps: readonly { waitMs: number; cost: number; key: string }[],
): Promise<void> {
  const granted: { at: number; key: string; cost: number }[] = [];
  // The model: a bucket per key, refilled by elapsed time, never above the burst.
  const model = new Map<string, { tokens: number; at: number }>();
  for (const { waitMs, cost, key } of steps) {
    clock.advance(waitMs);
    const at = clock.now();
    const m = model.get(key) ?? { tokens: burst, at };
    m.tokens = Math.min(burst, m.tokens + ((at - m.at) * ratePerSecond) / 1000);
    m.at = at;
    model.set(key, m);
    const decision = await limiter.take(key, cost);
    // Far from the boundary the model and the limiter agree exactly.
    if (m.tokens >= cost + 1e-6) expect(decision.allowed).toBe(true);
    if (m.tokens <= cost - 1e-6) expect(decision.allowed).toBe(false);
    if (decision.allowed) {
      m.tokens = Math.max(0, m.tokens - cost);
      granted.push({ at, key, cost });
    } else {
      expect(decision.retryAfterMs).toBeGreaterThan(0);
    }
  }
  for (const start of granted) {
    for (const end of granted) {
      if (start.key !== end.key || end.at < start.at) continue;
      const inWindow = granted.filter((g) => g.key === start.key && g.at >= start.at && g.at <= end.at);
      const spent = inWindow.reduce((sum, g) => sum + g.cost, 0);
      expect(spent).toBeLessThanOrEqual(burst + (ratePerSecond * (end.at - start.at)) / 1000 + 1e-6);
    }
  }
}
