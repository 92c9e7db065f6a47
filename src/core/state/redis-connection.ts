/**
 * One way to open a Redis connection for the bridge's backends (queue lanes, subscription
 * store, delivery log): reconnect within half a second of Redis coming back, and, for request
 * paths, fail a command at once while Redis is away rather than queue it, so a caller told
 * "unavailable" never sees the write happen behind its back.
 */
import { Redis, type RedisOptions } from 'ioredis';

/** A `redis://` URL, or ioredis options with host and port. */
export type RedisConnection = string | (RedisOptions & { host: string; port: number });

const RECONNECT_BACKOFF: RedisOptions['retryStrategy'] = (times) => Math.min(times * 50, 500);

/** Commands fail at once while disconnected (no offline queue, no resend after a reconnect). */
export const FAIL_FAST: RedisOptions = { enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 0 };

export function openRedis(connection: RedisConnection, overrides: RedisOptions = FAIL_FAST): Redis {
  const options = { retryStrategy: RECONNECT_BACKOFF, ...overrides };
  return typeof connection === 'string' ? new Redis(connection, options) : new Redis({ ...connection, ...options });
}
