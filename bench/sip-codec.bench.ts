/**
 * Micro-benchmark of the SIP codec: parse + serialize of a typical MESSAGE, then sip.js 0.21's
 * parser on the same bytes for the ratio (docs/decisions/0001-own-sip-stack.md).
 *
 *   npx tsx bench/sip-codec.bench.ts            (or: npm run bench)
 *   node --expose-gc --import tsx bench/sip-codec.bench.ts   (heap figures after a full GC)
 *
 * Our codec is timed in several rounds (after one warm-up) and each round reports wall-clock
 * and CPU figures, so a run on a shared machine shows its spread: the best and the median round
 * are printed with the load average before and after. "Per CPU-second" divides by this
 * process's CPU time (all its threads, GC included), the one-core figure.
 * Bounded in time: each phase stops after its time budget (about 20 s in all).
 */
import { cpus, loadavg } from 'node:os';
import type { Logger } from 'sip.js/lib/core/log/logger.js';
import { Parser } from 'sip.js/lib/core/messages/parser.js';
import { parseMessage } from '../src/adapters/sip/codec/parse.js';
import { serializeMessage } from '../src/adapters/sip/codec/serialize.js';

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

const BODY = 'Bonjour Bob, ça marche très bien ✓ 👍';

/** A MESSAGE as a federation edge would send it: about 450 bytes of headers. */
const HEAD = [
  'MESSAGE sip:bob@xmpp.example.org SIP/2.0',
  'Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-524287-1---6a8b1e4c2d9f3a70;rport',
  'Max-Forwards: 69',
  'From: "Alice Example" <sip:alice@corp.example>;tag=8c2f7a1e90;epid=01010101',
  'To: <sip:bob@xmpp.example.org>',
  'Call-ID: 3c26700852e8a9c4b1f0d7e6@192.0.2.10',
  'CSeq: 1 MESSAGE',
  'Contact: <sip:alice@192.0.2.10:5061;transport=tls>',
  'User-Agent: UCCAPI/16.0.4510.1000 OC/16.0.4510.1000',
  'Content-Type: text/plain; charset=UTF-8',
  `Content-Length: ${Buffer.byteLength(BODY)}`,
].join('\r\n');
const WIRE = Buffer.from(`${HEAD}\r\n\r\n${BODY}`, 'utf8');
const WIRE_TEXT = WIRE.toString('utf8');

interface Result {
  label: string;
  messages: number;
  /** Messages per second of wall-clock time. */
  perSecond: number;
  /** Messages per second of this process's CPU time: the one-core figure, less sensitive to other load. */
  perCpuSecond: number;
  batchP50Ms: number;
  batchP99Ms: number;
  batchSize: number;
  heapMB: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Warm up, then time batches of `batchSize` calls until `budgetMs` (or `maxBatches`) is spent. */
function measure(label: string, fn: () => void, batchSize: number, warmup: number, budgetMs: number): Result {
  for (let i = 0; i < warmup; i++) fn();
  gc();
  const batches: number[] = [];
  const cpu0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(budgetMs) * 1_000_000n;
  const maxBatches = 1_000_000;
  let now = started;
  while (now < deadline && batches.length < maxBatches) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batchSize; i++) fn();
    now = process.hrtime.bigint();
    batches.push(Number(now - t0) / 1e6);
  }
  const cpu = process.cpuUsage(cpu0);
  const heapMB = process.memoryUsage().heapUsed / 1024 / 1024;
  const totalMs = Number(now - started) / 1e6;
  const messages = batches.length * batchSize;
  batches.sort((a, b) => a - b);
  return {
    label,
    messages,
    perSecond: (messages / totalMs) * 1000,
    perCpuSecond: messages / ((cpu.user + cpu.system) / 1e6),
    batchP50Ms: percentile(batches, 50),
    batchP99Ms: percentile(batches, 99),
    batchSize,
    heapMB,
  };
}

function print(r: Result): void {
  const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log(
    `${r.label.padEnd(34)} ${fmt(r.perSecond).padStart(9)} msg/s (${fmt(r.perCpuSecond)} per CPU-second)   ` +
      `batch of ${r.batchSize}: p50 ${fmt(r.batchP50Ms, 3)} ms, p99 ${fmt(r.batchP99Ms, 3)} ms   ` +
      `(${fmt(r.messages)} msgs, heap ${fmt(r.heapMB, 1)} MB)`,
  );
}

const silent = { error() {}, warn() {}, log() {}, debug() {} } as unknown as Logger;

// Both parsers must accept the input, or the comparison means nothing.
const ours = parseMessage(WIRE, { transport: 'tcp' });
const theirs = Parser.parseMessage(WIRE_TEXT, silent);
if (theirs === undefined) throw new Error('sip.js rejected the benchmark message');
if (!serializeMessage(ours).equals(WIRE)) throw new Error('our codec does not reproduce the benchmark message');

console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, load average ${load()}`);
console.log(`input: MESSAGE, ${HEAD.length + 4} bytes of headers, ${Buffer.byteLength(BODY)}-byte UTF-8 body (${BODY.length} UTF-16 units)`);
console.log(`body as read by ours:   ${JSON.stringify(ours.body.toString('utf8'))}`);
console.log(`body as read by sip.js: ${JSON.stringify(theirs.body)}`);
console.log('');

/** `count` rounds of `budgetMs` each, after one warm-up; prints every round, returns the median round. */
function rounds(label: string, fn: () => void, count: number, budgetMs: number): Result {
  const all: Result[] = [];
  for (let r = 0; r < count; r++) {
    const result = measure(`${label} #${r + 1}`, fn, 1000, r === 0 ? 20_000 : 0, budgetMs);
    print(result);
    all.push(result);
  }
  const byCpu = [...all].sort((a, b) => a.perCpuSecond - b.perCpuSecond);
  const byWall = [...all].sort((a, b) => a.perSecond - b.perSecond);
  const median = byCpu[Math.floor(count / 2)] as Result;
  const fmt = (n: number | undefined): string => Math.round(n ?? NaN).toLocaleString('en-US');
  console.log(
    `${label}: per CPU-second best ${fmt(byCpu[count - 1]?.perCpuSecond)}, median ${fmt(median.perCpuSecond)}; ` +
      `wall best ${fmt(byWall[count - 1]?.perSecond)}, median ${fmt(byWall[Math.floor(count / 2)]?.perSecond)} msg/s`,
  );
  return median;
}

const roundTrip = rounds('ours: parse + serialize', () => serializeMessage(parseMessage(WIRE, { transport: 'tcp' })), 5, 1500);
const parseOnly = rounds('ours: parse', () => parseMessage(WIRE, { transport: 'tcp' }), 3, 1000);
const sipjs = measure('sip.js 0.21: Parser.parseMessage', () => Parser.parseMessage(WIRE_TEXT, silent), 20, 100, 5000);
print(sipjs);

console.log('');
console.log(`ratio per CPU-second, parse+serialize (ours, median round) / parse (sip.js): ${(roundTrip.perCpuSecond / sipjs.perCpuSecond).toFixed(0)}×`);
console.log(`ratio per CPU-second, parse (ours, median round) / parse (sip.js):           ${(parseOnly.perCpuSecond / sipjs.perCpuSecond).toFixed(0)}×`);
console.log(`load average at the end: ${load()}`);
// Judged on the median round's CPU figure, so one lucky round does not decide it.
const met = roundTrip.perCpuSecond >= 100_000;
console.log(`goal ≥ 100,000 parse+serialize per second on one core (median round, per CPU-second): ${met ? 'met' : 'NOT met'}`);
