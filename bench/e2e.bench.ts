/**
 * End-to-end bench (issue 7 item 5): real Prosody, the bridge as its own process (so its CPU
 * and RSS are its own, read from /proc), sipp at increasing rates; XMPP users count deliveries
 * by number. Both directions, then the same workload through the peers alone: Prosody's own
 * component ceiling (a bare component, no SIP) and Kamailio's xmpp gateway module.
 * Run from the repo root: npm run bench:e2e
 * Knobs: RATES=250,500 STEP_S=5 SYSTEMS=bridge,ceiling,kamailio QUEUES=memory,redis CONVERSATIONS=100
 * (docs/performance.md says what each figure means).
 */
import { execSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpus, loadavg, totalmem } from 'node:os';
import { startBridgeProcess, type BridgeProcess } from '../test/support/bridge-process.js';
import { freePort } from '../test/support/ports.js';
import { startProsody, type Prosody } from '../test/support/prosody.js';
import { startRedis, type RedisServer } from '../test/support/redis.js';
import { startKamailioGateway, type KamailioGateway } from './e2e/kamailio-xmpp.js';
import { cpuMs, processTree, rssBytes } from './e2e/proc.js';
import { parseArrivals, startUac, startUas, type SippRun } from './e2e/sipp.js';
import { connectBenchComponent, connectBenchUser, type Counter, type Endpoint } from './e2e/xmpp.js';

const RATES = (process.env['RATES'] ?? '250,500,1000,2000,4000,6000,8000').split(',').map(Number);
const STEP_S = Number(process.env['STEP_S'] ?? 5);
const SYSTEMS = (process.env['SYSTEMS'] ?? 'bridge,ceiling,kamailio').split(',');
const QUEUES = (process.env['QUEUES'] ?? 'memory').split(',');
const MAX_LOSS = 0.001;
/** Keeping up, not just catching up later: a step whose p99 exceeds this built a backlog. */
const MAX_P99_MS = 1000;
/** A step's stragglers get this long after the last send without any new arrival. */
const IDLE_DRAIN_MS = 3_000;
const MAX_DRAIN_MS = 30_000;
/**
 * Distinct sender/recipient pairs the load is spread over. The bridge keeps each pair's messages
 * in order, so one pair measures a single conversation's ceiling, many pairs the gateway's.
 */
const CONVERSATIONS = Number(process.env['CONVERSATIONS'] ?? 100);
/** SIP users alice1…aliceK; XMPP users reach aliceK at +1555123KKKK (K < 10,000). */
const SIP_USERS = Array.from({ length: CONVERSATIONS }, (_, i) => `alice${i + 1}`);
const numberOf = (i: number) => `+1555123${String(10_000 + i + 1).slice(1)}`;

const KNOWN_SYSTEMS = ['bridge', 'ceiling', 'kamailio'];
const wholeIn = (n: number, min: number, max: number) => Number.isInteger(n) && n >= min && n <= max;
if (!RATES.every((r) => wholeIn(r, 1, 100_000)) || !wholeIn(STEP_S, 1, 600) || !wholeIn(CONVERSATIONS, 1, 9999)) {
  throw new Error('RATES (msg/s, 1–100000, comma-separated), STEP_S (1–600) and CONVERSATIONS (1–9999) must be whole numbers');
}
if (!SYSTEMS.every((s) => KNOWN_SYSTEMS.includes(s)) || !QUEUES.every((q) => q === 'memory' || q === 'redis')) {
  throw new Error(`SYSTEMS takes ${KNOWN_SYSTEMS.join(', ')}; QUEUES takes memory, redis`);
}

type Direction = 'sip→xmpp' | 'xmpp→sip';

interface Step {
  rate: number;
  sent: number;
  received: number;
  loss: number;
  p50Ms: number;
  p99Ms: number;
  cpuMsPer1k: number | null;
  rssMiB: number | null;
  /** How long sending took: sipp or the pacer may fall behind the nominal rate. */
  sendS: number;
  /** Prosody's and this process's (the XMPP clients') CPU, to tell who ran out first. */
  prosodyCpuMsPer1k: number;
  harnessCpuMsPer1k: number;
  wallS: number;
}

interface Series {
  system: string;
  direction: Direction;
  steps: Step[];
  /** Highest rate with loss < 0.1% and p99 < 1 s (no growing backlog), or 0. */
  sustained: number;
  /** Highest rate with loss < 0.1% however late (a backlog drained within the step's grace). */
  lossless: number;
  note?: string;
}

/** How one system takes the workload: who sends, who counts, whose CPU is measured. */
interface Lane {
  system: string;
  direction: Direction;
  pids(): number[];
  /** Starts counting step `step` of `count` messages. */
  begin(step: string, count: number): Promise<void>;
  /** Sends `count` at `rate`/s; resolves after the last send (sipp: when sipp exits). */
  send(step: string, rate: number, count: number): Promise<void>;
  /** How far the receiving end got (a count, or any number that grows while it receives). */
  progress(): Promise<number>;
  /** What progress() counts, when not messages. */
  progressUnit?: string;
  complete(count: number): Promise<boolean>;
  /** Latencies (ms) of every distinct message received. */
  collect(step: string): Promise<number[]>;
}

const pct = (sorted: number[], p: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function progressLine(text: string): void {
  process.stderr.write(`\r\x1b[K${text}`);
}

/** Calls `fn(n)` for n = 1..count, `rate` per second, in 5 ms ticks. */
async function pace(rate: number, count: number, fn: (n: number) => void): Promise<void> {
  const t0 = performance.now();
  let n = 0;
  while (n < count) {
    const due = Math.min(count, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
    while (n < due) fn(++n);
    await sleep(5);
  }
}

let prosodyPid = -1;

/** Peers still running: stopped on Ctrl-C too, so no Prosody or bridge outlives the bench. */
const running = new Set<() => Promise<unknown>>();
async function tracked<T extends { stop(): Promise<unknown> } | { close(): Promise<unknown> }>(peer: T): Promise<T> {
  const stop = 'close' in peer ? () => peer.close() : () => peer.stop();
  running.add(stop);
  return peer;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    progressLine(`stopping peers (${sig})\n`);
    void Promise.allSettled([...running].map((stop) => stop())).then(() => process.exit(130));
  });
}

async function runStep(lane: Lane, rate: number, seconds = STEP_S, tag = String(rate)): Promise<Step> {
  const count = rate * seconds;
  const step = `${lane.system}.${lane.direction === 'sip→xmpp' ? 's2x' : 'x2s'}.${tag}`;
  await lane.begin(step, count);
  const pids = lane.pids();
  const cpu0 = pids.length ? cpuMs(pids) : 0;
  let rss = pids.length ? rssBytes(pids) : 0;
  const prosody0 = cpuMs([prosodyPid]);
  const harness0 = process.cpuUsage();
  const t0 = performance.now();
  let sendS: number;
  let sending = true;
  const ticker = setInterval(() => {
    if (pids.length) rss = Math.max(rss, rssBytes(pids));
    void lane.progress().then((p) => progressLine(`[${lane.system} ${lane.direction} ${rate}/s] ${sending ? 'sending' : 'draining'} ${((performance.now() - t0) / 1000).toFixed(1)} s, received ${lane.progressUnit === undefined ? `${p}/${count}` : `${p} ${lane.progressUnit}`}`));
  }, 1000);
  try {
    await lane.send(step, rate, count);
    sendS = (performance.now() - t0) / 1000;
    sending = false;
    let last = await lane.progress();
    let lastChange = performance.now();
    const drainEnd = performance.now() + MAX_DRAIN_MS;
    while (!(await lane.complete(count)) && performance.now() < drainEnd && performance.now() - lastChange < IDLE_DRAIN_MS) {
      await sleep(100);
      const p = await lane.progress();
      if (p !== last) {
        last = p;
        lastChange = performance.now();
      }
    }
  } finally {
    clearInterval(ticker);
  }
  const wallS = (performance.now() - t0) / 1000;
  const lat = (await lane.collect(step)).sort((a, b) => a - b);
  const received = lat.length;
  const cpu = pids.length ? cpuMs(pids) - cpu0 : 0;
  const harness = process.cpuUsage(harness0);
  const per1k = (ms: number) => +((ms * 1000) / count).toFixed(1);
  progressLine('');
  return {
    rate,
    sent: count,
    received,
    loss: +(1 - received / count).toFixed(5),
    p50Ms: +pct(lat, 50).toFixed(1),
    p99Ms: +pct(lat, 99).toFixed(1),
    cpuMsPer1k: pids.length ? +((cpu * 1000) / count).toFixed(1) : null,
    rssMiB: pids.length ? +(rss / 1048576).toFixed(1) : null,
    sendS: +sendS.toFixed(2),
    prosodyCpuMsPer1k: per1k(cpuMs([prosodyPid]) - prosody0),
    harnessCpuMsPer1k: per1k((harness.user + harness.system) / 1000),
    wallS: +wallS.toFixed(1),
  };
}

/** A series that failed part-way keeps its finished steps, and the other series still run. */
async function runSeries(lane: Lane): Promise<Series> {
  const steps: Step[] = [];
  try {
    return await climb(lane, steps);
  } catch (err) {
    const note = `stopped: ${(err as Error).message.split('\n')[0]!}`;
    console.error(`${lane.system} ${lane.direction}: ${note}`);
    return { system: lane.system, direction: lane.direction, steps, ...verdict(steps), note };
  }
}

/** Sustained and lossless rates of steps run in increasing order (see Series). */
function verdict(steps: readonly Step[]): { sustained: number; lossless: number } {
  let sustained = 0;
  let lossless = 0;
  let keptUp = true;
  for (const s of steps) {
    if (s.loss >= MAX_LOSS) break;
    lossless = s.rate;
    keptUp &&= s.p99Ms < MAX_P99_MS;
    if (keptUp) sustained = s.rate;
  }
  return { sustained, lossless };
}

async function climb(lane: Lane, steps: Step[]): Promise<Series> {
  // Unrecorded warm-up: JIT, connection set-up and first-use allocations stay out of step one.
  await runStep(lane, 200, 2, 'warmup');
  for (const rate of RATES) {
    const s = await runStep(lane, rate);
    steps.push(s);
    console.error(`${lane.system} ${lane.direction} ${rate}/s (sent in ${s.sendS} s): ${s.received}/${s.sent} (loss ${(s.loss * 100).toFixed(2)}%), p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms, CPU ${s.cpuMsPer1k ?? '-'} ms/1k, memory ${s.rssMiB ?? '-'} MiB; Prosody ${s.prosodyCpuMsPer1k} ms/1k, harness ${s.harnessCpuMsPer1k} ms/1k`);
    if (s.loss >= MAX_LOSS) break;
    // Let queues and retransmissions settle before the next rate.
    await sleep(1000);
  }
  return { system: lane.system, direction: lane.direction, steps, ...verdict(steps) };
}

/** SIP side sends with sipp straight at `target`; `juliet` counts. */
function sippToXmpp(system: string, pids: () => number[], target: { host: string; port: number }, user: string, domain: string, status: string, juliet: Endpoint): Lane {
  const fromUsers = SIP_USERS;
  return {
    system,
    direction: 'sip→xmpp',
    pids,
    begin: async (step) => juliet.counter.begin(step),
    async send(step, rate, count) {
      const uac = await startUac({ target, user, domain, step, rate, count, status, fromUsers, timeoutSec: STEP_S * 4 + 30 });
      await uac.done;
      await uac.stop();
    },
    progress: async () => juliet.counter.latency.size,
    complete: async (count) => juliet.counter.latency.size >= count,
    collect: async () => [...juliet.counter.latency.values()],
  };
}

/** XMPP users send to `to`; a sipp UAS on `uasPort` answers and its log gives arrival times. */
function xmppToSipp(system: string, pids: () => number[], senders: Endpoint[], to: (n: number) => string, uasPort: number): Lane {
  let uas: SippRun | undefined;
  let exited = false;
  return {
    system,
    direction: 'xmpp→sip',
    pids,
    async begin(_step, count) {
      exited = false;
      // The port is the bridge's outbound proxy, so it cannot change; between steps another
      // program on the box may hold it for a moment (other test runs pick free ports too).
      for (let attempt = 1; ; attempt++) {
        try {
          uas = await startUas(uasPort, count, STEP_S * 4 + 60);
          break;
        } catch (err) {
          if (attempt >= 10) throw err;
          await sleep(500);
        }
      }
      void uas.done.then(() => (exited = true));
    },
    send: (step, rate, count) => pace(rate, count, (n) => senders[n % senders.length]!.send(to(n), step, n)),
    progress: async () => (await uas!.logBytes()) >> 10,
    progressUnit: 'KiB of sipp log',
    complete: async () => exited,
    async collect(step) {
      const arrivals = parseArrivals(await uas!.messages(), step);
      await uas!.stop();
      const seen = new Map<number, number>();
      for (const a of arrivals) if (!seen.has(a.n)) seen.set(a.n, a.atMs - a.sentMs);
      return [...seen.values()];
    },
  };
}

/** Both ends XMPP: `from` sends paced to `to`, `counter` counts. */
function xmppToXmpp(system: string, direction: Direction, senders: Endpoint[], to: (n: number) => string, counter: Counter): Lane {
  return {
    system,
    direction,
    pids: () => [],
    begin: async (step) => counter.begin(step),
    send: (step, rate, count) => pace(rate, count, (n) => senders[n % senders.length]!.send(to(n), step, n)),
    progress: async () => counter.latency.size,
    complete: async (count) => counter.latency.size >= count,
    collect: async () => [...counter.latency.values()],
  };
}

function bridgeConfig(prosody: Prosody, sipPort: number, uasPort: number, queue: string, redis: RedisServer | undefined): Record<string, unknown> {
  return {
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: sipPort }], outboundProxy: `sip:127.0.0.1:${uasPort};transport=udp` },
    xmpp: { component: prosody.component, server: { host: prosody.host, port: prosody.componentPort }, secret: prosody.secret },
    mapping: { xmppDomains: [prosody.domain], identities: SIP_USERS.map((u, i) => ({ e164: numberOf(i), sip: `sip:${u}@corp.example` })) },
    queue: { backend: queue },
    ...(redis ? { redis: { url: redis.url, prefix: redis.prefix() } } : {}),
    log: { level: 'info' },
  };
}

function machine(): string {
  const cpu = cpus();
  let os = '';
  try {
    os = execSync('uname -sr', { encoding: 'utf8' }).trim();
  } catch {
    // not fatal: the table just lacks the kernel
  }
  // The load average says how much else was running: the figures move with it.
  return `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ${os}, Node ${process.version}, load average ${loadavg()[0]!.toFixed(1)} at start`;
}

function table(series: Series[]): string {
  const best = (s: Series) => s.steps.find((x) => x.rate === s.sustained);
  const ours = (dir: Direction, queue: string) => series.find((s) => s.system === `bridge-${queue}` && s.direction === dir)?.sustained ?? 0;
  const rows = series.map((s) => {
    const b = best(s);
    const base = ours(s.direction, 'memory');
    const ratio = s.system.startsWith('bridge') || s.sustained === 0 || base === 0 ? '' : `${(base / s.sustained).toFixed(2)}×`;
    return `| ${s.system} | ${s.direction} | ${s.sustained || '<' + RATES[0]} | ${s.lossless || '<' + RATES[0]} | ${b?.p50Ms ?? '-'} | ${b?.p99Ms ?? '-'} | ${b?.cpuMsPer1k ?? '-'} | ${b?.rssMiB ?? '-'} | ${ratio} |${s.note ? ' ' + s.note : ''}`;
  });
  const steps = series.flatMap((s) => s.steps.map((x) => `| ${s.system} | ${s.direction} | ${x.rate} | ${Math.round(x.sent / x.sendS)} | ${x.received}/${x.sent} | ${(x.loss * 100).toFixed(2)}% | ${x.p50Ms} | ${x.p99Ms} | ${x.cpuMsPer1k ?? '-'} | ${x.rssMiB ?? '-'} | ${x.prosodyCpuMsPer1k} | ${x.harnessCpuMsPer1k} |`));
  return [
    '| system | direction | sustained msg/s (loss < 0.1%, p99 < 1 s) | lossless msg/s (any latency) | p50 ms | p99 ms | CPU ms / 1k msgs | memory MiB | bridge (memory) ÷ this |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    'Every step:',
    '',
    '| system | direction | rate /s | achieved /s | received | loss | p50 ms | p99 ms | CPU ms / 1k | memory MiB | Prosody CPU ms / 1k | harness CPU ms / 1k |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...steps,
  ].join('\n');
}

async function main(): Promise<void> {
  const started = new Date();
  const ceilingDomain = 'ceiling.xmpp.test';
  const gatewayDomain = 'kamailio.xmpp.test';
  const prosody = await tracked(await startProsody({
    domain: 'xmpp.test',
    component: 'sip.xmpp.test',
    extraComponents: { [ceilingDomain]: 'ceiling-secret', [gatewayDomain]: 'kamailio-secret' },
    users: { juliet: 'juliet-pass', romeo: 'romeo-pass' },
  }));
  // The launcher logs at debug, which costs Prosody more than the routing does: info instead.
  const configPath = join(prosody.dir, 'prosody.cfg.lua');
  await writeFile(configPath, (await readFile(configPath, 'utf8')).replace('log = { debug =', 'log = { info ='));
  await prosody.restart();
  prosodyPid = prosody.pid();
  const series: Series[] = [];
  const cleanup: Array<() => Promise<void>> = [() => prosody.stop()];
  try {
    const juliet = await connectBenchUser(prosody, prosody.users[0]!);
    const romeo = await connectBenchUser(prosody, prosody.users[1]!);
    cleanup.unshift(() => juliet.stop(), () => romeo.stop());
    const senders = [juliet, romeo];

    for (const system of SYSTEMS) {
      if (system === 'bridge') {
        for (const queue of QUEUES) {
          const redis = queue === 'redis' ? await tracked(await startRedis({ private: true })) : undefined;
          const sipPort = await freePort();
          const uasPort = await freePort();
          let bridge: BridgeProcess | undefined;
          try {
            bridge = await tracked(await startBridgeProcess({ name: `bench-${queue}`, config: bridgeConfig(prosody, sipPort, uasPort, queue, redis) }));
            const pid = bridge.pid()!;
            const name = `bridge-${queue}`;
            series.push(await runSeries(sippToXmpp(name, () => [pid], { host: '127.0.0.1', port: sipPort }, 'juliet', prosody.domain, '202', juliet)));
            series.push(await runSeries(xmppToSipp(name, () => [pid], senders, (n) => `${numberOf(n % CONVERSATIONS)}@${prosody.component}`, uasPort)));
          } finally {
            // BRIDGE_LOG_DIR: keep the tail of the bridge's log, to see why a step lost messages.
            const logDir = process.env['BRIDGE_LOG_DIR'];
            if (logDir !== undefined && bridge !== undefined) await writeFile(join(logDir, `bridge-${queue}.log`), bridge.stdout());
            await bridge?.close();
            await redis?.close();
          }
        }
      } else if (system === 'ceiling') {
        const comp = await connectBenchComponent(prosody, ceilingDomain, 'ceiling-secret');
        try {
          series.push(await runSeries(xmppToXmpp('prosody-component', 'sip→xmpp', [comp], () => `juliet@${prosody.domain}`, juliet.counter)));
          series.push(await runSeries(xmppToXmpp('prosody-component', 'xmpp→sip', senders, (n) => `${SIP_USERS[n % CONVERSATIONS]!}@${ceilingDomain}`, comp.counter)));
        } finally {
          await comp.stop();
        }
      } else if (system === 'kamailio') {
        const uasPort = await freePort();
        let gw: KamailioGateway | undefined;
        try {
          gw = await tracked(await startKamailioGateway({ prosody, domain: gatewayDomain, secret: 'kamailio-secret', uasPort }));
          const pids = processTree(gw.pid());
          series.push(await runSeries(sippToXmpp('kamailio-xmpp', () => pids, { host: '127.0.0.1', port: gw.port }, `juliet*${prosody.domain}`, gatewayDomain, '200', juliet)));
          series.push(await runSeries(xmppToSipp('kamailio-xmpp', () => pids, senders, (n) => `${SIP_USERS[n % CONVERSATIONS]!}*corp.example@${gatewayDomain}`, uasPort)));
        } catch (err) {
          series.push({ system: 'kamailio-xmpp', direction: 'sip→xmpp', steps: [], sustained: 0, lossless: 0, note: `not run: ${(err as Error).message.split('\n')[0]}` });
          console.error(err);
        } finally {
          await gw?.stop();
        }
      }
    }
  } finally {
    for (const c of cleanup) await c().catch(() => undefined);
  }

  const md = table(series);
  // e2e-2026-11-23T1327.json: the date and time, so runs on the same day do not overwrite each other.
  const date = started.toISOString().slice(0, 16).replace(':', '');
  const result = { date: started.toISOString(), machine: machine(), stepSeconds: STEP_S, rates: RATES, conversations: CONVERSATIONS, series };
  await mkdir('bench/results', { recursive: true });
  await writeFile(`bench/results/e2e-${date}.json`, JSON.stringify(result, null, 2) + '\n');
  const knobs = ['RATES', 'STEP_S', 'SYSTEMS', 'QUEUES', 'CONVERSATIONS'].filter((k) => process.env[k] !== undefined).map((k) => `${k}=${process.env[k]} `);
  const heading = `Measured ${started.toISOString()} on ${result.machine}; ${STEP_S} s per step, ${CONVERSATIONS} conversations; command: \`${knobs.join('')}npm run bench:e2e\`.`;
  console.log(`\n${heading}\n\n${md}\n`);
  await writeResultsDoc(`${heading}\n\n${md}`);
}

async function writeResultsDoc(md: string): Promise<void> {
  const path = 'docs/performance.md';
  const doc = await readFile(path, 'utf8').catch(() => '');
  const begin = '<!-- results:begin -->';
  const end = '<!-- results:end -->';
  const block = `${begin}\n${md}\n${end}`;
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  await writeFile(path, i >= 0 && j > i ? doc.slice(0, i) + block + doc.slice(j + end.length) : `${doc}\n${block}\n`);
}

await main();
