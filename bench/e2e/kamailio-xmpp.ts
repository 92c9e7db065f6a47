/**
 * Kamailio's own SIP↔XMPP gateway for the bench: its `xmpp` module in component mode on the
 * same Prosody, the fixed copy written by ../shared/tools/kamailio-xmpp-fixed.sh (Debian 12's
 * module dies on the component handshake, kamailio#4154). Needs the Debian package
 * kamailio-xmpp-modules. Addresses follow the module's default encoding: SIP users write to
 * sip:juliet*xmpp.test@DOMAIN, XMPP users to alice*corp.example@DOMAIN.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runKamailio } from '../../test/support/kamailio.js';
import { freePort } from '../../test/support/ports.js';
import type { Prosody } from '../../test/support/prosody.js';

const FIX_SCRIPT = resolve(process.env['KAMAILIO_XMPP_FIX'] ?? '../shared/tools/kamailio-xmpp-fixed.sh');
const SYSTEM_MODULE = '/usr/lib/x86_64-linux-gnu/kamailio/modules/xmpp.so';

export interface KamailioGatewayOptions {
  prosody: Prosody;
  /** The component domain on Prosody, also the gateway's SIP domain. */
  domain: string;
  secret: string;
  /** Where XMPP→SIP MESSAGEs go (the module's outbound_proxy). */
  uasPort: number;
  /** Shared memory in MiB: the fair run is 1024 (64 loses half at 2,000/s). */
  sharedMiB?: number;
  workers?: number;
}

export interface KamailioGateway {
  readonly port: number;
  pid(): number;
  output(): string;
  stop(): Promise<void>;
}

export async function startKamailioGateway(o: KamailioGatewayOptions): Promise<KamailioGateway> {
  if (!existsSync(SYSTEM_MODULE)) throw new Error(`${SYSTEM_MODULE} missing: apt-get install -y kamailio-xmpp-modules`);
  const dir = await mkdtemp(join(tmpdir(), 'bench-kamailio-xmpp-'));
  const fix = spawnSync('bash', [FIX_SCRIPT, dir], { encoding: 'utf8' });
  if (fix.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${FIX_SCRIPT} failed: ${fix.stderr}${fix.stdout}`);
  }
  const port = await freePort();
  const cfgPath = join(dir, 'kamailio.cfg');
  await writeFile(cfgPath, config(port, join(dir, 'xmpp.so'), o));
  const run = await runKamailio(dir, cfgPath, port, `kamailio listening on 127.0.0.1:${port}`, {
    workers: o.workers ?? 4,
    tcpWorkers: null,
    sharedMiB: o.sharedMiB ?? 1024,
    pkgMiB: 16,
    // The module's XMPP process logs nothing on success: its component session shows up in
    // Prosody's log once the handshake is through.
    ready: {
      what: `kamailio's xmpp component to authenticate with Prosody as ${o.domain}`,
      check: async () => new RegExp(`${o.domain.replace(/\./g, '\\.')}:component.*(authenticated|Component successfully)`).test(await o.prosody.log()),
    },
  });
  return { port, ...run };
}

function config(port: number, modulePath: string, o: KamailioGatewayOptions): string {
  return `#!KAMAILIO
debug=1
log_stderror=yes
auto_aliases=no
listen=udp:127.0.0.1:${port}
listen=tcp:127.0.0.1:${port}
alias="${o.domain}"

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "${modulePath}"

modparam("xmpp", "backend", "component")
modparam("xmpp", "xmpp_domain", "${o.domain}")
modparam("xmpp", "gateway_domain", "${o.domain}")
modparam("xmpp", "xmpp_host", "${o.prosody.host}")
modparam("xmpp", "xmpp_port", ${o.prosody.componentPort})
modparam("xmpp", "xmpp_password", "${o.secret}")
modparam("xmpp", "outbound_proxy", "sip:127.0.0.1:${o.uasPort};transport=udp")

request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!is_method("MESSAGE")) { sl_send_reply("405", "Method Not Allowed"); exit; }
    if ($rd != "${o.domain}") { sl_send_reply("404", "Not Found"); exit; }
    if (!t_newtran()) { sl_reply_error(); exit; }
    if (xmpp_send_message()) { t_reply("200", "Accepted"); } else { t_reply("404", "Not Found"); }
    exit;
}
`;
}
