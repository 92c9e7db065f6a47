/**
 * The long run of the stanza fuzzer (test/unit/xmpp-stanza-fuzz.test.ts runs 3,000 in the test
 * suite): COUNT mutated stanzas (default 300,000, SEED default 1) through the stream guard, the
 * real @xmpp/xml parser and the adapter's first handling (fromStanza, answerIq), in memory, each
 * on a fresh stream cut into up to three reads. Prints the count, the time, the cases that broke
 * a rule (a throw, or a refused stream without a stream error), and the RSS before and after.
 *
 *   npx tsx scripts/fuzz-xmpp.ts            COUNT=1000000 SEED=9 npx tsx scripts/fuzz-xmpp.ts
 */
import { fuzzStanza } from '../test/support/xmpp-fuzz.js';
import { stanzaMutations } from '../test/support/xmpp-mutations.js';

const count = Number(process.env['COUNT'] ?? 300_000);
const seed = Number(process.env['SEED'] ?? 1);
if (!Number.isInteger(count) || count < 1 || count > 100_000_000 || !Number.isInteger(seed)) throw new Error('COUNT (1–100,000,000) and SEED must be whole numbers');

const rss0 = process.memoryUsage().rss;
const t0 = performance.now();
let n = 0;
let handled = 0;
let refused = 0;
const unexpected: string[] = [];
for (const input of stanzaMutations({ seed, count })) {
  const outcome = fuzzStanza(input, 'sip.xmpp.test', [n % 97, (n * 31) % 211]);
  n++;
  handled += outcome.stanzas;
  if (outcome.streamFailed) refused++;
  if (outcome.unexpected !== undefined && unexpected.length < 10) unexpected.push(`case ${n - 1}: ${outcome.unexpected}`);
  // Each stream's writes and its close complete on later ticks: let them, so what a finished
  // case holds is freed (a loop that never yields keeps every stream alive and runs out of heap).
  if (n % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
  if (n % 50_000 === 0) process.stderr.write(`${n}/${count} done, rss ${Math.round(process.memoryUsage().rss / 1e6)} MB\n`);
}
const seconds = (performance.now() - t0) / 1000;
console.log(
  JSON.stringify({
    seed,
    cases: n,
    seconds: Math.round(seconds * 10) / 10,
    perSecond: Math.round(n / seconds),
    stanzasHandled: handled,
    streamsRefused: refused,
    brokeARule: unexpected.length,
    rssMBBefore: Math.round(rss0 / 1e6),
    rssMBAfter: Math.round(process.memoryUsage().rss / 1e6),
  }),
);
for (const u of unexpected) console.log(u);
process.exitCode = unexpected.length === 0 ? 0 : 1;
