/**
 * Where a bridge process spends its CPU: sums a V8 `.cpuprofile` (node --cpu-prof) by part of
 * the system, leaving out idle time and the first seconds (start-up, module loading).
 *
 *   BRIDGE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" RATES=1000 STEP_S=8 SYSTEMS=bridge npm run bench:e2e
 *   npx tsx bench/cpu-profile-summary.ts /tmp/prof/CPU.*.0.001.cpuprofile [skip seconds, default 6]
 *
 * (`.0.001` is the main thread; tsx's loader thread writes another profile beside it.)
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** First match wins; the order matters (our Redis-backed code before the rest of the core). */
const PARTS: readonly [string, (url: string, fn: string) => boolean][] = [
  ['Redis client (ioredis, BullMQ, msgpackr, our Redis stores)', (u) => /node_modules\/(ioredis|bullmq|msgpackr|cluster-key-slot)|src\/core\/(queue\/bullmq|state\/redis)/.test(u)],
  ['our SIP stack', (u) => u.includes('/src/adapters/sip/')],
  ['our XMPP adapter', (u) => u.includes('/src/adapters/xmpp/')],
  ['core (router, queue, bridge, policy)', (u) => u.includes('/src/core/')],
  ['mapping (PRECIS, addresses, identities)', (u) => u.includes('/src/mapping/')],
  ['ltx and @xmpp', (u) => /node_modules\/(ltx|@xmpp)\//.test(u)],
  ['logging and telemetry', (u) => /node_modules\/(pino|@opentelemetry)|src\/telemetry\//.test(u)],
  ['garbage collector', (_u, fn) => fn === '(garbage collector)'],
  ['socket I/O in node', (u, fn) => /^node:(dgram|net|internal\/stream|internal\/net)/.test(u) || ['writeString', 'writeUtf8String', 'writeBuffer', 'writev'].includes(fn)],
  ['module loading', (u) => u.includes('esm') || u.includes('tsx') || u.startsWith('node:internal/modules')],
];

const [file, skipArg] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: cpu-profile-summary.ts FILE.cpuprofile [skip seconds]');
const skipUs = Number(skipArg ?? 6) * 1e6;
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const totals = new Map<string, number>();
let busy = 0;
let t = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  t += dt;
  const frame = byId.get(id)?.callFrame;
  if (t < skipUs || frame === undefined || frame.functionName === '(idle)') return;
  const part = PARTS.find(([, test]) => test(frame.url, frame.functionName))?.[0] ?? 'other (V8, node internals, microtasks)';
  totals.set(part, (totals.get(part) ?? 0) + dt);
  busy += dt;
});
console.log(`busy ${(busy / 1000).toFixed(0)} ms after the first ${skipUs / 1e6} s`);
for (const [part, us] of [...totals].sort((a, b) => b[1] - a[1])) console.log(`${((us / busy) * 100).toFixed(1).padStart(5)}%  ${part}`);
