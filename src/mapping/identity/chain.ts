/**
 * IdentityChain: the identity sources asked in the order the configuration gives (issue 3).
 * The first source that knows the number or address answers. A source that throws or misses
 * its deadline is skipped, logged and reported in health(), so a directory that is down
 * delays traffic by at most one deadline per lookup and never blocks it.
 *
 * Answers, and "nobody knows", are cached (bounded, least recently used evicted first). A miss
 * is cached only when every source answered: a miss caused by a source being down is not an
 * answer, and caching it would hide the person once the source is back.
 */
import { BridgeError } from '../../core/errors.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Identity, IdentitySource, LookupOptions } from '../identity-source.js';

export type IdentityQuery = { readonly kind: 'number'; readonly e164: string } | { readonly kind: 'sip'; readonly sip: string };

/** `skipped`: the source failed recently and is left alone until its retry time. */
export type AttemptOutcome = 'found' | 'not-found' | 'error' | 'timeout' | 'skipped';

export interface SourceAttempt {
  readonly source: string;
  readonly outcome: AttemptOutcome;
  /** Wall time the source took, in milliseconds. */
  readonly ms: number;
  readonly error?: string;
}

export interface LookupTrace {
  readonly query: IdentityQuery;
  readonly identity?: Identity;
  /** The source that answered (from the cache too); undefined when nobody knows the query. */
  readonly answeredBy?: string;
  readonly fromCache: boolean;
  /** One entry per source asked, in order; empty for a cache hit. */
  readonly attempts: readonly SourceAttempt[];
}

export interface SourceHealth {
  readonly source: string;
  /** False from a source's failure until its next answer. */
  readonly ok: boolean;
  readonly lastError?: string;
  /** Epoch milliseconds of the last failure. */
  readonly lastErrorAt?: number;
  /** Epoch milliseconds until which lookups skip the source (it is asked again after). */
  readonly skippedUntil?: number;
}

export interface IdentityCacheOptions {
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly maxEntries: number;
}

export interface IdentityChainOptions {
  readonly sources: readonly IdentitySource[];
  readonly logger: Logger;
  /** Longest one source may take before the chain asks the next (config `mapping.sourceTimeoutMs`). */
  readonly sourceTimeoutMs: number;
  /**
   * After a failure the source is skipped for this long, so a directory that hangs costs one
   * deadline per retry period rather than one per lookup (config `mapping.sourceRetryMs`; 0
   * asks it every time).
   */
  readonly sourceRetryMs?: number;
  readonly cache: IdentityCacheOptions;
  /** Clock for cache expiry and health timestamps. */
  readonly now?: () => number;
  /** Told of every source asked (not of cache hits or skips): metrics of lookup latency and errors. */
  readonly onAttempt?: (attempt: SourceAttempt) => void;
}

interface CacheEntry {
  readonly identity: Identity | undefined;
  readonly answeredBy: string | undefined;
  readonly expiresAt: number;
}

interface MutableHealth {
  ok: boolean;
  lastError?: string;
  lastErrorAt?: number;
  skippedUntil?: number;
}

class SourceTimeout extends Error {}

export class IdentityChain implements IdentitySource {
  readonly name = 'chain';
  private readonly now: () => number;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<LookupTrace>>();
  private readonly healthOf = new Map<IdentitySource, MutableHealth>();

  constructor(private readonly options: IdentityChainOptions) {
    this.now = options.now ?? Date.now;
    for (const source of options.sources) this.healthOf.set(source, { ok: true });
  }

  get sourceNames(): readonly string[] {
    return this.options.sources.map((s) => s.name);
  }

  /**
   * Starts every source. One that cannot reach its server is reported unhealthy and skipped
   * until it answers; one that rejects with a non-retryable BridgeError (a bad table file, a
   * configuration it cannot use) is a configuration fault and start() rejects with it.
   */
  async start(): Promise<void> {
    const faults: BridgeError[] = [];
    await Promise.all(
      this.options.sources.map(async (source) => {
        try {
          await source.start?.();
        } catch (err) {
          if (err instanceof BridgeError && !err.retryable) faults.push(err);
          else this.failed(source, err, 'identity source did not start; asking the next ones meanwhile');
        }
      }),
    );
    if (faults.length > 0) {
      await this.stop();
      throw faults[0];
    }
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.options.sources.map((s) => s.stop?.()));
  }

  /**
   * The person a number belongs to; undefined only when every source said it does not know it.
   * When none knew it but a source could not be asked, the answer is unknown, not "nobody":
   * rejects with a retryable BridgeError, so the sender hears "try later" rather than "no such
   * person" while a directory is down.
   */
  async byNumber(e164: string, options?: LookupOptions): Promise<Identity | undefined> {
    return definite(await this.lookup({ kind: 'number', e164 }, options));
  }

  async bySipAddress(sip: string, options?: LookupOptions): Promise<Identity | undefined> {
    return definite(await this.lookup({ kind: 'sip', sip }, options));
  }

  /** Resolves a query and says how: the `lookup` command's view of the chain. */
  async lookup(query: IdentityQuery, options: LookupOptions & { readonly bypassCache?: boolean } = {}): Promise<LookupTrace> {
    const key = query.kind === 'number' ? `n:${query.e164}` : `s:${query.sip}`;
    if (options.bypassCache !== true) {
      const cached = this.cached(key);
      if (cached !== undefined) {
        return { query, identity: cached.identity, answeredBy: cached.answeredBy, fromCache: true, attempts: [] };
      }
      // Concurrent lookups of one key share the sources' work.
      const pending = this.inFlight.get(key);
      if (pending !== undefined) return pending;
    }
    const work = this.ask(query, options.signal).then((trace) => {
      this.remember(key, trace);
      return trace;
    });
    this.inFlight.set(key, work);
    try {
      return await work;
    } finally {
      if (this.inFlight.get(key) === work) this.inFlight.delete(key);
    }
  }

  health(): readonly SourceHealth[] {
    return this.options.sources.map((source) => ({ source: source.name, ...(this.healthOf.get(source) ?? { ok: true }) }));
  }

  /** Forgets every cached answer, e.g. after a source's data was reloaded. */
  clearCache(): void {
    this.cache.clear();
  }

  private async ask(query: IdentityQuery, signal: AbortSignal | undefined): Promise<LookupTrace> {
    const attempts: SourceAttempt[] = [];
    const record = (attempt: SourceAttempt): void => {
      attempts.push(attempt);
      if (attempt.outcome !== 'skipped') this.options.onAttempt?.(attempt);
    };
    for (const source of this.options.sources) {
      if (signal?.aborted === true) break;
      const skippedUntil = this.healthOf.get(source)?.skippedUntil;
      if (skippedUntil !== undefined && this.now() < skippedUntil) {
        record({ source: source.name, outcome: 'skipped', ms: 0, error: `failed recently; asked again from ${new Date(skippedUntil).toISOString()}` });
        continue;
      }
      const started = performance.now();
      try {
        const identity = await this.askOne(source, query, signal);
        const ms = elapsed(started);
        this.answered(source);
        if (identity !== undefined) {
          record({ source: source.name, outcome: 'found', ms });
          return { query, identity, answeredBy: source.name, fromCache: false, attempts };
        }
        record({ source: source.name, outcome: 'not-found', ms });
      } catch (err) {
        const ms = elapsed(started);
        const timedOut = err instanceof SourceTimeout;
        const error = timedOut ? `no answer within ${this.options.sourceTimeoutMs} ms` : describe(err);
        record({ source: source.name, outcome: timedOut ? 'timeout' : 'error', ms, error });
        this.failed(source, timedOut ? new Error(error) : err, 'identity source failed; asking the next one', ms);
      }
    }
    return { query, fromCache: false, attempts };
  }

  /** One source's answer, or SourceTimeout once the deadline passes even if the source ignores its signal. */
  private askOne(source: IdentitySource, query: IdentityQuery, outer: AbortSignal | undefined): Promise<Identity | undefined> {
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort(outer?.reason);
    outer?.addEventListener('abort', onOuterAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const timeout = new SourceTimeout(`${source.name}: deadline passed`);
        controller.abort(timeout);
        reject(timeout);
      }, this.options.sourceTimeoutMs);
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true });
    });
    const options = { signal: controller.signal };
    let answer: Promise<Identity | undefined>;
    try {
      answer = query.kind === 'number' ? source.byNumber(query.e164, options) : source.bySipAddress(query.sip, options);
    } catch (err) {
      // A source that throws instead of rejecting is down all the same; the timer is still cleared below.
      answer = Promise.reject(err as Error);
    }
    // The deadline's rejection must never go unhandled once the answer has won the race.
    deadline.catch(() => undefined);
    return Promise.race([answer, deadline]).finally(() => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
    });
  }

  private cached(key: string): CacheEntry | undefined {
    const entry = this.cache.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.cache.delete(key);
      return undefined;
    }
    // Least recently used goes first: a hit moves the entry to the end of the Map's order.
    this.cache.delete(key);
    this.cache.set(key, entry);
    return entry;
  }

  private remember(key: string, trace: LookupTrace): void {
    const { ttlMs, negativeTtlMs, maxEntries } = this.options.cache;
    const everyoneAnswered = trace.attempts.length === this.options.sources.length && trace.attempts.every((a) => a.outcome === 'not-found');
    if (trace.identity === undefined && !everyoneAnswered) return;
    const ttl = trace.identity === undefined ? negativeTtlMs : ttlMs;
    if (ttl <= 0) return;
    this.cache.delete(key);
    this.cache.set(key, { identity: trace.identity, answeredBy: trace.answeredBy, expiresAt: this.now() + ttl });
    while (this.cache.size > maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
  }

  private answered(source: IdentitySource): void {
    const health = this.healthOf.get(source);
    if (health !== undefined && !health.ok) {
      health.ok = true;
      delete health.skippedUntil;
      this.options.logger.info({ source: source.name }, 'identity source answers again');
    }
  }

  private failed(source: IdentitySource, err: unknown, message: string, ms?: number): void {
    const health = this.healthOf.get(source);
    const error = describe(err);
    if (health !== undefined) {
      health.ok = false;
      health.lastError = error;
      health.lastErrorAt = this.now();
      const retryMs = this.options.sourceRetryMs ?? 0;
      if (retryMs > 0) health.skippedUntil = health.lastErrorAt + retryMs;
    }
    this.options.logger.warn({ source: source.name, error, ...(ms === undefined ? {} : { ms }) }, message);
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function definite(trace: LookupTrace): Identity | undefined {
  if (trace.identity !== undefined) return trace.identity;
  const unasked = trace.attempts.filter((a) => a.outcome !== 'not-found').map((a) => a.source);
  if (unasked.length === 0) return undefined;
  const what = trace.query.kind === 'number' ? trace.query.e164 : trace.query.sip;
  throw new BridgeError('IDENTITY_SOURCES_DOWN', `no identity source knows ${what}, and ${unasked.join(', ')} could not be asked`, {
    condition: 'remote-server-timeout',
    retryable: true,
  });
}
