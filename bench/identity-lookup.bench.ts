/**
 * Identity lookups per second (issue 3): the chain over a static table of 10 000 people read
 * from a CSV file, as the router uses it for every message to `+number@<component>`.
 *
 *   npx tsx bench/identity-lookup.bench.ts
 *
 * Phases, each timed in rounds after one warm-up round, best and median round printed with
 * the load average before and after (a shared machine shows its spread):
 * - warm: every number already in the chain's cache (the steady state);
 * - uncached: cache TTL 0, so every lookup asks the static source through the chain's
 *   deadline machinery (AbortController + timer per source);
 * - normalise: normalizeE164 of a `+` form and of a national spelling (the router normalises
 *   every number it is asked to reach);
 * - router path: E164Normalizer (memoised, as the router has it) then a warm lookup.
 * Lookups are awaited one at a time (latency-bound, one conversation); figures are per second
 * of wall time on one core. LDAP cold is in the LDAP source's own bench.
 * Bounded in time: about 1 s per round, 5 rounds per phase.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { E164Normalizer, normalizeE164 } from '../src/mapping/e164.js';
import { IdentityChain } from '../src/mapping/identity/chain.js';
import { StaticSource } from '../src/mapping/identity/static.js';
import { silentLogger } from '../src/telemetry/logger.js';

const PEOPLE = 10_000;
const ROUNDS = 5;
const ROUND_MS = 1000;
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

const numberOf = (i: number): string => `+1555${String(10_000_000 + i).slice(1)}`;
const nationalOf = (i: number): string => {
  const n = numberOf(i).slice(2);
  return `(${n.slice(0, 3)}) ${n.slice(3, 6)}-${n.slice(6)}`;
};

async function staticSource(): Promise<StaticSource> {
  const dir = await mkdtemp(join(tmpdir(), 'identity-bench-'));
  const file = join(dir, 'people.csv');
  const rows = Array.from({ length: PEOPLE }, (_, i) => `${numberOf(i)},sip:user${i}@corp.example`);
  await writeFile(file, `e164,sip\n${rows.join('\n')}\n`);
  const source = new StaticSource({ file, logger: silentLogger() });
  await source.start();
  return source;
}

function chainOver(source: StaticSource, ttlMs: number): IdentityChain {
  return new IdentityChain({
    sources: [source],
    logger: silentLogger(),
    sourceTimeoutMs: 1000,
    cache: { ttlMs, negativeTtlMs: ttlMs, maxEntries: PEOPLE * 2 },
  });
}

/** Runs `op(i)` for ROUND_MS per round; returns operations per second of each round. */
async function rounds(op: (i: number) => Promise<unknown> | unknown): Promise<number[]> {
  const perSecond: number[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    let count = 0;
    const start = performance.now();
    const until = start + ROUND_MS;
    // Check the clock every 256 operations; bounded by time and by a hard count.
    for (let guard = 0; guard < 50_000_000; guard += 256) {
      for (let k = 0; k < 256; k++) await op(count++);
      if (performance.now() >= until) break;
    }
    const seconds = (performance.now() - start) / 1000;
    if (round > 0) perSecond.push(count / seconds);
  }
  return perSecond;
}

function report(name: string, perSecond: number[]): void {
  const sorted = [...perSecond].sort((a, b) => b - a);
  const best = sorted[0] ?? 0;
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(12);
  process.stdout.write(`${name.padEnd(34)} best ${fmt(best)}/s   median ${fmt(median)}/s   (${(1e6 / median).toFixed(2)} µs each)\n`);
}

async function main(): Promise<void> {
  process.stdout.write(`identity lookups, ${PEOPLE} people in a static CSV source, ${ROUNDS} rounds of ${ROUND_MS} ms; load ${load()}\n`);
  const source = await staticSource();

  const warm = chainOver(source, 3_600_000);
  for (let i = 0; i < PEOPLE; i++) await warm.byNumber(numberOf(i));
  report('warm cache (chain.byNumber)', await rounds((i) => warm.byNumber(numberOf(i % PEOPLE))));

  const uncached = chainOver(source, 0);
  report('uncached (chain → static source)', await rounds((i) => uncached.byNumber(numberOf(i % PEOPLE))));

  report('normalizeE164 + form', await rounds((i) => normalizeE164(numberOf(i % PEOPLE))));

  report('normalizeE164 national (US)', await rounds((i) => normalizeE164(nationalOf(i % PEOPLE), { defaultRegion: 'US' })));

  const numbers = new E164Normalizer({ defaultRegion: 'US' });
  report('router path: memo + warm', await rounds((i) => warm.byNumber(numbers.normalize(nationalOf(i % PEOPLE)).e164)));

  const missing = await warm.byNumber(numberOf(PEOPLE + 1));
  process.stdout.write(`check: unknown number → ${String(missing)}; known → ${(await warm.byNumber(numberOf(42)))?.sip ?? 'MISSING'}; load ${load()}\n`);
}

await main();
