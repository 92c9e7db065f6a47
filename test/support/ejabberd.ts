/**
 * Starts a private ejabberd (Debian 12: 23.01) for a test file, shaped like startProsody so the
 * same test helpers (connectUser) work against it: its own temp dir, YAML config, Mnesia spool
 * and log, loopback-only client and component (XEP-0114, ejabberd_service) ports, no s2s.
 *
 * It runs `erl -s ejabberd` directly rather than through ejabberdctl: ejabberdctl run as root
 * switches to the `ejabberd` system user (`su`), and it needs Erlang distribution (epmd, a node
 * name, a cookie) to talk to the node. Without a node name the server needs neither, so nothing
 * outlives the test; accounts are created by an `-eval` that runs once the application started
 * (`erl` runs `-s` and `-eval` in order in its init process).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Prosody, ProsodyUser } from './prosody.js';
import { freePort, tcpAccepts, waitFor } from './ports.js';
import { serverControls, stopProcess } from './process.js';

export interface EjabberdOptions {
  /** The host users live on. */
  domain?: string;
  /** The external component (XEP-0114) domain the bridge connects as. */
  component?: string;
  secret?: string;
  /** Accounts to create: username → password (letters, digits, `.`, `_`, `-`). */
  users?: Record<string, string>;
  startTimeoutMs?: number;
}

/** The same shape as a Prosody, so test helpers written for Prosody take it unchanged. */
export type Ejabberd = Prosody;

/** Where Debian's ejabberd package puts its Erlang applications (ejabberdctl sets the same). */
const ERL_LIBS = '/usr/lib/x86_64-linux-gnu';
const INSTALL_HINT = 'install the test peers with scripts/install-test-peers.sh (Debian package ejabberd)';
/** What the -eval prints once every account exists. */
const READY = 'EJABBERD-TEST-USERS-READY';
const SAFE = /^[A-Za-z0-9._-]+$/;

export async function startEjabberd(opts: EjabberdOptions = {}): Promise<Ejabberd> {
  const dir = await mkdtemp(join(tmpdir(), 'ejabberd-'));
  try {
    return await startIn(dir, opts);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startIn(dir: string, opts: EjabberdOptions): Promise<Ejabberd> {
  const domain = opts.domain ?? 'xmpp.test';
  const component = opts.component ?? `sip.${domain}`;
  const secret = opts.secret ?? 'component-secret';
  const userTable = opts.users ?? { juliet: 'juliet-pass', romeo: 'romeo-pass' };
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  for (const value of [domain, component, secret, ...Object.entries(userTable).flat()]) {
    // They go into YAML and an Erlang expression unquoted-safe; tests need nothing fancier.
    if (!SAFE.test(value)) throw new Error(`startEjabberd: ${JSON.stringify(value)} must match ${String(SAFE)}`);
  }

  const spool = join(dir, 'spool');
  await mkdir(spool);
  const c2sPort = await freePort();
  let componentPort = await freePort();
  while (componentPort === c2sPort) componentPort = await freePort();
  const configPath = join(dir, 'ejabberd.yml');
  const logPath = join(dir, 'ejabberd.log');
  await writeFile(configPath, ejabberdConfig({ domain, component, secret, c2sPort, componentPort }));

  // ejabberd_auth:try_register/3 answers ok, or {error, exists} on a restart with the same spool.
  const register = Object.entries(userTable)
    .map(([user, pass]) => `ejabberd_auth:try_register(<<"${user}">>, <<"${domain}">>, <<"${pass}">>)`)
    .join(', ');
  const evalExpr = `_ = [${register}], io:format("~s~n", ["${READY}"]).`;

  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const proc = spawn('erl', ['-noinput', '-mnesia', 'dir', JSON.stringify(spool), '-s', 'ejabberd', '-eval', evalExpr], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        HOME: dir,
        ERL_LIBS,
        EJABBERD_CONFIG_PATH: configPath,
        EJABBERD_LOG_PATH: logPath,
        ERL_CRASH_DUMP: join(dir, 'erl_crash.dump'),
        ERL_CRASH_DUMP_BYTES: '0',
      },
    });
    let output = '';
    const collect = (d: Buffer): void => {
      if (output.length < 200_000) output += d.toString('utf8');
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    child = proc;
    let dead: string | undefined;
    proc.once('error', (err: NodeJS.ErrnoException) => {
      dead = err.code === 'ENOENT' ? `erl not found on PATH: ${INSTALL_HINT}` : err.message;
    });
    proc.once('exit', () => {
      dead ??= `ejabberd exited during start-up: ${output.slice(-3000)}`;
    });
    try {
      await waitFor(
        'ejabberd to create its users and accept client and component connections',
        async () => {
          if (dead !== undefined) throw new Error(dead);
          if (!output.includes(READY)) return undefined;
          return (await tcpAccepts(c2sPort)) && (await tcpAccepts(componentPort)) ? true : undefined;
        },
        startTimeoutMs,
        50,
      );
    } catch (err) {
      proc.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n--- ejabberd output tail ---\n${output.slice(-3000)}`, { cause: err });
    }
  };

  // erl (OTP 20+) treats SIGTERM as init:stop(): ejabberd and Mnesia shut down cleanly.
  const halt = (): Promise<void> => stopProcess(child, 10_000);

  await launch();

  const users: ProsodyUser[] = Object.entries(userTable).map(([username, password]) => ({ username, password, jid: `${username}@${domain}` }));
  return {
    host: '127.0.0.1',
    c2sPort,
    componentPort,
    domain,
    component,
    secret,
    users,
    dir,
    logPath,
    ...serverControls({ child: () => child, launch, halt, dir, logPath }),
  };
}

interface ConfigValues {
  domain: string;
  component: string;
  secret: string;
  c2sPort: number;
  componentPort: number;
}

/** The config docs/ejabberd.md quotes: keep them in step. */
export function ejabberdConfig(v: ConfigValues): string {
  return `# written by test/support/ejabberd.ts
hosts:
  - ${v.domain}
loglevel: info
log_rotate_count: 0
# No certificates: no STARTTLS offered; test clients authenticate over loopback in the clear.
certfiles: []
auth_method: internal
auth_password_format: plain
listen:
  -
    port: ${v.c2sPort}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
  -
    # XEP-0114 external component: the bridge.
    port: ${v.componentPort}
    ip: "127.0.0.1"
    module: ejabberd_service
    hosts:
      ${v.component}:
        password: "${v.secret}"
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
`;
}
