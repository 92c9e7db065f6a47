/**
 * Starts a private dnsmasq (Debian dnsmasq-base) for a test file: a DNS server on a free
 * loopback port (UDP and TCP) answering NAPTR, SRV, TXT and A/AAAA records given on its
 * command line, nothing forwarded. Names under `zones` that have no record get NXDOMAIN (`--local`); names outside
 * them get REFUSED. Started once per test file (beforeAll), stopped in afterAll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, tcpAccepts, waitFor } from './ports.js';
import { stopProcess } from './process.js';

export interface DnsmasqNaptr {
  readonly name: string;
  readonly order: number;
  readonly preference: number;
  readonly flags: string;
  readonly service: string;
  readonly regexp: string;
  readonly replacement?: string;
}

/** An SRV record (RFC 2782): `name` such as `_sip._tcp.example.test`. */
export interface DnsmasqSrv {
  readonly name: string;
  readonly target: string;
  readonly port: number;
  readonly priority?: number;
  readonly weight?: number;
}

export interface DnsmasqOptions {
  readonly naptr: readonly DnsmasqNaptr[];
  readonly srv?: readonly DnsmasqSrv[];
  /** A (or AAAA) records: name → address. */
  readonly hosts?: Readonly<Record<string, string>>;
  /** TXT records (name → text): a name that exists without NAPTR records answers NODATA. */
  readonly txt?: Readonly<Record<string, string>>;
  /** Domains answered from the records only (unknown names → NXDOMAIN). Default `e164.arpa`. */
  readonly zones?: readonly string[];
  readonly startTimeoutMs?: number;
}

export interface Dnsmasq {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly dir: string;
  /** Sends a signal to the server, e.g. SIGSTOP/SIGCONT to freeze it (queries then go unanswered). */
  signal(sig: NodeJS.Signals): void;
  /** Stops the server, keeping its port and directory, so tests can see a source go down. */
  halt(): Promise<void>;
  /** Starts it again on the same port (after halt(), or stops it first). */
  restart(): Promise<void>;
  /** Stops the server and removes its temp dir. */
  stop(): Promise<void>;
  /** The server's query log so far (for failure messages). */
  log(): Promise<string>;
}

const INSTALL_HINT = 'install the test peers with scripts/install-test-peers.sh';

/** `dnsmasq` from PATH, or where Debian puts it (/usr/sbin is not on every user's PATH). */
function dnsmasqBinary(): string {
  const onPath = (process.env['PATH'] ?? '').split(':').find((d) => d !== '' && existsSync(join(d, 'dnsmasq')));
  if (onPath !== undefined) return join(onPath, 'dnsmasq');
  if (existsSync('/usr/sbin/dnsmasq')) return '/usr/sbin/dnsmasq';
  throw new Error(`dnsmasq not found on PATH or in /usr/sbin: ${INSTALL_HINT}`);
}

export async function startDnsmasq(opts: DnsmasqOptions): Promise<Dnsmasq> {
  const binary = dnsmasqBinary();
  const dir = await mkdtemp(join(tmpdir(), 'dnsmasq-'));
  const port = await freePort();
  const logPath = join(dir, 'dnsmasq.log');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const args = [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    `--port=${port}`,
    `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    `--log-facility=${logPath}`,
    '--log-queries',
    // As root dnsmasq would switch to "nobody" and could not write its log in our temp dir.
    ...(isRoot ? ['--user=root'] : []),
    ...(opts.zones ?? ['e164.arpa']).map((z) => `--local=/${z}/`),
    // Passed as argv, so backslashes reach dnsmasq as written (no shell, no config-file unquoting).
    ...opts.naptr.map((r) => {
      const fields = [r.name, r.order, r.preference, r.flags, r.service, r.regexp];
      return `--naptr-record=${[...fields, ...(r.replacement ? [r.replacement] : [])].join(',')}`;
    }),
    ...Object.entries(opts.txt ?? {}).map(([name, text]) => `--txt-record=${name},${text}`),
    ...(opts.srv ?? []).map((r) => `--srv-host=${[r.name, r.target, r.port, r.priority ?? 0, r.weight ?? 0].join(',')}`),
    ...Object.entries(opts.hosts ?? {}).map(([name, address]) => `--host-record=${name},${address}`),
  ];
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const proc = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 10_000) stderr += d.toString('utf8');
    });
    let dead: string | undefined;
    proc.once('error', (err) => {
      dead = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `dnsmasq not found: ${INSTALL_HINT}` : err.message;
    });
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    void exited.then(() => {
      dead ??= `dnsmasq exited during start-up: ${stderr.slice(-2000)}`;
    });
    child = proc;
    try {
      // dnsmasq binds UDP and TCP before it serves; TCP accepting means both are up.
      await waitFor(
        'dnsmasq to accept DNS over TCP',
        async () => {
          if (dead !== undefined) throw new Error(dead);
          return (await tcpAccepts(port)) ? true : undefined;
        },
        startTimeoutMs,
        25,
      );
    } catch (err) {
      proc.kill('SIGKILL');
      const log = await readFile(logPath, 'utf8').catch(() => '');
      throw new Error(`${(err as Error).message}\n--- dnsmasq log tail ---\n${log.slice(-3000)}`, { cause: err });
    }
  };

  const halt = (): Promise<void> => stopProcess(child);

  try {
    await launch();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    host: '127.0.0.1',
    port,
    dir,
    signal: (sig) => {
      child?.kill(sig);
    },
    halt,
    restart: async () => {
      await halt();
      await launch();
    },
    stop: async () => {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
    log: () => readFile(logPath, 'utf8').catch(() => ''),
  };
}
