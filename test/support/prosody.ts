/**
 * Starts a private Prosody (Debian 0.12) for a test file: its own temp dir, config, data, log
 * and pidfile, loopback-only client and component ports, no s2s. Started once per test file
 * (beforeAll), stopped in afterAll.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, tcpAccepts, waitFor } from './ports.js';
import { serverControls, stopProcess } from './process.js';

export interface ProsodyOptions {
  /** The VirtualHost users live on. */
  domain?: string;
  /** The external component (XEP-0114) domain the bridge connects as. */
  component?: string;
  secret?: string;
  /** More external components on the same server: domain → secret. */
  extraComponents?: Record<string, string>;
  /** Accounts to create: username → password. */
  users?: Record<string, string>;
  /** Lua appended to the global section (before the VirtualHost), e.g. extra limits. */
  extraGlobalConfig?: string;
  startTimeoutMs?: number;
}

export interface ProsodyUser {
  readonly username: string;
  readonly password: string;
  /** Bare JID, e.g. juliet@xmpp.test. */
  readonly jid: string;
}

export interface Prosody {
  readonly host: '127.0.0.1';
  readonly c2sPort: number;
  readonly componentPort: number;
  readonly domain: string;
  readonly component: string;
  readonly secret: string;
  readonly users: readonly ProsodyUser[];
  readonly dir: string;
  readonly logPath: string;
  /** Process id of the running server (changes on restart). */
  pid(): number;
  /** Sends a signal to the server, e.g. SIGSTOP/SIGCONT to freeze it. */
  signal(sig: NodeJS.Signals): void;
  /** Stops and starts the server again on the same ports and data. */
  restart(): Promise<void>;
  /** Stops the server and removes its temp dir. */
  stop(): Promise<void>;
  /** The server's log so far (for failure messages). */
  log(): Promise<string>;
}

const INSTALL_HINT = 'install the test peers with scripts/install-test-peers.sh';

export async function startProsody(opts: ProsodyOptions = {}): Promise<Prosody> {
  const dir = await mkdtemp(join(tmpdir(), 'prosody-'));
  try {
    return await startIn(dir, opts);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startIn(dir: string, opts: ProsodyOptions): Promise<Prosody> {
  const domain = opts.domain ?? 'xmpp.test';
  const component = opts.component ?? `sip.${domain}`;
  const secret = opts.secret ?? 'component-secret';
  const userTable = opts.users ?? { juliet: 'juliet-pass', romeo: 'romeo-pass' };
  const startTimeoutMs = opts.startTimeoutMs ?? 15_000;

  // An empty certs dir keeps certmanager quiet; no certificates means no STARTTLS offered.
  await mkdir(join(dir, 'certs'));
  await mkdir(join(dir, 'data'));
  const c2sPort = await freePort();
  let componentPort = await freePort();
  while (componentPort === c2sPort) componentPort = await freePort();
  const configPath = join(dir, 'prosody.cfg.lua');
  const logPath = join(dir, 'prosody.log');
  await writeFile(
    configPath,
    prosodyConfig({
      dir,
      domain,
      components: { [component]: secret, ...opts.extraComponents },
      c2sPort,
      componentPort,
      logPath,
      extra: opts.extraGlobalConfig ?? '',
    }),
  );

  for (const [username, password] of Object.entries(userTable)) {
    // prosodyctl 0.12: `register USER HOST PASSWORD` (adduser would prompt for the password).
    const res = spawnSync('prosodyctl', ['--config', configPath, 'register', username, domain, password], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    if (res.error && (res.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`prosodyctl not found on PATH: ${INSTALL_HINT}`);
    }
    if (res.status !== 0) {
      throw new Error(`prosodyctl register ${username}@${domain} failed (${res.status}): ${res.stderr}${res.stdout}`);
    }
  }

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const proc = spawn('prosody', ['-F', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 10_000) stderr += d.toString('utf8');
    });
    const spawnError = new Promise<Error>((resolve) => proc.once('error', resolve));
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    child = proc;
    let dead: string | undefined;
    void spawnError.then((err) => {
      dead = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `prosody not found on PATH: ${INSTALL_HINT}` : err.message;
    });
    void exited.then(() => {
      dead ??= `prosody exited during start-up: ${stderr.slice(-2000)}`;
    });
    try {
      await waitFor(
        'prosody to accept client and component connections',
        async () => {
          if (dead !== undefined) throw new Error(dead);
          return (await tcpAccepts(c2sPort)) && (await tcpAccepts(componentPort)) ? true : undefined;
        },
        startTimeoutMs,
        50,
      );
    } catch (err) {
      proc.kill('SIGKILL');
      const log = await readFile(logPath, 'utf8').catch(() => '');
      throw new Error(`${(err as Error).message}\n--- prosody log tail ---\n${log.slice(-3000)}`, { cause: err });
    }
  };

  const halt = (): Promise<void> => stopProcess(child);

  await launch();

  return {
    host: '127.0.0.1',
    c2sPort,
    componentPort,
    domain,
    component,
    secret,
    users: Object.entries(userTable).map(([username, password]) => ({ username, password, jid: `${username}@${domain}` })),
    dir,
    logPath,
    ...serverControls({ child: () => child, launch, halt, dir, logPath }),
  };
}

interface ConfigValues {
  dir: string;
  domain: string;
  components: Record<string, string>;
  c2sPort: number;
  componentPort: number;
  logPath: string;
  extra: string;
}

function prosodyConfig(v: ConfigValues): string {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return `-- written by test/support/prosody.ts
${isRoot ? 'run_as_root = true -- Debian prosody 0.12 refuses to run as root otherwise' : ''}
daemonize = false
pidfile = ${lua(join(v.dir, 'prosody.pid'))}
data_path = ${lua(join(v.dir, 'data'))}
certificates = ${lua(join(v.dir, 'certs'))}
interfaces = { "127.0.0.1" }
c2s_ports = { ${v.c2sPort} }
c2s_interfaces = { "127.0.0.1" }
component_ports = { ${v.componentPort} }
component_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "posix" }
modules_disabled = { "s2s"; "offline"; "tls" }
authentication = "internal_plain"
-- Test clients log in with PLAIN over loopback without TLS.
allow_unencrypted_plain_auth = true
c2s_require_encryption = false
s2s_require_encryption = false
log = { debug = ${lua(v.logPath)} }
${v.extra}
VirtualHost ${lua(v.domain)}
${Object.entries(v.components)
  .map(([name, secret]) => `Component ${lua(name)}\n  component_secret = ${lua(secret)}`)
  .join('\n')}
`;
}

function lua(s: string): string {
  return JSON.stringify(s);
}

