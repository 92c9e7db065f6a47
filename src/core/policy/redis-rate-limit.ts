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
import { openRedis, type RedisConnection } from '../state/redis-connection.js';
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
  private readonly redis: Redis & LimiterCommands;
  private readonly keyPrefix: string;
  private readonly ttlMs: string;
  private readonly commandTimeoutMs: number;
  private everReady = false;
  private closed = false;
  /** Resolves at the first connection: takes made before it wait for it, not fail. */
  private readonly firstReady: Promise<void>;

  constructor(private readonly options: RedisRateLimiterOptions) {
    checkBucketOptions(options);
    this.keyPrefix = `${options.prefix}:`;
    // From empty to full, and never under a minute, so a process paused mid-flood (or a test
    // driving its own clock) does not find its drained bucket expired and full again.
    this.ttlMs = String(Math.max(60_000, Math.ceil((options.burst * 1000) / options.ratePerSecond) + 1000));
    this.commandTimeoutMs = options.commandTimeoutMs ?? 1000;
    this.redis = openRedis(options.connection) as Redis & LimiterCommands;
    this.redis.defineCommand('rateTake', { numberOfKeys: 1, lua: TAKE });
    this.firstReady = new Promise((resolve) => this.redis.once('ready', () => resolve()));
    this.redis.on('ready', () => (this.everReady = true));
    // Connection errors surface in take(), as a BridgeError the caller logs.
    this.redis.on('error', () => undefined);
  }

  async take(key: string, cost = 1): Promise<RateDecision> {
    const bad = costError(cost, this.options.burst);
    if (bad) throw bad;
    if (this.closed) throw new BridgeError('RATE_LIMIT_CLOSED', 'the rate limiter is closed', { condition: 'service-unavailable', retryable: true });
    const now = this.options.now === undefined ? '' : String(this.options.now());
    const [allowed, retryAfterMs] = await this.call(() =>
      this.redis.rateTake(this.keyPrefix + key, String(this.options.ratePerSecond), String(this.options.burst), String(cost), now, this.ttlMs),
    );
    return { allowed: allowed === 1, retryAfterMs };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /** Runs `work` against Redis, turning "Redis is not there" into a prompt, retryable refusal. */
  private async call<R>(work: () => Promise<R>): Promise<R> {
    const unavailable = (cause: unknown) =>
      new BridgeError('RATE_LIMIT_UNAVAILABLE', 'rate limiter: Redis is not reachable', {
        condition: 'remote-server-timeout',
        sipStatus: 503,
        retryable: true,
        cause,
      });
    if (this.everReady && this.redis.status !== 'ready') throw unavailable(new Error(`connection ${this.redis.status}`));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(unavailable(new Error(`no answer within ${this.commandTimeoutMs} ms`))), this.commandTimeoutMs);
    });
    try {
      if (!this.everReady) await Promise.race([this.firstReady, deadline]);
      return await Promise.race([work(), deadline]);
    } catch (err) {
      throw err instanceof BridgeError ? err : unavailable(err);
    } finally {
      clearTimeout(timer);
    }
  }
}
