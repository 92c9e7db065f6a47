/**
 * Queue backend on Redis with BullMQ, for several processes sharing one Redis (issue 5).
 * Open-source BullMQ has no per-key ordering (groups are BullMQ Pro), so ordering is ours
 * (docs/decisions/0004-bullmq-ordering.md): every job lives in a Redis list per ordering key
 * (a lane), and only the job at the head of a lane has a BullMQ job, its "token", whose id is
 * derived from the job's id. Taking the head off a lane (one Lua script) and adding the next
 * head's token happen in the handler's worker before BullMQ completes the token, so a lane
 * moves one job at a time, across any number of workers; a lane that lost its token (a crash
 * between the two steps) gets one back from the next enqueue on it or from the periodic sweep.
 *
 * BullMQ brings what is hard to get right: blocking fetches, locks that expire when a worker
 * dies (the token is handed to another worker: at-least-once), delayed retries, concurrency.
 * Attempts are counted in the lane's job record, not by BullMQ, so they survive a lost token.
 */
import { createHash } from 'node:crypto';
import { DelayedError, Queue as BullQueue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../telemetry/logger.js';
import { BridgeError } from '../errors.js';
import { newEventId } from '../ids.js';
import { openRedis, RedisGate, type RedisConnection } from '../state/redis-connection.js';
import {
  isUnrecoverable,
  retryDelay,
  type Consumer,
  type ConsumerOptions,
  type EnqueueOptions,
  type JobHandler,
  type Queue,
  type QueueCounts,
  type QueueJob,
  type RetryPolicy,
} from './queue.js';

/** `{ host, port }` (and the other ioredis options) or a `redis://` / `rediss://` URL. */
export type { RedisConnection };

export interface BullMQQueueOptions extends RetryPolicy {
  connection: RedisConnection;
  /** Key prefix: BullMQ keys are `<prefix>:<queue>:…`, the lanes `<prefix>-lanes:<queue>:…`. */
  prefix: string;
  /** Jobs held per queue, at most; past it enqueue is refused. */
  maxPending: number;
  /** How long enqueue and counts wait for Redis before answering "unavailable". Default 2000. */
  commandTimeoutMs?: number;
  /**
   * How often a consumer gives lanes that lost their token a new one (a crash between a job's
   * arrival and its token, Redis gone in between). Default 5 000: that is how late such a job
   * can be, so it is short; one SSCAN pass over the lanes costs little.
   */
  repairIntervalMs?: number;
  /**
   * How long a job stays with a worker that stopped renewing its lock (it died) before another
   * worker takes it; also how often workers look for such jobs. BullMQ's default 30 000.
   */
  lockDurationMs?: number;
  logger?: Logger;
}

export interface QueueStats extends QueueCounts {
  /** Age of the oldest job held, undefined when none is. */
  readonly oldestAgeMs: number | undefined;
}

interface TokenData {
  readonly id: string;
}

/** The lane scripts, as ioredis commands (see defineCommand below). */
interface LaneCommands {
  laneEnqueue(pending: string, lanes: string, lane: string, job: string, ...args: string[]): Promise<[number, string]>;
  laneBegin(job: string, active: string, ...args: string[]): Promise<[number, string | number, string?, string?]>;
  laneAck(job: string, pending: string, active: string, lanes: string, ...args: string[]): Promise<string>;
}

/**
 * KEYS pending, lanes, lane, job; ARGV id, laneName, data, orderingKey (JSON), now, maxPending.
 * Returns {0, head} for an id already held, {-1, held} when full, {1, head} once held.
 */
const ENQUEUE = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {0, redis.call('LINDEX', KEYS[3], 0) or ''} end
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[6]) then return {-1, tostring(held)} end
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
redis.call('HSET', KEYS[4], 'data', ARGV[3], 'lane', ARGV[2], 'key', ARGV[4], 'attempt', 0)
if redis.call('RPUSH', KEYS[3], ARGV[1]) == 1 then redis.call('SADD', KEYS[2], ARGV[2]) end
return {1, redis.call('LINDEX', KEYS[3], 0)}
`;

/**
 * KEYS job, active; ARGV id, lanePrefix, now. Starts the job if it heads its lane:
 * {1, attempt, data, orderingKey}; otherwise {0, head of its lane or ''} (a stale token).
 */
const BEGIN = `
local lane = redis.call('HGET', KEYS[1], 'lane')
if not lane then return {0, ''} end
local head = redis.call('LINDEX', ARGV[2] .. lane, 0)
if head ~= ARGV[1] then return {0, head or ''} end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'data', 'key')
return {1, attempt, f[1], f[2]}
`;

/** KEYS job, pending, active, lanes; ARGV id, lanePrefix. Removes the job; returns the lane's next head or ''. */
const ACK = `
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local lane = redis.call('HGET', KEYS[1], 'lane')
if not lane then return '' end
redis.call('DEL', KEYS[1])
local key = ARGV[2] .. lane
if redis.call('LINDEX', key, 0) == ARGV[1] then redis.call('LPOP', key) end
local head = redis.call('LINDEX', key, 0)
if head then return head end
redis.call('SREM', KEYS[4], lane)
return ''
`;

const QUEUE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const SWEEP_BATCH = 100;
/** Bounds one sweep: 10 000 batches of 100 lanes. */
const SWEEP_MAX_BATCHES = 10_000;
/** How long a closing consumer lets BullMQ finish its bookkeeping before closing anyway. */
const CLOSE_GRACE_MS = 5_000;

export class BullMQQueue implements Queue {
  /** Calls made before the first connection wait for it; once connected, an outage refuses at once. */
  private readonly gate: RedisGate<Redis & LaneCommands>;
  private readonly bullQueues = new Map<string, BullQueue<TokenData>>();
  private readonly consumers = new Map<string, BullMQConsumer>();
  private readonly commandTimeoutMs: number;
  private closed = false;

  constructor(private readonly options: BullMQQueueOptions) {
    this.commandTimeoutMs = options.commandTimeoutMs ?? 2_000;
    // No offline queue and no resend after a reconnect: a command either reaches Redis now or
    // fails now, so an enqueue answered "unavailable" is not carried out behind the sender's back.
    this.gate = new RedisGate(options.connection, {
      code: 'QUEUE_UNAVAILABLE',
      name: 'the queue store (Redis)',
      commandTimeoutMs: this.commandTimeoutMs,
      downMessage: 'queue store (Redis) unreachable: enqueue refused until it is back',
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
    this.redis.defineCommand('laneEnqueue', { numberOfKeys: 4, lua: ENQUEUE });
    this.redis.defineCommand('laneBegin', { numberOfKeys: 2, lua: BEGIN });
    this.redis.defineCommand('laneAck', { numberOfKeys: 4, lua: ACK });
  }

  private get redis(): Redis & LaneCommands {
    return this.gate.redis;
  }

  private withRedis<R>(what: string, work: () => Promise<R>): Promise<R> {
    return this.gate.call(what, work);
  }

  async enqueue<T>(queue: string, data: T, options: EnqueueOptions = {}): Promise<string> {
    if (this.closed) throw new BridgeError('QUEUE_CLOSED', 'the queue is closed', { condition: 'service-unavailable', retryable: true });
    const keys = this.keys(queue);
    const id = options.jobId ?? newEventId();
    const json = encode(queue, data);
    const lane = options.orderingKey === undefined ? `j:${id}` : `k:${options.orderingKey}`;
    const [status, value] = await this.withRedis(`enqueue on ${queue}`, async () => {
      const answer = await this.redis.laneEnqueue(
        keys.pending,
        keys.lanes,
        keys.lane(lane),
        keys.job(id),
        id,
        lane,
        json,
        JSON.stringify(options.orderingKey ?? null),
        String(Date.now()),
        String(this.options.maxPending),
      );
      return answer;
    });
    // Give the lane's head its token even when it is not this job: a lane whose token was
    // lost between these two steps (a crash) moves again with the next job on it. The job is
    // held once laneEnqueue answered, so a token that cannot be added now is not a refusal
    // (the sender would be told "try later" for a message that will arrive): the next job on
    // the lane or the periodic sweep adds it.
    if (status !== -1 && value !== '') {
      await this.withRedis(`lane token on ${queue}`, () => this.addToken(queue, String(value))).catch((err: unknown) =>
        this.options.logger?.warn({ err, queue, job: id }, 'lane token not added; the sweep or the next job on the lane adds it'),
      );
    }
    if (status === -1) {
      throw new BridgeError('QUEUE_FULL', `queue ${queue} holds ${value} jobs, its limit`, {
        condition: 'resource-constraint',
        // An overloaded SIP server answers 503 (RFC 3261 §21.5.4), not RFC 7247's 500.
        sipStatus: 503,
        retryable: true,
      });
    }
    return id;
  }

  consume<T>(queue: string, handler: JobHandler<T>, options: ConsumerOptions<T> = {}): Consumer {
    if (this.closed) throw new BridgeError('QUEUE_CLOSED', 'the queue is closed', { condition: 'service-unavailable', retryable: true });
    const keys = this.keys(queue);
    if (this.consumers.has(queue)) throw new Error(`queue ${queue} already has a consumer`);
    const consumer = new BullMQConsumer(
      queue,
      keys,
      this.redis,
      this.options,
      handler as JobHandler<unknown>,
      options as ConsumerOptions<unknown>,
      (id) => this.addToken(queue, id),
      () => this.sweep(queue),
      () => this.consumers.delete(queue),
    );
    this.consumers.set(queue, consumer);
    return consumer;
  }

  async counts(queue: string): Promise<QueueCounts> {
    const { pending, active } = await this.stats(queue);
    return { pending, active };
  }

  /** counts() and the age of the oldest job held, for metrics (queue depth and age). */
  async stats(queue: string): Promise<QueueStats> {
    const keys = this.keys(queue);
    const [pending, active, oldest] = await this.withRedis(`counts of ${queue}`, async () => {
      const replies = await this.redis.multi().zcard(keys.pending).zcard(keys.active).zrange(keys.pending, '0', '0', 'WITHSCORES').exec();
      if (!replies) throw new Error('transaction aborted');
      for (const [err] of replies) if (err) throw err;
      return replies.map(([, value]) => value) as [number, number, string[]];
    });
    return { pending, active, oldestAgeMs: oldest[1] === undefined ? undefined : Math.max(0, Date.now() - Number(oldest[1])) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.consumers.values()].map((c) => c.close()));
    await Promise.all([...this.bullQueues.values()].map((q) => q.close()));
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private keys(queue: string): LaneKeys {
    if (!QUEUE_NAME.test(queue)) throw new Error(`queue name ${JSON.stringify(queue)} must match ${QUEUE_NAME}`);
    return laneKeys(this.options.prefix, queue);
  }

  private bullQueue(queue: string): BullQueue<TokenData> {
    let q = this.bullQueues.get(queue);
    if (!q) {
      q = new BullQueue<TokenData>(queue, { connection: this.redis, prefix: this.options.prefix });
      q.on('error', () => {
        // Reported once by the shared connection's listener above.
      });
      this.bullQueues.set(queue, q);
    }
    return q;
  }

  /** Adds the token of the lane head `id`; a no-op while that token exists (BullMQ job ids). */
  private async addToken(queue: string, id: string): Promise<void> {
    await this.bullQueue(queue).add('lane-head', { id }, tokenOptions(id));
  }

  /** Gives every lane's head a token (no-op for those that have one), in bounded batches. */
  private async sweep(queue: string): Promise<void> {
    const keys = this.keys(queue);
    await this.gate.ready();
    let cursor = '0';
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
      const [next, lanes] = await this.redis.sscan(keys.lanes, cursor, 'COUNT', String(SWEEP_BATCH));
      if (lanes.length > 0) {
        const pipeline = this.redis.pipeline();
        for (const lane of lanes) pipeline.lindex(keys.lane(lane), 0);
        const heads = ((await pipeline.exec()) ?? []).map(([, head]) => head).filter((head): head is string => typeof head === 'string');
        if (heads.length > 0) {
          await this.bullQueue(queue).addBulk(heads.map((id) => ({ name: 'lane-head', data: { id }, opts: tokenOptions(id) })));
        }
      }
      cursor = next;
      if (cursor === '0') return;
    }
  }

}

interface LaneKeys {
  readonly pending: string;
  readonly active: string;
  readonly lanes: string;
  /** Prefix of every lane list, for the scripts that find a job's lane from its record. */
  readonly lanePrefix: string;
  lane(name: string): string;
  job(id: string): string;
}

/**
 * The lanes' keys, beside BullMQ's `<prefix>:<queue>:…` and never inside it:
 * pending (zset id → enqueued at), active (zset id → started at), lanes (set of non-empty lane
 * names), lane:<name> (list of ids, head first), job:<id> (hash: data, lane, key, attempt).
 */
function laneKeys(prefix: string, queue: string): LaneKeys {
  const base = `${prefix}-lanes:${queue}`;
  return {
    pending: `${base}:pending`,
    active: `${base}:active`,
    lanes: `${base}:lanes`,
    lanePrefix: `${base}:lane:`,
    lane: (name) => `${base}:lane:${name}`,
    job: (id) => `${base}:job:${id}`,
  };
}

/** BullMQ job ids may not contain ':' nor look like integers: a token's id is a digest. */
function tokenId(id: string): string {
  return `h${createHash('sha256').update(id).digest('base64url')}`;
}

function tokenOptions(id: string) {
  // Failures BullMQ sees are Redis trouble in the worker (handler failures are retried by the
  // consumer itself): retry those a few times; a token lost for good is restored by the sweep.
  return { jobId: tokenId(id), removeOnComplete: true, removeOnFail: true, attempts: 5, backoff: { type: 'exponential', delay: 500 } };
}

function encode(queue: string, data: unknown): string {
  try {
    const json = JSON.stringify(data ?? null);
    if (json === undefined) throw new Error('not JSON data');
    return json;
  } catch (err) {
    throw new BridgeError('QUEUE_INVALID_JOB', `a job for ${queue} is not JSON-serialisable`, { condition: 'internal-server-error', retryable: false, cause: err });
  }
}

/** Reconnection every 50, 100 … ms up to 500 ms, so intake resumes soon after Redis is back. */


class BullMQConsumer implements Consumer {
  private readonly worker: Worker<TokenData>;
  private readonly workerRedis: Redis;
  private readonly repairTimer: NodeJS.Timeout;
  private readonly inFlight = new Set<Promise<void>>();
  private paused = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly name: string,
    private readonly keys: LaneKeys,
    private readonly redis: Redis & LaneCommands,
    private readonly policy: BullMQQueueOptions,
    private readonly handler: JobHandler<unknown>,
    private readonly options: ConsumerOptions<unknown>,
    private readonly addToken: (id: string) => Promise<void>,
    sweep: () => Promise<void>,
    private readonly detach: () => void,
  ) {
    // BullMQ wants a connection that retries forever for its blocking fetches.
    this.workerRedis = openRedis(policy.connection, { maxRetriesPerRequest: null });
    this.workerRedis.on('error', () => {
      // Reported by the queue's own connection.
    });
    this.worker = new Worker<TokenData>(name, (job, lock) => this.process(job, lock), {
      connection: this.workerRedis,
      prefix: policy.prefix,
      concurrency: Math.max(1, options.concurrency ?? 1),
      // A token handed on after its worker died is counted by the job's own attempts, which
      // end in the dead-letter path; BullMQ's own stall limit would drop the token instead.
      maxStalledCount: Math.max(1, policy.maxAttempts),
      ...(policy.lockDurationMs === undefined ? {} : { lockDuration: policy.lockDurationMs, stalledInterval: policy.lockDurationMs }),
    });
    // Once per outage, not once per reconnection attempt.
    let down = false;
    this.workerRedis.on('ready', () => (down = false));
    this.worker.on('error', (err) => {
      if (!down) policy.logger?.warn({ queue: name, err: err.message }, 'queue worker lost Redis');
      down = true;
    });
    // Handler failures never reach BullMQ (they are retried or dead-lettered above): a failed
    // token is Redis trouble while handling, retried by BullMQ, its lane restored by the sweep.
    this.worker.on('failed', (token, err) =>
      policy.logger?.warn({ queue: name, job: token?.data.id, err: err.message }, 'queue token failed'),
    );
    const repair = () =>
      void sweep().catch((err: unknown) => policy.logger?.warn({ queue: name, err: (err as Error).message }, 'lane sweep failed'));
    repair();
    this.repairTimer = setInterval(repair, policy.repairIntervalMs ?? 5_000);
    this.repairTimer.unref();
  }

  pause(): void {
    this.paused = true;
    void this.worker.pause(true);
  }

  resume(): void {
    if (this.closing) return;
    this.paused = false;
    void this.worker.resume();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.paused = true;
      clearInterval(this.repairTimer);
      await Promise.allSettled([...this.inFlight]);
      // Let BullMQ finish its bookkeeping (complete the tokens handled, hand back one fetched
      // but not started) while Redis is there; BullMQ's own graceful close would wait for a
      // Redis that went away forever, so the close itself is forced.
      if (this.workerRedis.status === 'ready') {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([this.worker.pause(), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
        clearTimeout(timer);
      }
      await this.worker.close(true);
      this.workerRedis.disconnect();
      this.detach();
    })();
    return this.closing;
  }

  private process(token: Job<TokenData>, lock: string | undefined): Promise<void> {
    const run = this.run(token, lock);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return run;
  }

  private async run(token: Job<TokenData>, lock: string | undefined): Promise<void> {
    const { id } = token.data;
    if (this.paused) {
      // Fetched just before pause(): hand it back untouched.
      await token.moveToDelayed(Date.now(), lock);
      throw new DelayedError();
    }
    const begun = await this.redis.laneBegin(this.keys.job(id), this.keys.active, id, this.keys.lanePrefix, String(Date.now()));
    if (begun[0] === 0) {
      // A stale token (its job is gone or not at the head): make sure the real head has one.
      if (begun[1] !== '') await this.addToken(String(begun[1]));
      return;
    }
    const [, attempt, data, key] = begun;
    const orderingKey = JSON.parse(key ?? 'null') as string | null;
    const job: QueueJob<unknown> = {
      id,
      queue: this.name,
      data: JSON.parse(data ?? 'null') as unknown,
      attempt: Number(attempt),
      ...(orderingKey === null ? {} : { orderingKey }),
    };
    if (job.attempt > this.policy.maxAttempts) {
      // Started maxAttempts times and never settled: each time its worker died.
      const lost = new BridgeError('QUEUE_WORKER_LOST', `job ${id} was started ${job.attempt - 1} times and its worker was lost each time`, {
        condition: 'internal-server-error',
        retryable: false,
      });
      await this.deadLetter(job, lost);
      return;
    }
    let failure: { error: unknown } | undefined;
    try {
      await this.handler(job);
    } catch (error) {
      failure = { error };
    }
    if (!failure) return this.ack(id);
    if (isUnrecoverable(failure.error) || job.attempt >= this.policy.maxAttempts) return this.deadLetter(job, failure.error);
    // Retry: the job stays at its lane's head, so the lane waits and other lanes go on.
    await this.redis.zrem(this.keys.active, id);
    await token.moveToDelayed(Date.now() + retryDelay(this.policy, job.attempt), lock);
    throw new DelayedError();
  }

  private async deadLetter(job: QueueJob<unknown>, error: unknown): Promise<void> {
    try {
      await this.options.onDeadLetter?.(job, error);
    } catch {
      // The dead-letter handler owns reporting (the bridge logs and turns it into a failure
      // event); its own fault must not wedge the lane.
    }
    await this.ack(job.id);
  }

  private async ack(id: string): Promise<void> {
    const { keys } = this;
    const head = await this.redis.laneAck(keys.job(id), keys.pending, keys.active, keys.lanes, id, keys.lanePrefix);
    if (head !== '') await this.addToken(head);
  }
}
