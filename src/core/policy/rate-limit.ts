/**
 * Token buckets against floods (issue 6 item 5): one bucket per key (a partner and what it
 * spends, e.g. `messages:acme`), holding at most `burst` tokens and refilled at `ratePerSecond`.
 * Each key has its own bucket, so a flooding partner empties only its own and the others keep
 * flowing. Over any window of t seconds a key is granted at most `burst + ratePerSecond·t`.
 */
import { BridgeError } from '../errors.js';

export interface RateDecision {
  readonly allowed: boolean;
  /** When refused, how long until the same take would succeed (nobody else taking); 0 when allowed. */
  readonly retryAfterMs: number;
}

export interface RateLimiter {
  /** Takes `cost` tokens (default 1) from `key`'s bucket, or none when it holds fewer. */
  take(key: string, cost?: number): Promise<RateDecision>;
  close(): Promise<void>;
}

export interface TokenBucketOptions {
  /** Tokens added per second. */
  readonly ratePerSecond: number;
  /** Bucket size: the most granted at once after a quiet spell. */
  readonly burst: number;
}

export interface MemoryRateLimiterOptions extends TokenBucketOptions {
  /** Buckets kept, at most; past it the least recently used goes (it starts full if it returns). */
  readonly maxKeys: number;
  /** Milliseconds; the bridge's clock unless a test drives its own. */
  readonly now?: () => number;
}

/** Float slack, so waiting exactly the retryAfterMs a refusal gave is always enough. */
const ROUNDING = 1e-9;

interface Bucket {
  tokens: number;
  at: number;
}

/** One process's buckets. Keys are partners and kinds of traffic, so `maxKeys` is rarely reached. */
export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(private readonly options: MemoryRateLimiterOptions) {
    checkBucketOptions(options);
    if (!Number.isInteger(options.maxKeys) || options.maxKeys < 1) throw new RangeError(`maxKeys must be a positive integer, not ${options.maxKeys}`);
    this.now = options.now ?? Date.now;
  }

  take(key: string, cost = 1): Promise<RateDecision> {
    const bad = costError(cost, this.options.burst);
    if (bad) return Promise.reject(bad);
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.options.burst, at: now };
    // Re-inserted on every take: Map order is then least recently used first.
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    const decision = spend(bucket, cost, now, this.options);
    for (const oldest of this.buckets.keys()) {
      if (this.buckets.size <= this.options.maxKeys) break;
      this.buckets.delete(oldest);
    }
    return Promise.resolve(decision);
  }

  /** Buckets held now (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  close(): Promise<void> {
    this.buckets.clear();
    return Promise.resolve();
  }
}

/** Refills `bucket` up to `now`, then takes `cost` from it when it can. Mutates `bucket`. */
function spend(bucket: Bucket, cost: number, now: number, options: TokenBucketOptions): RateDecision {
  // A clock that steps back refills nothing rather than draining the bucket.
  const elapsed = Math.max(0, now - bucket.at);
  bucket.tokens = Math.min(options.burst, bucket.tokens + (elapsed * options.ratePerSecond) / 1000);
  bucket.at = Math.max(bucket.at, now);
  if (bucket.tokens >= cost - ROUNDING) {
    bucket.tokens = Math.max(0, bucket.tokens - cost);
    return { allowed: true, retryAfterMs: 0 };
  }
  return { allowed: false, retryAfterMs: Math.ceil(((cost - bucket.tokens) * 1000) / options.ratePerSecond) };
}

export function checkBucketOptions(options: TokenBucketOptions): void {
  if (!(Number.isFinite(options.ratePerSecond) && options.ratePerSecond > 0)) {
    throw new RangeError(`ratePerSecond must be a positive number, not ${options.ratePerSecond}`);
  }
  if (!(Number.isFinite(options.burst) && options.burst >= 1)) throw new RangeError(`burst must be at least 1, not ${options.burst}`);
}

/** A cost above the burst could never be granted: a caller's mistake, not a flood. */
export function costError(cost: number, burst: number): RangeError | undefined {
  if (Number.isFinite(cost) && cost > 0 && cost <= burst) return undefined;
  return new RangeError(`cost must be above 0 and at most the burst (${burst}), not ${cost}`);
}

/** A refusal that carries when to come back. */
export class RateLimitedError extends BridgeError {
  /** Whole seconds, rounded up: the SIP Retry-After value (RFC 3261 §20.33). */
  readonly retryAfterS: number;
  /** The partner whose bucket ran dry, for the rate-limit metric's label. */
  readonly partner: string | undefined;

  constructor(retryAfterMs: number, what: string, partner?: string) {
    const retryAfterS = Math.max(1, Math.ceil(retryAfterMs / 1000));
    super('RATE_LIMITED', `${what} over its rate limit; retry after ${retryAfterS} s`, {
      condition: 'resource-constraint',
      // RFC 3261 §21.5.4: 503 with Retry-After; the peer retries later instead of giving up.
      sipStatus: 503,
      retryable: true,
    });
    this.retryAfterS = retryAfterS;
    this.partner = partner;
  }
}

/**
 * The refusal for a take that was not allowed: `resource-constraint` on XMPP (RFC 6120
 * §8.3.3.18), 503 on SIP with `Retry-After: retryAfterS` (the adapter's edge writes the header).
 */
export function rateLimitedError(retryAfterMs: number, what = 'traffic', partner?: string): RateLimitedError {
  return new RateLimitedError(retryAfterMs, what, partner);
}
