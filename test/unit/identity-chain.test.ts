import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/core/errors.js';
import type { Identity, IdentitySource, LookupOptions } from '../../src/mapping/identity-source.js';
import { IdentityChain, type IdentityCacheOptions } from '../../src/mapping/identity/chain.js';
import { createLogger, silentLogger, type Logger } from '../../src/telemetry/logger.js';

const alice: Identity = { e164: '+15551234567', sip: 'sip:alice@corp.example', canonical: 'alice@corp.example' };

/** An in-process source: a table, a count of questions, and a switch to make it fail or hang. */
class TableSource implements IdentitySource {
  asked = 0;
  mode: 'answer' | 'throw' | 'hang' = 'answer';
  abortedSignals = 0;
  constructor(
    readonly name: string,
    private readonly rows: readonly Identity[] = [],
  ) {}
  byNumber(e164: string, options?: LookupOptions): Promise<Identity | undefined> {
    return this.answer((i) => i.e164 === e164, options);
  }
  bySipAddress(sip: string, options?: LookupOptions): Promise<Identity | undefined> {
    return this.answer((i) => i.sip === sip, options);
  }
  private answer(match: (i: Identity) => boolean, options?: LookupOptions): Promise<Identity | undefined> {
    this.asked++;
    if (this.mode === 'throw') return Promise.reject(new Error(`${this.name} is down`));
    if (this.mode === 'hang') {
      return new Promise((_, reject) => options?.signal?.addEventListener('abort', () => {
        this.abortedSignals++;
        reject(new Error('aborted'));
      }));
    }
    return Promise.resolve(this.rows.find(match));
  }
}

const cache: IdentityCacheOptions = { ttlMs: 60_000, negativeTtlMs: 5_000, maxEntries: 100 };

function chainOf(
  sources: IdentitySource[],
  extra: { now?: () => number; logger?: Logger; cache?: IdentityCacheOptions; sourceTimeoutMs?: number; sourceRetryMs?: number } = {},
) {
  return new IdentityChain({
    sources,
    logger: extra.logger ?? silentLogger(),
    sourceTimeoutMs: extra.sourceTimeoutMs ?? 1000,
    ...(extra.sourceRetryMs === undefined ? {} : { sourceRetryMs: extra.sourceRetryMs }),
    cache: extra.cache ?? cache,
    ...(extra.now ? { now: extra.now } : {}),
  });
}

function capturingLogger(): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  return { logger, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('IdentityChain order', () => {
  it('answers from the first source that knows the number', async () => {
    const first = new TableSource('static', [alice]);
    const second = new TableSource('ldap', [{ ...alice, sip: 'sip:other@corp.example' }]);
    const trace = await chainOf([first, second]).lookup({ kind: 'number', e164: alice.e164 as string });
    expect(trace.identity).toEqual(alice);
    expect(trace.answeredBy).toBe('static');
    expect(second.asked).toBe(0);
  });

  it('asks the next source when the first does not know the address', async () => {
    const trace = await chainOf([new TableSource('static'), new TableSource('ldap', [alice])]).lookup({ kind: 'sip', sip: 'sip:alice@corp.example' });
    expect(trace.answeredBy).toBe('ldap');
    expect(trace.attempts.map((a) => [a.source, a.outcome])).toEqual([
      ['static', 'not-found'],
      ['ldap', 'found'],
    ]);
  });

  it('answers undefined when no source knows the number', async () => {
    const chain = chainOf([new TableSource('static'), new TableSource('ldap')]);
    expect(await chain.byNumber('+15550000000')).toBeUndefined();
  });
});

describe('IdentityChain degradation', () => {
  it('skips a source that throws and reports it in health', async () => {
    const down = new TableSource('ldap');
    down.mode = 'throw';
    const chain = chainOf([down, new TableSource('enum', [alice])], { now: () => 1234 });
    const trace = await chain.lookup({ kind: 'number', e164: alice.e164 as string });
    expect(trace.answeredBy).toBe('enum');
    expect(trace.attempts[0]).toMatchObject({ source: 'ldap', outcome: 'error', error: 'ldap is down' });
    expect(chain.health()).toEqual([
      { source: 'ldap', ok: false, lastError: 'ldap is down', lastErrorAt: 1234 },
      { source: 'enum', ok: true },
    ]);
  });

  it('skips a source that throws synchronously instead of rejecting', async () => {
    const broken: IdentitySource = {
      name: 'ldap',
      byNumber: () => {
        throw new Error('not connected');
      },
      bySipAddress: () => Promise.resolve(undefined),
    };
    const trace = await chainOf([broken, new TableSource('static', [alice])]).lookup({ kind: 'number', e164: alice.e164 as string });
    expect(trace.answeredBy).toBe('static');
    expect(trace.attempts[0]).toMatchObject({ outcome: 'error', error: 'not connected' });
  });

  it('skips a failed source until its retry time, then asks it again', async () => {
    let now = 10_000;
    const down = new TableSource('ldap', [alice]);
    down.mode = 'throw';
    const chain = chainOf([down, new TableSource('static')], { now: () => now, sourceRetryMs: 5000 });
    await chain.lookup({ kind: 'number', e164: '+15550000001' });
    const skipped = await chain.lookup({ kind: 'number', e164: '+15550000002' });
    expect(skipped.attempts[0]).toMatchObject({ source: 'ldap', outcome: 'skipped' });
    expect(chain.health()[0]).toMatchObject({ ok: false, skippedUntil: 15_000 });
    expect(down.asked).toBe(1);
    now = 15_000;
    down.mode = 'answer';
    expect(await chain.byNumber(alice.e164 as string)).toEqual(alice);
    expect(chain.health()[0]).toEqual({ source: 'ldap', ok: true, lastError: 'ldap is down', lastErrorAt: 10_000 });
  });

  it('logs the failing source by name', async () => {
    const down = new TableSource('ldap');
    down.mode = 'throw';
    const { logger, lines } = capturingLogger();
    await chainOf([down], { logger }).lookup({ kind: 'number', e164: '+15551234567' });
    expect(lines()).toContainEqual(expect.objectContaining({ level: 40, source: 'ldap', error: 'ldap is down' }));
  });

  it('gives up on a source past its deadline, aborts its signal and asks the next', async () => {
    const slow = new TableSource('ldap');
    slow.mode = 'hang';
    const chain = chainOf([slow, new TableSource('static', [alice])], { sourceTimeoutMs: 20 });
    const trace = await chain.lookup({ kind: 'number', e164: alice.e164 as string });
    expect(trace.answeredBy).toBe('static');
    expect(trace.attempts[0]).toMatchObject({ source: 'ldap', outcome: 'timeout', error: 'no answer within 20 ms' });
    expect(slow.abortedSignals).toBe(1);
    expect(chain.health()[0]).toMatchObject({ source: 'ldap', ok: false });
  });

  it('reports a source healthy again once it answers', async () => {
    const flaky = new TableSource('ldap', [alice]);
    flaky.mode = 'throw';
    const chain = chainOf([flaky], { cache: { ...cache, ttlMs: 0, negativeTtlMs: 0 } });
    await chain.lookup({ kind: 'number', e164: alice.e164 as string });
    flaky.mode = 'answer';
    await chain.byNumber(alice.e164 as string);
    expect(chain.health()[0]).toMatchObject({ ok: true, lastError: 'ldap is down' });
  });

  it('reports a source that cannot start and keeps the others', async () => {
    const broken: IdentitySource = { name: 'ldap', start: () => Promise.reject(new Error('connection refused')), byNumber: () => Promise.resolve(undefined), bySipAddress: () => Promise.resolve(undefined) };
    const chain = chainOf([broken, new TableSource('static', [alice])]);
    await chain.start();
    expect(chain.health()[0]).toMatchObject({ source: 'ldap', ok: false, lastError: 'connection refused' });
    expect(await chain.byNumber(alice.e164 as string)).toEqual(alice);
  });
});

describe('IdentityChain cache', () => {
  it('answers a repeated lookup from the cache without asking the sources', async () => {
    const source = new TableSource('static', [alice]);
    const chain = chainOf([source]);
    await chain.byNumber(alice.e164 as string);
    const trace = await chain.lookup({ kind: 'number', e164: alice.e164 as string });
    expect(trace).toMatchObject({ fromCache: true, answeredBy: 'static', identity: alice, attempts: [] });
    expect(source.asked).toBe(1);
  });

  it('asks again once the TTL has passed', async () => {
    let now = 0;
    const source = new TableSource('static', [alice]);
    const chain = chainOf([source], { now: () => now });
    await chain.byNumber(alice.e164 as string);
    now = cache.ttlMs;
    await chain.byNumber(alice.e164 as string);
    expect(source.asked).toBe(2);
  });

  it('remembers a miss for the negative TTL only', async () => {
    let now = 0;
    const source = new TableSource('static');
    const chain = chainOf([source], { now: () => now });
    await chain.byNumber('+15550000000');
    now = cache.negativeTtlMs - 1;
    await chain.byNumber('+15550000000');
    expect(source.asked).toBe(1);
    now = cache.negativeTtlMs;
    await chain.byNumber('+15550000000');
    expect(source.asked).toBe(2);
  });

  it('does not remember a miss while a source is down, and calls it unknown rather than nobody', async () => {
    const down = new TableSource('ldap', [alice]);
    down.mode = 'throw';
    const chain = chainOf([down]);
    await expect(chain.byNumber(alice.e164 as string)).rejects.toMatchObject({ code: 'IDENTITY_SOURCES_DOWN', retryable: true });
    down.mode = 'answer';
    expect(await chain.byNumber(alice.e164 as string)).toEqual(alice);
  });

  it('holds at most maxEntries, evicting the least recently used', async () => {
    const rows = ['+15550000001', '+15550000002', '+15550000003'].map((e164) => ({ e164, sip: `sip:${e164}@x` }));
    const source = new TableSource('static', rows);
    const chain = chainOf([source], { cache: { ...cache, maxEntries: 2 } });
    await chain.byNumber('+15550000001');
    await chain.byNumber('+15550000002');
    await chain.byNumber('+15550000001');
    await chain.byNumber('+15550000003');
    source.asked = 0;
    await chain.byNumber('+15550000001');
    expect(source.asked).toBe(0);
    await chain.byNumber('+15550000002');
    expect(source.asked).toBe(1);
  });

  it('shares one question among concurrent lookups of the same number', async () => {
    const source = new TableSource('static', [alice]);
    const chain = chainOf([source]);
    const answers = await Promise.all(Array.from({ length: 10 }, () => chain.byNumber(alice.e164 as string)));
    expect(answers).toEqual(Array.from({ length: 10 }, () => alice));
    expect(source.asked).toBe(1);
  });

  it('asks the sources when the cache is bypassed', async () => {
    const source = new TableSource('static', [alice]);
    const chain = chainOf([source]);
    await chain.byNumber(alice.e164 as string);
    const trace = await chain.lookup({ kind: 'number', e164: alice.e164 as string }, { bypassCache: true });
    expect(trace.fromCache).toBe(false);
    expect(source.asked).toBe(2);
  });
});

describe('IdentityChain start', () => {
  it('refuses to start when a source has a configuration fault', async () => {
    const bad: IdentitySource = {
      name: 'static',
      start: () => Promise.reject(new BridgeError('IDENTITY_INVALID', 'people.csv:3: e164: bad', { condition: 'internal-server-error' })),
      byNumber: () => Promise.resolve(undefined),
      bySipAddress: () => Promise.resolve(undefined),
    };
    await expect(chainOf([bad]).start()).rejects.toThrow(/people\.csv:3/);
  });
});
