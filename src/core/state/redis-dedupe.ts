/**
 * Dedupe claims shared by every router on one Redis (`SET key 1 NX PX ttl`): a message resent
 * to another SIP edge, or seen again after a router restart, is still delivered once. While
 * Redis is away a claim is granted (logged): the queue refuses intake then anyway, and
 * delivering twice is better than losing.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../../telemetry/logger.js';
import type { DedupeClaims } from '../dedupe.js';
import { RedisGate, type RedisConnection } from './redis-connection.js';

export class RedisDedupeClaims implements DedupeClaims {
  private readonly gate: RedisGate<Redis>;
  private readonly prefix: string;

  constructor(private readonly options: { connection: RedisConnection; prefix: string; ttlMs: number; logger?: Logger }) {
    this.gate = new RedisGate(options.connection, { code: 'DEDUPE_UNAVAILABLE', name: 'the dedupe store (Redis)', commandTimeoutMs: 1000 });
    this.prefix = `${options.prefix}:`;
  }

  async claim(key: string): Promise<boolean> {
    try {
      return (await this.gate.call('claim', () => this.gate.redis.set(this.prefix + key, '1', 'PX', this.options.ttlMs, 'NX'))) === 'OK';
    } catch (err) {
      this.options.logger?.warn({ err, key }, 'dedupe claim not checked (Redis away): taken as new');
      return true;
    }
  }

  async release(key: string): Promise<void> {
    await this.gate.call('release', () => this.gate.redis.del(this.prefix + key)).catch(() => undefined);
  }

  close(): Promise<void> {
    this.gate.redis.disconnect();
    return Promise.resolve();
  }
}
