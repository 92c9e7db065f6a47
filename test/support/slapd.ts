/**
 * Starts a private OpenLDAP `slapd` (Debian 2.5) for a test file: its own temp dir, a slapd.conf
 * (`-f`) with an mdb database seeded offline by `slapadd` from test/fixtures/ldap/directory.ldif,
 * the core/cosine/inetorgperson schemas plus test/fixtures/ldap/ad-lite.schema (the AD attributes
 * OpenLDAP lacks), listening on one free loopback port. Runs in the foreground with `-d stats`, so
 * every connection and BIND is written to its log, which the tests count. Started once per test
 * file (beforeAll), stopped in afterAll; stop()/start() again for "the directory went away".
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, writeFileSync, type WriteStream } from 'node:fs';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, tcpAccepts, waitFor } from './ports.js';
import { stopProcess } from './process.js';

const INSTALL_HINT = 'install the test peers with scripts/install-test-peers.sh';
const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/ldap');
const SLAPD = '/usr/sbin/slapd';
const SLAPADD = '/usr/sbin/slapadd';

export interface SlapdOptions {
  /** LDIF seeded before start; defaults to test/fixtures/ldap/directory.ldif. */
  ldifPath?: string;
  startTimeoutMs?: number;
  /** Log no connections and operations (`-d none`), for benchmarks; bindCount() then stays 0. */
  quiet?: boolean;
  /**
   * Also serve TLS: a test CA and a server certificate for 127.0.0.1 made with openssl, StartTLS
   * on the ldap:// port and an ldaps:// port. Off by default (key generation costs time).
   */
  tls?: boolean;
}

export interface SlapdTls {
  /** `ldaps://127.0.0.1:port`. */
  readonly url: string;
  /** PEM of the CA that signed the server's certificate. */
  readonly caFile: string;
  /** PEM of another CA, which did not sign it (for "wrong CA is refused"). */
  readonly otherCaFile: string;
}

export interface Slapd {
  readonly url: string;
  readonly port: number;
  readonly suffix: 'dc=corp,dc=example';
  readonly peopleDN: 'ou=people,dc=corp,dc=example';
  /** The bridge's service account (the directory refuses anonymous reads). */
  readonly bindDN: 'cn=bridge,ou=services,dc=corp,dc=example';
  readonly bindPassword: 'bridge-secret';
  readonly dir: string;
  /** Present when started with `tls: true`. */
  readonly tls: SlapdTls | undefined;
  /** Whether the server is running now. */
  running(): boolean;
  /** Stops the server, keeping its data and port: lookups must now fail. */
  halt(): Promise<void>;
  /** Starts a halted server again on the same port and data. */
  resume(): Promise<void>;
  /**
   * SIGSTOP, resolved once every thread shows stopped in /proc: connections are then accepted
   * by the kernel but nothing answers. (A thread busy on another core stops a moment after
   * kill() returns, and could still answer one request.)
   */
  freeze(): Promise<void>;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** Stops the server and removes its temp dir. */
  stop(): Promise<void>;
  /** The server's log so far (all runs). */
  log(): Promise<string>;
  /** How many successful simple binds as `dn` the log has shown so far (all runs). */
  bindCount(dn: string): number;
}

export async function startSlapd(opts: SlapdOptions = {}): Promise<Slapd> {
  requireBinary(SLAPD);
  requireBinary(SLAPADD);
  const dir = await mkdtemp(join(tmpdir(), 'slapd-'));
  try {
    return await startIn(dir, opts);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function requireBinary(path: string): void {
  const res = spawnSync(path, ['-VV'], { encoding: 'utf8', timeout: 5_000 });
  if (res.error && (res.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(`${path} not found: ${INSTALL_HINT}`);
  }
}

async function startIn(dir: string, opts: SlapdOptions): Promise<Slapd> {
  const startTimeoutMs = opts.startTimeoutMs ?? 15_000;
  const port = await freePort();
  const url = `ldap://127.0.0.1:${port}`;
  const configPath = join(dir, 'slapd.conf');
  const logPath = join(dir, 'slapd.log');
  await mkdir(join(dir, 'data'));
  let tls: SlapdTls | undefined;
  if (opts.tls) {
    let tlsPort = await freePort();
    while (tlsPort === port) tlsPort = await freePort();
    tls = { url: `ldaps://127.0.0.1:${tlsPort}`, ...makeCertificates(dir) };
  }
  await writeFile(configPath, slapdConfig(dir, tls !== undefined));
  const listen = tls ? `${url}/ ${tls.url}/` : `${url}/`;

  const seeded = spawnSync(SLAPADD, ['-f', configPath, '-l', opts.ldifPath ?? join(FIXTURES, 'directory.ldif')], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (seeded.status !== 0) {
    throw new Error(`slapadd failed (${seeded.status ?? seeded.signal}): ${seeded.stderr}${seeded.stdout}`);
  }

  const logStream: WriteStream = createWriteStream(logPath, { flags: 'a' });
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const binds = new BindCounter();

  const launch = async (): Promise<void> => {
    // -d stats: stay in the foreground and log connections and operations to stderr.
    const proc = spawn(SLAPD, ['-d', opts.quiet ? 'none' : 'stats', '-f', configPath, '-h', listen], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let tail = '';
    proc.stderr?.on('data', (d: Buffer) => {
      logStream.write(d);
      binds.feed(d.toString('utf8'));
      tail = (tail + d.toString('utf8')).slice(-4000);
    });
    exited = new Promise((done) => proc.once('exit', () => done()));
    child = proc;
    let dead: string | undefined;
    proc.once('error', (err) => {
      dead = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${SLAPD} not found: ${INSTALL_HINT}` : err.message;
    });
    void exited.then(() => {
      dead ??= `slapd exited during start-up: ${tail}`;
    });
    try {
      await waitFor(
        `slapd to accept connections on ${url}`,
        async () => {
          if (dead !== undefined) throw new Error(dead);
          const tlsPort = tls ? Number(new URL(tls.url).port) : undefined;
          return (await tcpAccepts(port)) && (tlsPort === undefined || (await tcpAccepts(tlsPort))) ? true : undefined;
        },
        startTimeoutMs,
        25,
      );
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    }
  };

  const halt = (): Promise<void> => stopProcess(child);

  const log = (): Promise<string> => readFile(logPath, 'utf8').catch(() => '');

  await launch();

  return {
    url,
    port,
    suffix: 'dc=corp,dc=example',
    peopleDN: 'ou=people,dc=corp,dc=example',
    bindDN: 'cn=bridge,ou=services,dc=corp,dc=example',
    bindPassword: 'bridge-secret',
    dir,
    tls,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    halt,
    resume: launch,
    freeze: async () => {
      const pid = child?.pid;
      if (pid === undefined) return;
      child?.kill('SIGSTOP');
      await waitFor(`slapd ${pid} to stop`, async () => ((await allThreadsStopped(pid)) ? true : undefined), 5_000, 5);
    },
    thaw: () => child?.kill('SIGCONT'),
    stop: async () => {
      await halt();
      await new Promise<void>((done) => logStream.end(done));
      await rm(dir, { recursive: true, force: true });
    },
    log,
    bindCount: (dn: string) => binds.count(dn),
  };
}

/**
 * Successful simple binds per DN, read from slapd's stats log as it arrives: the request is
 * `conn=N op=M BIND dn="…" method=128`, its answer `conn=N op=M RESULT tag=97 err=0`.
 */
class BindCounter {
  private partial = '';
  private readonly pending = new Map<string, string>();
  private readonly counts = new Map<string, number>();

  feed(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const bind = /(conn=\d+ op=\d+) BIND dn="([^"]*)" method=128/.exec(line);
      if (bind) this.pending.set(bind[1]!, bind[2]!.toLowerCase());
      const result = /(conn=\d+ op=\d+) RESULT tag=97 err=(\d+)/.exec(line);
      const dn = result ? this.pending.get(result[1]!) : undefined;
      if (result && dn !== undefined) {
        this.pending.delete(result[1]!);
        if (result[2] === '0') this.counts.set(dn, (this.counts.get(dn) ?? 0) + 1);
      }
    }
  }

  count(dn: string): number {
    return this.counts.get(dn.toLowerCase()) ?? 0;
  }
}

async function allThreadsStopped(pid: number): Promise<boolean> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => []);
  if (tasks.length === 0) return false;
  for (const task of tasks) {
    const stat = await readFile(`/proc/${pid}/task/${task}/stat`, 'utf8').catch(() => '');
    // Field 3, after the parenthesised command name: T = stopped by a signal.
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'T') return false;
  }
  return true;
}

/** A test CA, a server certificate for 127.0.0.1 signed by it, and an unrelated second CA. */
function makeCertificates(dir: string): { caFile: string; otherCaFile: string } {
  const openssl = (args: string[]): void => {
    const res = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    if (res.error && (res.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`openssl not found: ${INSTALL_HINT}`);
    if (res.status !== 0) throw new Error(`openssl ${args[0]} failed (${res.status}): ${res.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=bridge test CA']);
  openssl(['req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=unrelated CA']);
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext']);
  return { caFile: join(dir, 'ca.pem'), otherCaFile: join(dir, 'other-ca.pem') };
}

function slapdConfig(dir: string, tls: boolean): string {
  return `# written by test/support/slapd.ts
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include ${join(FIXTURES, 'ad-lite.schema')}
pidfile ${join(dir, 'slapd.pid')}
argsfile ${join(dir, 'slapd.args')}
${
  tls
    ? `TLSCACertificateFile ${join(dir, 'ca.pem')}
TLSCertificateFile ${join(dir, 'server.pem')}
TLSCertificateKeyFile ${join(dir, 'server.key')}
`
    : ''
}modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 16777216
suffix "dc=corp,dc=example"
rootdn "cn=admin,dc=corp,dc=example"
rootpw admin-secret
directory ${join(dir, 'data')}
index objectClass eq
index mail,msRTCSIP-PrimaryUserAddress,proxyAddresses eq
index telephoneNumber,mobile eq,sub
index ipPhone sub
# Like AD: anonymous users may only bind; the bridge's service account reads the directory.
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
`;
}
