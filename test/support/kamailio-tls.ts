/**
 * Starts a private Kamailio on loopback as a federation partner's edge proxy: its users (sipp)
 * send MESSAGEs to it over UDP, and it relays them statefully (tm) to the bridge over TLS,
 * presenting the partner's client certificate (mutual TLS, RFC 5922 §7.1 identities) and
 * verifying the bridge's against the test CA. Needs Kamailio's tls module (Debian package
 * kamailio-tls-modules).
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { kamailioPreamble, runKamailio } from './kamailio.js';
import type { IssuedCert } from './test-ca.js';

const TLS_MODULE = '/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so';
const INSTALL_HINT = 'kamailio or its tls module not found: run scripts/install-test-peers.sh (Debian packages kamailio, kamailio-tls-modules)';

export interface KamailioTlsOptions {
  /** The partner's certificate: shown to the bridge as client and on Kamailio's own TLS listener. */
  cert: IssuedCert;
  /** PEM file of the CA the bridge's server certificate chains to. */
  caFile: string;
  /** Where MESSAGEs go, e.g. `sip:127.0.0.1:5061;transport=tls`. */
  target: string;
  /**
   * tm's final-response timer: how long Kamailio waits before answering its user 408. A failed
   * TLS handshake towards the target shows only as that timeout. Default 8000.
   */
  frTimerMs?: number;
}

export interface KamailioTls {
  host: string;
  /** UDP and TCP port the partner's users send to. */
  port: number;
  /** Kamailio's TLS listener (it needs one to open TLS connections from). */
  tlsPort: number;
  output(): string;
  stop(): Promise<void>;
}

export function kamailioTlsInstalled(): boolean {
  return spawnSync('sh', ['-c', 'command -v kamailio']).status === 0 && existsSync(TLS_MODULE);
}

export async function startKamailioTls(options: KamailioTlsOptions): Promise<KamailioTls> {
  if (!kamailioTlsInstalled()) throw new Error(INSTALL_HINT);
  const dir = await mkdtemp(join(tmpdir(), 'bridge-kamailio-tls-'));
  const port = await freePort();
  const tlsPort = await freePort();
  const tlsCfg = join(dir, 'tls.cfg');
  await writeFile(tlsCfg, tlsProfiles(options));
  const cfgPath = join(dir, 'kamailio.cfg');
  await writeFile(cfgPath, config(port, tlsPort, tlsCfg, options.target, options.frTimerMs ?? 8000));
  const run = await runKamailio(dir, cfgPath, port, `kamailio (TLS partner edge) listening on 127.0.0.1:${port}`);
  return { host: '127.0.0.1', port, tlsPort, ...run };
}

/**
 * The tls module's profiles: as client (towards the bridge) it presents the partner's
 * certificate and verifies the server's chain; as server nobody connects to it in the tests.
 */
function tlsProfiles(o: KamailioTlsOptions): string {
  const profile = (verify: boolean): string[] => [
    'method = TLSv1.2+',
    `verify_certificate = ${verify ? 'yes' : 'no'}`,
    `require_certificate = ${verify ? 'yes' : 'no'}`,
    `private_key = ${o.cert.keyFile}`,
    `certificate = ${o.cert.certFile}`,
    `ca_list = ${o.caFile}`,
  ];
  return ['[server:default]', ...profile(false), '', '[client:default]', ...profile(true), ''].join('\n');
}

function config(port: number, tlsPort: number, tlsCfg: string, target: string, frTimerMs: number): string {
  return `${kamailioPreamble(port, ['tls'], ['enable_tls=yes', `listen=tls:127.0.0.1:${tlsPort}`])}

modparam("tls", "config", "${tlsCfg}")
modparam("tm", "fr_timer", ${frTimerMs})

request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    xlog("L_INFO", "partner edge: $rm $ru from $fu\\n");
    if (!is_method("MESSAGE")) { sl_send_reply("405", "Method Not Allowed"); exit; }
    $du = "${target}";
    if (!t_relay()) { sl_reply_error(); }
    exit;
}
`;
}
