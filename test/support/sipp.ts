/**
 * Runs sipp (the SIP traffic generator, Debian package sip-tester) on loopback with a scenario
 * from test/fixtures/sipp, as a UAC calling a target or as a UAS waiting for calls. Each run is
 * a short-lived process: it exits 0 when every call of the scenario succeeded.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from './ports.js';

const INSTALL_HINT = 'sipp not found: run scripts/install-test-peers.sh (Debian package sip-tester)';
const SCENARIOS = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'sipp');

export interface SippOptions {
  /** File name under test/fixtures/sipp, e.g. `uac-message.xml`. */
  scenario: string;
  transport: 'udp' | 'tcp';
  /** `uas` waits on `port`; `uac` calls `target`. */
  role: 'uac' | 'uas';
  /** Where a UAC sends (host:port). */
  target?: { host: string; port: number };
  /** Local port (a UAS listens on it); default a free one. */
  port?: number;
  /** Calls to make or answer before exiting. Default 1. */
  calls?: number;
  /** UAC calls started per second (sipp -r; sipp's default is 10). */
  rate?: number;
  /** Request-URI user part (`[service]` in scenarios). */
  service?: string;
  /**
   * Scenario values, e.g. `{ status: '404', reason: 'Not Found' }`: each is passed as
   * `-key name value` (for `[name]` in message text) and also replaces `{{name}}` in the file
   * before sipp reads it (sipp checks a response's status code before substituting keywords).
   */
  keys?: Record<string, string>;
  /** sipp gives up (and fails) after this many seconds. Default 20. */
  timeoutSec?: number;
}

export interface SippResult {
  /** 0 when every call succeeded. */
  code: number | null;
  output: string;
  /** Unexpected messages sipp saw (-trace_err). */
  errors: string;
  /** Every message sent and received (-trace_msg). */
  messages: string;
}

export interface Sipp {
  readonly port: number;
  /** Resolves when sipp exits. */
  readonly done: Promise<SippResult>;
  /** Stops sipp if it is still running and removes its directory. */
  stop(): Promise<void>;
}

export function sippInstalled(): boolean {
  return spawnSync('sh', ['-c', 'command -v sipp']).status === 0;
}

export async function startSipp(opts: SippOptions): Promise<Sipp> {
  if (!sippInstalled()) throw new Error(INSTALL_HINT);
  const dir = await mkdtemp(join(tmpdir(), 'bridge-sipp-'));
  const port = opts.port ?? (await freePort());
  const scenario = join(dir, opts.scenario);
  let xml = await readFile(join(SCENARIOS, opts.scenario), 'utf8');
  for (const [k, v] of Object.entries(opts.keys ?? {})) xml = xml.replaceAll(`{{${k}}}`, v);
  const missing = /\{\{(\w+)\}\}/.exec(xml);
  if (missing) throw new Error(`sipp scenario ${opts.scenario} needs a value for {{${missing[1]}}}`);
  await writeFile(scenario, xml);
  const args = [
    '-sf', scenario,
    '-t', opts.transport === 'udp' ? 'u1' : 't1',
    '-i', '127.0.0.1',
    '-p', String(port),
    '-bind_local',
    '-m', String(opts.calls ?? 1),
    '-cp', String(await freePort()),
    '-nostdin',
    '-timeout', `${opts.timeoutSec ?? 20}s`,
    '-timeout_error',
    '-trace_err', '-error_file', join(dir, 'errors.log'),
    '-trace_msg', '-message_file', join(dir, 'messages.log'),
  ];
  if (opts.service) args.push('-s', opts.service);
  if (opts.rate !== undefined) args.push('-r', String(opts.rate));
  for (const [k, v] of Object.entries(opts.keys ?? {})) args.push('-key', k, v);
  if (opts.role === 'uac') {
    if (!opts.target) throw new Error('a sipp UAC needs a target');
    args.push(`${opts.target.host}:${opts.target.port}`);
  }

  const child = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let exited = false;
  const done = new Promise<SippResult>((resolve) => {
    child.once('exit', (code) => {
      exited = true;
      void Promise.all([readIfThere(join(dir, 'errors.log')), readIfThere(join(dir, 'messages.log'))]).then(
        ([errors, messages]) => resolve({ code, output, errors, messages }),
      );
    });
  });

  if (opts.role === 'uas') {
    await waitFor(
      `sipp UAS bound to ${opts.transport} 127.0.0.1:${port}`,
      async () => {
        if (exited) throw new Error(`sipp exited during start-up:\n${output}`);
        return (await portTaken(opts.transport, port)) || undefined;
      },
      10_000,
      20,
    );
  }

  return {
    port,
    done,
    async stop() {
      if (!exited) {
        child.kill('SIGKILL');
        await done;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function readIfThere(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/** Whether something already holds `port` on 127.0.0.1 for `transport` (our bind is refused). */
function portTaken(transport: 'udp' | 'tcp', port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (transport === 'udp') {
      const sock = createSocket('udp4');
      sock.once('error', () => resolve(true));
      sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(false)));
    } else {
      const srv = createServer();
      srv.once('error', () => resolve(true));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(false)));
    }
  });
}
