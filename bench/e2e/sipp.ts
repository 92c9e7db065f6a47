/**
 * sipp for the end-to-end bench: a UAC sending page-mode MESSAGEs at a fixed rate with
 * sipp's own send time in the body, and a UAS answering MESSAGEs whose -trace_msg log gives
 * each arrival time. Scenarios are inline (the test fixtures are one-shot and checked for
 * content; here only count and time matter). UDP, one socket, loopback only.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from '../../test/support/ports.js';

export interface SippRun {
  readonly port: number;
  /** Resolves with sipp's exit code once it exits (or is stopped). */
  readonly done: Promise<number | null>;
  /** The -trace_msg log so far (UAS only). */
  messages(): Promise<string>;
  /** Its size in bytes: grows while MESSAGEs arrive, cheap to ask every second. */
  logBytes(): Promise<number>;
  stop(): Promise<void>;
}

/** `[timestamp]` is "date\ttime\tepoch.micros"; the bench reads the epoch back from the body. */
const uacScenario = (status: string) => `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench MESSAGE UAC">
  <send retrans="500">
    <![CDATA[

      MESSAGE sip:[service]@[to_domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:[field0]@corp.example>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[to_domain]>
      Call-ID: [call_id]
      CSeq: 1 MESSAGE
      Content-Type: text/plain;charset=UTF-8
      Content-Length: [len]

      bench [step] [call_number] [timestamp]
    ]]>
  </send>
  <recv response="100" optional="true" />
  <recv response="${status}" />
</scenario>
`;

const UAS_SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench MESSAGE UAS">
  <recv request="MESSAGE" />
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
`;

export interface UacOptions {
  target: { host: string; port: number };
  user: string;
  domain: string;
  /** Tag written into every body, so stragglers from an earlier step are told apart. */
  step: string;
  rate: number;
  count: number;
  /** SIP users the MESSAGEs come from, in turn (one conversation each with the recipient). */
  fromUsers: readonly string[];
  /** The final response the receiver sends (our bridge 202, Kamailio's route 200). */
  status: string;
  timeoutSec: number;
}

export async function startUac(o: UacOptions): Promise<SippRun> {
  return run(uacScenario(o.status), [
    '-s', o.user,
    '-key', 'to_domain', o.domain,
    '-key', 'step', o.step,
    '-r', String(o.rate),
    '-m', String(o.count),
    // Enough calls open at once for a few seconds of backlog at this rate.
    '-l', String(Math.max(1000, o.rate * 10)),
    '-timeout', `${o.timeoutSec}s`,
    '-inf', 'from.csv',
    `${o.target.host}:${o.target.port}`,
  ], false, undefined, { 'from.csv': `SEQUENTIAL\n${o.fromUsers.map((u) => `${u};`).join('\n')}\n` });
}

export async function startUas(port: number, count: number, timeoutSec: number): Promise<SippRun> {
  return run(UAS_SCENARIO, ['-m', String(count), '-timeout', `${timeoutSec}s`, '-trace_msg', '-message_file', 'messages.log'], true, port);
}

async function run(scenario: string, extra: string[], uas: boolean, fixedPort?: number, files: Record<string, string> = {}): Promise<SippRun> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-sipp-'));
  await writeFile(join(dir, 'scenario.xml'), scenario);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const port = fixedPort ?? (await freePort());
  const args = ['-sf', 'scenario.xml', '-t', 'u1', '-i', '127.0.0.1', '-p', String(port), '-bind_local', '-cp', String(await freePort()), '-nostdin', '-recv_timeout', '10s', ...extra];
  const child = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 5000) stderr += d.toString();
  });
  let exited = false;
  const done = new Promise<number | null>((resolve) => {
    child.once('error', (err) => {
      stderr += err.message;
      exited = true;
      resolve(null);
    });
    child.once('exit', (code) => {
      exited = true;
      resolve(code);
    });
  });
  if (uas) {
    await waitFor(`sipp UAS on udp 127.0.0.1:${port}`, async () => {
      if (exited) throw new Error(`sipp exited during start-up: ${stderr}`);
      return (await readFile(join(dir, 'messages.log')).then(() => true, () => false)) || (await udpTaken(port)) || undefined;
    }, 10_000, 20);
  }
  return {
    port,
    done,
    messages: () => readFile(join(dir, 'messages.log'), 'utf8').catch(() => ''),
    logBytes: () => stat(join(dir, 'messages.log')).then((s) => s.size, () => 0),
    async stop() {
      if (!exited) {
        child.kill('SIGKILL');
        await done;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function udpTaken(port: number): Promise<boolean> {
  const { createSocket } = await import('node:dgram');
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    sock.once('error', () => resolve(true));
    sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(false)));
  });
}

/**
 * Arrival times of bench MESSAGEs in a UAS -trace_msg log: each entry starts with a dashed line
 * ending in "YYYY-MM-DD HH:MM:SS.micros" (local time), then "UDP message received".
 */
export function parseArrivals(log: string, step: string): Array<{ n: number; sentMs: number; atMs: number }> {
  const out: Array<{ n: number; sentMs: number; atMs: number }> = [];
  const re = new RegExp(`-{10,} (\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d+)\\n\\w+ message received[^]*?bench ${step} (\\d+) (\\d+(?:\\.\\d+)?)`, 'g');
  for (const m of log.matchAll(re)) {
    const [base, frac] = m[1]!.split('.') as [string, string];
    const atMs = new Date(`${base.replace(' ', 'T')}.${frac.slice(0, 3)}`).getTime() + Number(frac.slice(3)) / 1000;
    out.push({ n: Number(m[2]), sentMs: Number(m[3]), atMs });
  }
  return out;
}
