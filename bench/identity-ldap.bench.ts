/**
 * Lookups per second of the LDAP / AD identity source against a private OpenLDAP on loopback,
 * cold: no identity cache in front, every lookup is a search on the directory (the chain's
 * cache is what makes warm lookups cheap; this is what a miss costs).
 *
 *   npx tsx bench/identity-ldap.bench.ts
 *
 * Phases: the first lookup of a fresh source (connect + bind + search), then closed-loop load
 * with N lookups in flight, alternating byNumber (default filter: exact and AD-spelling
 * substring assertions) and bySipAddress, for pool sizes 1 and 4; each phase in rounds, every
 * round printed with its p50/p99 latency, the median round summarised. slapd runs on the same
 * machine (2 cores here), so the figures include its CPU time competing with ours; "µs CPU/lookup
 * here" is this process's share alone (ldapts, filters, number normalisation).
 * Bounded in time: each round stops after its budget (about 35 s in all).
 */
import { cpus, loadavg } from 'node:os';
import { LdapSource, type LdapSourceConfig } from '../src/mapping/identity/ldap.js';
import { silentLogger } from '../src/telemetry/logger.js';
import { startSlapd, type Slapd } from '../test/support/slapd.js';

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Round {
  lookups: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** This process's CPU time per lookup (ldapts, filters, normalising): the bridge's share. */
  cpuUsPerLookup: number;
}

function sourceFor(slapd: Slapd, overrides: Partial<LdapSourceConfig>): LdapSource {
  return new LdapSource(
    {
      url: slapd.url,
      bindDN: slapd.bindDN,
      bindPassword: slapd.bindPassword,
      baseDN: slapd.peopleDN,
      attributes: { number: ['telephoneNumber', 'mobile', 'ipPhone'], xmpp: ['jabberID'] },
      timeoutMs: 5_000,
      ...overrides,
    },
    silentLogger(),
  );
}

/** One lookup, checked: a wrong answer would make the figure meaningless. */
async function lookup(source: LdapSource, i: number): Promise<void> {
  if (i % 2 === 0) {
    const who = await source.byNumber('+15551234567');
    if (who?.sip !== 'sip:alice@corp.example') throw new Error(`byNumber answered ${JSON.stringify(who)}`);
  } else {
    const who = await source.bySipAddress('sip:bob@corp.example');
    if (who?.e164 !== '+442079460958') throw new Error(`bySipAddress answered ${JSON.stringify(who)}`);
  }
}

/** `inFlight` workers issue lookups back to back until `budgetMs` passes (or 1,000,000 lookups). */
async function round(source: LdapSource, inFlight: number, budgetMs: number): Promise<Round> {
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const deadline = started + budgetMs;
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && issued < 1_000_000) {
      const i = issued++;
      const t0 = performance.now();
      await lookup(source, i);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  return {
    lookups: latencies.length,
    perSecond: (latencies.length / elapsed) * 1000,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuUsPerLookup: (cpu.user + cpu.system) / latencies.length,
  };
}

async function phase(slapd: Slapd, label: string, poolSize: number, inFlight: number, rounds: number, budgetMs: number): Promise<void> {
  const source = sourceFor(slapd, { poolSize });
  await source.start();
  try {
    await round(source, inFlight, 300); // warm-up: opens the pool's connections, JIT
    const all: Round[] = [];
    for (let r = 0; r < rounds; r++) {
      const result = await round(source, inFlight, budgetMs);
      all.push(result);
      console.log(
        `${`${label} #${r + 1}`.padEnd(36)} ${fmt(result.perSecond).padStart(7)} lookups/s   ` +
          `p50 ${fmt(result.p50Ms, 3)} ms, p99 ${fmt(result.p99Ms, 3)} ms   ` +
          `${fmt(result.cpuUsPerLookup)} µs CPU/lookup here   (${fmt(result.lookups)} lookups)`,
      );
    }
    const median = [...all].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(rounds / 2)]!;
    console.log(
      `${label}: median round ${fmt(median.perSecond)} lookups/s, p50 ${fmt(median.p50Ms, 3)} ms, p99 ${fmt(median.p99Ms, 3)} ms, ` +
        `${fmt(median.cpuUsPerLookup)} µs CPU/lookup here; ` +
        `connections opened ${source.poolStats().opened}`,
    );
  } finally {
    await source.stop();
  }
}

/** The first lookup of a fresh source: TCP connect, simple bind, search. */
async function firstLookups(slapd: Slapd, samples: number): Promise<void> {
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const source = sourceFor(slapd, { poolSize: 1 });
    const t0 = performance.now();
    await lookup(source, 0);
    latencies.push(performance.now() - t0);
    await source.stop();
  }
  latencies.sort((a, b) => a - b);
  console.log(
    `${'first lookup (connect + bind + search)'.padEnd(36)} p50 ${fmt(percentile(latencies, 50), 3)} ms, ` +
      `p99 ${fmt(percentile(latencies, 99), 3)} ms   (${samples} fresh sources)`,
  );
}

const slapd = await startSlapd({ quiet: true });
try {
  console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, load average ${load()}`);
  console.log(`slapd (OpenLDAP mdb, stats logging off) on ${slapd.url}; lookups alternate byNumber / bySipAddress, no cache`);
  console.log('');
  await firstLookups(slapd, 50);
  await phase(slapd, 'pool 1, 1 in flight', 1, 1, 3, 2_000);
  await phase(slapd, 'pool 1, 8 in flight', 1, 8, 3, 2_000);
  await phase(slapd, 'pool 4, 1 in flight', 4, 1, 3, 2_000);
  await phase(slapd, 'pool 4, 8 in flight', 4, 8, 3, 2_000);
  console.log('');
  console.log(`load average at the end: ${load()}`);
} finally {
  await slapd.stop();
}
