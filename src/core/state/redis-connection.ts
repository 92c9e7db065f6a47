/**
 * One way to open a Redis connection for the bridge's backends (queue lanes, subscription
 * store, delivery log): reconnect within half a second of Redis coming back, and, for request
 * paths, fail a command at once while Redis is away rather than queue it, so a caller told
 * "unavailable" never sees the write happen behind its back.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { BridgeError } from '../errors.js';

/** A `redis://` URL, or ioredis options with host and port. */
export type RedisConnection = string | (RedisOptions & { host: string; port: number });

const RECONNECT_BACKOFF: RedisOptions['retryStrategy'] = (times) => Math.min(times * 50, 500);

/** Commands fail at once while disconnected (no offline queue, no resend after a reconnect). */
export const FAIL_FAST: RedisOptions = { enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 0 };

export function openRedis(connection: RedisConnection, overrides: RedisOptions = FAIL_FAST): Redis {
  const options = { retryStrategy: RECONNECT_BACKOFF, ...overrides };
  return typeof connection === 'string' ? new Redis(connection, options) : new Redis({ ...connection, ...options });
}

export interface RedisGateOptions {
  /** The BridgeError code when Redis is not there, e.g. `QUEUE_UNAVAILABLE`. */
  readonly code: string;
  /** What the refusal names, e.g. `the queue store (Redis)`. */
  readonly name: string;
  /** Longest a command may take before the caller is told "unavailable". */
  readonly commandTimeoutMs: number;
  /** Told once per outage, and when Redis is back; nothing when absent. */
  readonly logger?: { warn(details: object, message: string): void; info(message: string): void };
  readonly downMessage?: string;
}

/**
 * A fail-fast Redis connection with one rule for every backend: a command issued before the
 * first connection waits for it (up to the timeout); after that, while Redis is away, every
 * command is refused at once with a retryable BridgeError (remote-server-timeout, SIP 503), so
 * intake is refused rather than accepted and lost.
 */
export class RedisGate<R extends Redis = Redis> {
  readonly redis: R;
  private everReady = false;
  private readonly firstReady: Promise<void>;

  constructor(
    connection: RedisConnection,
    private readonly options: RedisGateOptions,
    overrides: RedisOptions = FAIL_FAST,
  ) {
    this.redis = openRedis(connection, overrides) as R;
    this.firstReady = new Promise((resolve) => this.redis.once('ready', () => resolve()));
    let down = false;
    this.redis.on('ready', () => {
      this.everReady = true;
      if (down) options.logger?.info(`${options.name} reachable again`);
      down = false;
    });
    this.redis.on('error', (err: Error) => {
      if (!down) options.logger?.warn({ err: err.message }, options.downMessage ?? `${options.name} unreachable`);
      down = true;
    });
  }

  /** Resolves at the first connection. */
  ready(): Promise<void> {
    return this.firstReady;
  }

  /** Runs `work` against Redis, turning "Redis is not there" into a prompt, retryable refusal. */
  async call<T>(what: string, work: () => Promise<T>): Promise<T> {
    const unavailable = (cause: unknown) =>
      new BridgeError(this.options.code, `${what}: ${this.options.name} is not reachable`, {
        condition: 'remote-server-timeout',
        sipStatus: 503,
        retryable: true,
        cause,
      });
    const status = this.redis.status;
    if (this.everReady && status !== 'ready') throw unavailable(new Error(`connection ${status}`));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(unavailable(new Error(`no answer within ${this.options.commandTimeoutMs} ms`))), this.options.commandTimeoutMs);
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
