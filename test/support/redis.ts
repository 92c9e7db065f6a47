/**
 * A Redis for the Redis backends' tests: a private `redis-server` (Debian package redis-server)
 * on a free loopback port, its own temp dir, no snapshots; or, when REDIS_URL is set, that
 * server (then stop/restart/kill are refused: it is not ours to stop). Started once per test
 * file (beforeAll); tests keep apart by a fresh key prefix each (`prefix()`).
 *
 * `durable: true` runs with `--appendonly yes --appendfsync always`, so what Redis acknowledged
 * survives stop()/kill() and restart() (for durability and chaos tests).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, tcpAccepts, waitFor } from './ports.js';
import { stopProcess } from './process.js';

const REDIS_SERVER = 'redis-server';
const INSTALL_HINT = 'redis-server not found: run scripts/install-test-peers.sh (Debian package redis-server)';

export interface RedisServerOptions {
  /** Append-only file fsynced on every write, kept across stop()/restart(). */
  durable?: boolean;
  /** Ignore REDIS_URL and start a private server (tests that stop or kill Redis). */
  private?: boolean;
  startTimeoutMs?: number;
}

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** `redis://host:port[/db]`. */
  readonly url: string;
  /** True when this is the server REDIS_URL names, not one the tests started. */
  readonly external: boolean;
  /** A key prefix no other test uses, e.g. `t1700000000000-3`. */
  prefix(): string;
  running(): boolean;
  /** SIGTERM, keeping the port and data dir: clients now see Redis gone. */
  stop(): Promise<void>;
  /** SIGKILL, keeping the port and data dir: only what was fsynced survives. */
  kill(): Promise<void>;
  /** Starts a stopped or killed server again on the same port and data dir (or restarts a running one). */
  restart(): Promise<void>;
  /** Stops the server and removes its data dir. */
  close(): Promise<void>;
  /** The server's log (its stdout) so far, all runs. */
  output(): string;
}

let prefixes = 0;
const nextPrefix = (): string => `t${Date.now()}-${process.pid}-${++prefixes}`;

export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const external = process.env['REDIS_URL'];
  if (external && !options.private) return externalRedis(external);
  if (spawnSync('sh', ['-c', `command -v ${REDIS_SERVER}`]).status !== 0) throw new Error(INSTALL_HINT);
  const dir = await mkdtemp(join(tmpdir(), 'bridge-redis-'));
  try {
    return await startIn(dir, options);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function externalRedis(url: string): RedisServer {
  const parsed = new URL(url);
  const refuse = async (): Promise<never> => {
    throw new Error('the Redis named by REDIS_URL is not stopped by tests; start this test with { private: true }');
  };
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    url,
    external: true,
    prefix: nextPrefix,
    running: () => true,
    stop: refuse,
    kill: refuse,
    restart: refuse,
    close: async () => {},
    output: () => '',
  };
}

async function startIn(dir: string, options: RedisServerOptions): Promise<RedisServer> {
  const host = '127.0.0.1';
  const port = await freePort();
  const args = [
    '--port', String(port),
    '--bind', host,
    '--dir', dir,
    '--save', '',
    ...(options.durable ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    '--daemonize', 'no',
    '--logfile', '',
  ];
  let child: ChildProcess | undefined;
  let output = '';

  const launch = async (): Promise<void> => {
    const proc = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let ready = false;
    let tail = '';
    const append = (d: Buffer): void => {
      const text = d.toString('utf8');
      output = (output + text).slice(-20_000);
      tail = (tail + text).slice(-200);
      ready ||= tail.includes('Ready to accept connections');
    };
    proc.stdout?.on('data', append);
    proc.stderr?.on('data', append);
    let dead: string | undefined;
    proc.once('error', (err) => (dead = err.message));
    proc.once('exit', (code, signal) => (dead ??= `redis-server exited (${code ?? signal}) during start-up:\n${output}`));
    child = proc;
    try {
      await waitFor(
        `redis-server on ${host}:${port}`,
        async () => {
          if (dead !== undefined) throw new Error(dead);
          // Accepting TCP is not enough with an append-only file to load: wait for its banner.
          return ready && (await tcpAccepts(port)) ? true : undefined;
        },
        options.startTimeoutMs ?? 10_000,
        10,
      );
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    }
  };

  const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  const stop = (): Promise<void> => stopProcess(child);

  await launch();
  return {
    host,
    port,
    url: `redis://${host}:${port}`,
    external: false,
    prefix: nextPrefix,
    running,
    stop,
    kill: async () => {
      const proc = child;
      if (!proc || !running()) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGKILL');
      await exited;
    },
    restart: async () => {
      await stop();
      await launch();
    },
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
    output: () => output,
  };
}
