/**
 * Starts a private Kamailio on loopback as the SIP trunk proxy in front of the bridge:
 * MESSAGE requests are relayed statefully (tm) to a target chosen by Request-URI domain.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, tcpAccepts, waitFor } from './ports.js';
import { stopProcess } from './process.js';

export interface KamailioRoute {
  /** Request-URI domain this route takes. */
  domain: string;
  /** Where to relay it, e.g. `sip:127.0.0.1:5080;transport=tcp`. */
  target: string;
}

export interface KamailioOptions {
  routes: KamailioRoute[];
}

export interface Kamailio {
  host: string;
  port: number;
  /** `sip:127.0.0.1:PORT;transport=udp|tcp`, for use as an outbound proxy. */
  uri(transport: 'udp' | 'tcp'): string;
  output(): string;
  stop(): Promise<void>;
}

const INSTALL_HINT = 'kamailio not found: run scripts/install-test-peers.sh (Debian package kamailio)';

export async function startKamailio(options: KamailioOptions): Promise<Kamailio> {
  if (spawnSync('sh', ['-c', 'command -v kamailio']).status !== 0) throw new Error(INSTALL_HINT);
  const dir = await mkdtemp(join(tmpdir(), 'bridge-kamailio-'));
  const port = await freePort();
  const cfgPath = join(dir, 'kamailio.cfg');
  await writeFile(cfgPath, config(port, options.routes));

  const run = await runKamailio(dir, cfgPath, port, `kamailio listening on 127.0.0.1:${port}`);
  return { host: '127.0.0.1', port, uri: (transport) => `sip:127.0.0.1:${port};transport=${transport}`, ...run };
}

/** Process sizes (kamailio -n, -N, -m, -M) and, past TCP readiness, what else start-up waits for. */
export interface KamailioRunOptions {
  readonly workers?: number;
  /** TCP workers; null leaves Kamailio's default (as many as `workers`). */
  readonly tcpWorkers?: number | null;
  readonly sharedMiB?: number;
  readonly pkgMiB?: number;
  /** Another readiness check after the port accepts, with its description. */
  readonly ready?: { readonly what: string; check(): Promise<boolean> };
}

/**
 * Checks a config (`kamailio -c`), runs Kamailio in the foreground with the tail of its output
 * kept, and waits until `port` accepts TCP (and `o.ready`). `stop()` ends it and removes `dir`; a
 * failed start does too.
 */
export async function runKamailio(
  dir: string,
  cfgPath: string,
  port: number,
  what: string,
  o: KamailioRunOptions = {},
): Promise<{ output(): string; pid(): number; stop(): Promise<void> }> {
  const check = spawnSync('kamailio', ['-c', '-f', cfgPath], { encoding: 'utf8' });
  if (check.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`kamailio config check failed:\n${check.stderr}`);
  }
  let output = '';
  const tcpWorkers = o.tcpWorkers === undefined ? 1 : o.tcpWorkers;
  const sizes = ['-n', String(o.workers ?? 2), ...(tcpWorkers === null ? [] : ['-N', String(tcpWorkers)]), '-m', String(o.sharedMiB ?? 32), '-M', String(o.pkgMiB ?? 8)];
  const child: ChildProcess = spawn('kamailio', ['-f', cfgPath, '-DD', '-E', ...sizes, '-P', join(dir, 'kamailio.pid'), '-w', dir, '-Y', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer): void => {
    output = (output + d.toString()).slice(-200_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async (): Promise<void> => {
    await stopProcess(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(what, async () => {
      if (exited) throw new Error(`kamailio exited during start-up:\n${output.slice(-3000)}`);
      return (await tcpAccepts(port)) || undefined;
    }, 15_000, 50);
    const ready = o.ready;
    if (ready !== undefined) {
      await waitFor(ready.what, async () => {
        if (exited) throw new Error(`kamailio exited:\n${output.slice(-3000)}`);
        return (await ready.check()) || undefined;
      }, 15_000, 100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { output: () => output, pid: () => child.pid ?? -1, stop };
}

/**
 * The start of every test Kamailio config: logs to stderr, UDP and TCP on loopback `port`,
 * `core` settings (e.g. `enable_tls=yes`, which must come before the tls module loads), the
 * core modules, then `modules` (e.g. presence) after them.
 */
export function kamailioPreamble(port: number, modules: readonly string[] = [], core: readonly string[] = []): string {
  return [
    '#!KAMAILIO',
    'debug=2',
    'log_stderror=yes',
    'memdbg=5',
    'memlog=5',
    'auto_aliases=no',
    `listen=udp:127.0.0.1:${port}`,
    `listen=tcp:127.0.0.1:${port}`,
    'tcp_connection_lifetime=60',
    ...core,
    '',
    ...['tm', 'sl', 'pv', 'maxfwd', 'textops', 'siputils', 'xlog', ...modules].map((m) => `loadmodule "${m}.so"`),
  ].join('\n');
}

function config(port: number, routes: KamailioRoute[]): string {
  const branches = routes
    .map((r) => `    if ($rd == "${r.domain}") { $du = "${r.target}"; route(RELAY); exit; }`)
    .join('\n');
  return `${kamailioPreamble(port)}

modparam("tm", "fr_timer", 8000)

request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    xlog("L_INFO", "trunk: $rm $ru from $fu\\n");
    if (is_method("OPTIONS") && $rU == $null) { sl_send_reply("200", "OK"); exit; }
    if (!is_method("MESSAGE")) { sl_send_reply("405", "Method Not Allowed"); exit; }
${branches}
    sl_send_reply("404", "Not Found");
    exit;
}

route[RELAY] {
    if (!t_relay()) { sl_reply_error(); }
}
`;
}
