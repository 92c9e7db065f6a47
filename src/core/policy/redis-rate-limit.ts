/**
 * The token buckets of rate-limit.ts on Redis, so every bridge process spends from the same
 * buckets when scaled out (issue 6 item 5). One hash per key (`tokens`, `at`), read, refilled and
 * spent in one Lua script, so concurrent takes from several processes never both get the last
 * token. Time is Redis's own clock (`TIME`), one clock for every process whatever their skew.
 *
 * Nothing leaks: a bucket's key expires once it would have refilled completely, when it is
 * indistinguishable from a key that never existed.
 */
import type { Redis } from 'ioredis';
import { BridgeError } from '../errors.js';
import { RedisGate, type RedisConnection } from '../state/redis-connection.js';
import { checkBucketOptions, costError, type RateDecision, type RateLimiter, type TokenBucketOptions } from './rate-limit.js';

export interface RedisRateLimiterOptions extends TokenBucketOptions {
  connection: RedisConnection;
  /** Key prefix: a bucket is `<prefix>:<key>`. */
  prefix: string;
  /** How long a take waits for Redis before answering "unavailable". Default 1000. */
  commandTimeoutMs?: number;
  /** Milliseconds, for tests that drive time; by default Redis's clock. */
  now?: () => number;
}

interface LimiterCommands {
  rateTake(bucket: string, ratePerSecond: string, burst: string, cost: string, now: string, ttlMs: string): Promise<[number, number]>;
}

/**
 * KEYS bucket; ARGV ratePerSecond, burst, cost, now in ms ('' = Redis TIME), ttl in ms.
 * Returns {allowed 0|1, retryAfterMs}. The arithmetic is MemoryRateLimiter's, step for step.
 */
const TAKE = `
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]), tonumber(b[2])
if not tokens or not at then tokens, at = burst, now end
tokens = math.min(burst, tokens + (math.max(0, now - at) * rate) / 1000)
at = math.max(at, now)
local allowed, retry = 0, 0
if tokens >= cost - 1e-9 then
  allowed = 1
  tokens = math.max(0, tokens - cost)
else
  retry = math.ceil(((cost - tokens) * 1000) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {allowed, retry}
`;

export class RedisRateLimiter implements RateLimiter {
  private readonly gate: RedisGate<Redis & LimiterCommands>;
  private readonly keyPrefix: string;
  private readonly ttlMs: string;
  private closed = false;

  constructor(private readonly options: RedisRateLimiterOptions) {
    checkBucketOptions(options);
    this.keyPrefix = `${options.prefix}:`;
    // From empty to full, and never under a minute, so a process paused mid-flood (or a test
    // driving its own clock) does not find its drained bucket expired and full again.
    this.ttlMs = String(Math.max(60_000, Math.ceil((options.burst * 1000) / options.ratePerSecond) + 1000));
    // Takes made before the first connection wait for it; connection errors surface in take().
    this.gate = new RedisGate(options.connection, { code: 'RATE_LIMIT_UNAVAILABLE', name: 'the rate limiter (Redis)', commandTimeoutMs: options.commandTimeoutMs ?? 1000 });
    this.redis.defineCommand('rateTake', { numberOfKeys: 1, lua: TAKE });
  }

  private get redis(): Redis & LimiterCommands {
    return this.gate.redis;
  }

  async take(key: string, cost = 1): Promise<RateDecision> {
    const bad = costError(cost, this.options.burst);
    if (bad) throw bad;
    if (this.closed) throw new BridgeError('RATE_LIMIT_CLOSED', 'the rate limiter is closed', { condition: 'service-unavailable', retryable: true });
    const now = this.options.now === undefined ? '' : String(this.options.now());
    const [allowed, retryAfterMs] = await this.gate.call('take', () =>
      this.redis.rateTake(this.keyPrefix + key, String(this.options.ratePerSecond), String(this.options.burst), String(cost), now, this.ttlMs),
    );
    return { allowed: allowed === 1, retryAfterMs };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
