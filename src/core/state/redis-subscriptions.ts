/**
 * Subscription store on Redis (issue 5), shared by every bridge process. One hash per record
 * (its JSON text and the fields the indexes need), a set per presentity, per watcher and per
 * role, a sorted set on expiresAt for takeExpired, and one per partner on when Redis drops the
 * record, so countByPartner is one ZCARD however many records a partner holds. Every change is one Lua script, so the
 * indexes never disagree with the records and two processes never take the same expired record.
 *
 * Nothing leaks: a record's hash expires `ttlGraceMs` after its expiry (or after its last put,
 * if that is later), and each index key lives at least as long as the longest-lived record it
 * ever held. A record that Redis expired before anyone took it leaves ids behind in the
 * indexes: readers skip them and takeExpired removes them.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../../telemetry/logger.js';
import { BridgeError } from '../errors.js';
import { RedisGate, type RedisConnection } from './redis-connection.js';
import { serialiseRecord, type SubscriptionRecord, type SubscriptionRole, type SubscriptionStore } from './subscriptions.js';

export interface RedisSubscriptionStoreOptions {
  connection: RedisConnection;
  /** Key prefix: the store's keys are `<prefix>:rec:<id>`, `<prefix>:expiry`, … */
  prefix: string;
  /** Records held, at most; a put of a new id past it is refused. */
  maxRecords: number;
  /** How long a record outlives its expiry in Redis when nobody takes it. Default one hour. */
  ttlGraceMs?: number;
  /** How long a call waits for Redis before answering "unavailable". Default 2000. */
  commandTimeoutMs?: number;
  logger?: Logger;
}

interface StoreCommands {
  subPut(rec: string, expiry: string, presentity: string, watcher: string, role: string, ...args: string[]): Promise<number>;
  subDelete(rec: string, expiry: string, ...args: string[]): Promise<number>;
  subRead(index: string, ...args: string[]): Promise<string[]>;
  subTake(expiry: string, ...args: string[]): Promise<string[]>;
  subCount(index: string, ...args: string[]): Promise<number>;
}

/**
 * Shared by the scripts: drop a record's index entries; drop an id from both role sets when
 * Redis expired its record (its role is unknown; the presentity and watcher sets drop such ids
 * when next read); make an index key live at least until `at` (never shortening it).
 */
const HELPERS = `
local function unindex(prefix, id, role, watcher, presentity, partner)
  redis.call('SREM', prefix .. 'presentity:' .. presentity, id)
  redis.call('SREM', prefix .. 'watcher:' .. watcher, id)
  redis.call('SREM', prefix .. 'role:' .. role, id)
  if partner and partner ~= '' then redis.call('ZREM', prefix .. 'partner:' .. partner, id) end
end
local function unindexRoles(prefix, id)
  redis.call('SREM', prefix .. 'role:notifier', id)
  redis.call('SREM', prefix .. 'role:subscriber', id)
end
local function outlive(key, at, now)
  local ttl = redis.call('PTTL', key)
  if ttl == -1 or ttl < at - now then redis.call('PEXPIREAT', key, at) end
end
`;

/**
 * KEYS rec, expiry, presentity index, watcher index, role index;
 * ARGV id, json, role, watcher, presentity, expiresAt, maxRecords, keepUntil, now, prefix,
 * partner or ''. Returns 0 when full, 1 once stored.
 */
const PUT = `${HELPERS}
local old = redis.call('HMGET', KEYS[1], 'role', 'watcher', 'presentity', 'partner')
if old[1] then
  unindex(ARGV[10], ARGV[1], old[1], old[2], old[3], old[4])
elseif redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[7]) then
  return 0
end
local at, now = tonumber(ARGV[8]), tonumber(ARGV[9])
redis.call('HSET', KEYS[1], 'json', ARGV[2], 'role', ARGV[3], 'watcher', ARGV[4], 'presentity', ARGV[5], 'partner', ARGV[11])
redis.call('PEXPIREAT', KEYS[1], ARGV[8])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
outlive(KEYS[2], at, now)
for i = 3, 5 do
  redis.call('SADD', KEYS[i], ARGV[1])
  outlive(KEYS[i], at, now)
end
if ARGV[11] ~= '' then
  -- Scored by the record's own PEXPIREAT, so a count can drop what Redis expired untaken.
  local partner = ARGV[10] .. 'partner:' .. ARGV[11]
  redis.call('ZADD', partner, ARGV[8], ARGV[1])
  outlive(partner, at, now)
end
return 1
`;

/** KEYS rec, expiry; ARGV id, prefix. Returns 1 when a record was removed. */
const DELETE = `${HELPERS}
redis.call('ZREM', KEYS[2], ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'role', 'watcher', 'presentity', 'partner')
if not f[1] then
  unindexRoles(ARGV[2], ARGV[1])
  return 0
end
unindex(ARGV[2], ARGV[1], f[1], f[2], f[3], f[4])
redis.call('DEL', KEYS[1])
return 1
`;

/** KEYS index set; ARGV prefix, role or ''. JSON of its records (of that role), dropping ids whose record is gone. */
const READ = `
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local f = redis.call('HMGET', ARGV[1] .. 'rec:' .. id, 'json', 'role')
  if not f[1] then
    redis.call('SREM', KEYS[1], id)
  elseif ARGV[2] == '' or f[2] == ARGV[2] then
    out[#out + 1] = f[1]
  end
end
return out
`;

/** KEYS expiry; ARGV now, limit, prefix. Removes and returns up to limit due records, earliest first. */
const TAKE = `${HELPERS}
local out = {}
local limit = tonumber(ARGV[2])
-- Each round removes what it reads, so the rounds end; ids whose record is gone are dropped.
for round = 1, 1000 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit - #out)
  if #due == 0 then break end
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[1], id)
    local rec = ARGV[3] .. 'rec:' .. id
    local f = redis.call('HMGET', rec, 'json', 'role', 'watcher', 'presentity', 'partner')
    if f[1] then
      unindex(ARGV[3], id, f[2], f[3], f[4], f[5])
      redis.call('DEL', rec)
      out[#out + 1] = f[1]
    else
      unindexRoles(ARGV[3], id)
    end
  end
  if #out >= limit then break end
end
return out
`;

/**
 * KEYS partner index; ARGV now. Its records: ids whose record Redis has expired (scored at or
 * before now, the hash's PEXPIREAT) are dropped first, so a flood at a partner's cap costs a
 * ZCARD per request, not a walk over what the partner holds.
 */
const COUNT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
`;

const SCAN_BATCH = 200;
/** Bounds one list(): 10 000 scan rounds. */
const SCAN_MAX_ROUNDS = 10_000;

export class RedisSubscriptionStore implements SubscriptionStore {
  /** Calls made before the first connection wait for it; once connected, an outage refuses at once. */
  private readonly gate: RedisGate<Redis & StoreCommands>;
  private readonly keyPrefix: string;
  private readonly ttlGraceMs: number;
  private readonly commandTimeoutMs: number;
  private closed = false;

  constructor(private readonly options: RedisSubscriptionStoreOptions) {
    this.keyPrefix = `${options.prefix}:`;
    this.ttlGraceMs = options.ttlGraceMs ?? 3_600_000;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 2_000;
    this.gate = new RedisGate(options.connection, {
      code: 'STATE_UNAVAILABLE',
      name: 'the subscription store (Redis)',
      commandTimeoutMs: this.commandTimeoutMs,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
    this.redis.defineCommand('subPut', { numberOfKeys: 5, lua: PUT });
    this.redis.defineCommand('subDelete', { numberOfKeys: 2, lua: DELETE });
    this.redis.defineCommand('subRead', { numberOfKeys: 1, lua: READ });
    this.redis.defineCommand('subTake', { numberOfKeys: 1, lua: TAKE });
    this.redis.defineCommand('subCount', { numberOfKeys: 1, lua: COUNT });
  }

  private get redis(): Redis & StoreCommands {
    return this.gate.redis;
  }

  private call<R>(what: string, work: () => Promise<R>): Promise<R> {
    return this.gate.call(what, work);
  }

  async put<D>(record: SubscriptionRecord<D>): Promise<void> {
    this.ensureOpen();
    const json = serialiseRecord(record);
    const now = Date.now();
    const stored = await this.call('put', () =>
      this.redis.subPut(
        this.key('rec:', record.id),
        this.key('expiry'),
        this.key('presentity:', record.presentity),
        this.key('watcher:', record.watcher),
        this.key('role:', record.role),
        record.id,
        json,
        record.role,
        record.watcher,
        record.presentity,
        String(record.expiresAt),
        String(this.options.maxRecords),
        String(Math.max(record.expiresAt, now) + this.ttlGraceMs),
        String(now),
        this.keyPrefix,
        record.partner ?? '',
      ),
    );
    if (stored === 0) {
      throw new BridgeError('STATE_FULL', `the subscription store holds ${this.options.maxRecords} records, its limit`, {
        condition: 'resource-constraint',
        // RFC 3261 §21.5.4: an overloaded server answers 503. Not retryable: the bound is
        // capacity, which waiting a moment does not free.
        sipStatus: 503,
        retryable: false,
      });
    }
  }

  async get<D>(id: string): Promise<SubscriptionRecord<D> | undefined> {
    this.ensureOpen();
    const json = await this.call('get', () => this.redis.hget(this.key('rec:', id), 'json'));
    return json === null ? undefined : (JSON.parse(json) as SubscriptionRecord<D>);
  }

  async delete(id: string): Promise<boolean> {
    this.ensureOpen();
    return (await this.call('delete', () => this.redis.subDelete(this.key('rec:', id), this.key('expiry'), id, this.keyPrefix))) === 1;
  }

  byPresentity<D>(presentity: string, role?: SubscriptionRole): Promise<SubscriptionRecord<D>[]> {
    return this.read<D>(this.key('presentity:', presentity), role);
  }

  byWatcher<D>(watcher: string, role?: SubscriptionRole): Promise<SubscriptionRecord<D>[]> {
    return this.read<D>(this.key('watcher:', watcher), role);
  }

  async list<D>(role: SubscriptionRole, limit: number): Promise<SubscriptionRecord<D>[]> {
    this.ensureOpen();
    const out = new Map<string, SubscriptionRecord<D>>();
    if (limit <= 0) return [];
    await this.call('list', async () => {
      let cursor = '0';
      for (let round = 0; round < SCAN_MAX_ROUNDS && out.size < limit; round++) {
        const [next, ids] = await this.redis.sscan(this.key('role:', role), cursor, 'COUNT', String(SCAN_BATCH));
        const fresh = ids.filter((id) => !out.has(id));
        if (fresh.length > 0) {
          const pipeline = this.redis.pipeline();
          for (const id of fresh) pipeline.hget(this.key('rec:', id), 'json');
          const replies = (await pipeline.exec()) ?? [];
          fresh.forEach((id, i) => {
            const json = replies[i]?.[1];
            // A record removed since the scan, or one Redis expired: skipped.
            if (typeof json === 'string' && out.size < limit) out.set(id, JSON.parse(json) as SubscriptionRecord<D>);
          });
        }
        cursor = next;
        if (cursor === '0') break;
      }
    });
    return [...out.values()];
  }

  async takeExpired<D>(now: number, limit: number): Promise<SubscriptionRecord<D>[]> {
    this.ensureOpen();
    if (limit <= 0) return [];
    const taken = await this.call('takeExpired', () => this.redis.subTake(this.key('expiry'), String(now), String(limit), this.keyPrefix));
    return taken.map((json) => JSON.parse(json) as SubscriptionRecord<D>);
  }

  async nextExpiry(): Promise<number | undefined> {
    this.ensureOpen();
    const first = await this.call('nextExpiry', () => this.redis.zrange(this.key('expiry'), '0', '0', 'WITHSCORES'));
    return first[1] === undefined ? undefined : Number(first[1]);
  }

  async size(): Promise<number> {
    this.ensureOpen();
    return this.call('size', () => this.redis.zcard(this.key('expiry')));
  }

  async countByPartner(partner: string): Promise<number> {
    this.ensureOpen();
    return this.call('countByPartner', () => this.redis.subCount(this.key('partner:', partner), String(Date.now())));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private async read<D>(index: string, role: SubscriptionRole | undefined): Promise<SubscriptionRecord<D>[]> {
    this.ensureOpen();
    const jsons = await this.call('read', () => this.redis.subRead(index, this.keyPrefix, role ?? ''));
    return jsons.map((json) => JSON.parse(json) as SubscriptionRecord<D>);
  }

  private key(kind: string, name = ''): string {
    return `${this.keyPrefix}${kind}${name}`;
  }

  private ensureOpen(): void {
    if (this.closed) {
      throw new BridgeError('STATE_CLOSED', 'the subscription store is closed', { condition: 'service-unavailable', retryable: true });
    }
  }

}

