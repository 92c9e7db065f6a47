/**
 * Starts a private Kamailio on loopback as a SIP presence server (modules presence and
 * presence_xml, RFC 3856/3903): PUBLISH stores a presentity's PIDF, SUBSCRIBE is answered and
 * followed by NOTIFYs. Authorization is off (presence_xml force_active), state lives in db_text
 * tables in a temporary directory. Every PUBLISH and SUBSCRIBE is logged as a `presence-server:`
 * line so tests can see what reached it.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kamailioPreamble, runKamailio } from './kamailio.js';
import { freePort } from './ports.js';

export interface KamailioPresenceOptions {
  /** Users for whom every SUBSCRIBE is refused with 403 (an authorization refused for good). */
  refuse?: string[];
}

export interface KamailioPresence {
  host: string;
  port: number;
  /** `sip:127.0.0.1:PORT;transport=udp|tcp`, for use as an outbound proxy. */
  uri(transport: 'udp' | 'tcp'): string;
  /** The `presence-server:` lines logged so far, e.g. `SUBSCRIBE sip:bob@… totag=<null> expires=3600 proto=udp callid=…`. */
  requests(): string[];
  output(): string;
  stop(): Promise<void>;
}

const INSTALL_HINT = 'kamailio presence modules not found: run scripts/install-test-peers.sh (kamailio-presence-modules)';
const DBTEXT_SCHEMA = '/usr/share/kamailio/dbtext/kamailio';
/** The db_text tables presence and presence_xml read and write. */
const TABLES = ['version', 'presentity', 'active_watchers', 'watchers', 'xcap', 'pua'];

export async function startKamailioPresence(options: KamailioPresenceOptions = {}): Promise<KamailioPresence> {
  if (spawnSync('sh', ['-c', 'command -v kamailio']).status !== 0) throw new Error(INSTALL_HINT);
  const dir = await mkdtemp(join(tmpdir(), 'bridge-kamailio-presence-'));
  const db = join(dir, 'db');
  await mkdir(db);
  for (const table of TABLES) await copyFile(join(DBTEXT_SCHEMA, table), join(db, table));
  const port = await freePort();
  const cfgPath = join(dir, 'kamailio.cfg');
  await writeFile(cfgPath, config(port, db, options.refuse ?? []));

  const run = await runKamailio(dir, cfgPath, port, `kamailio presence server on 127.0.0.1:${port}`);
  return {
    host: '127.0.0.1',
    port,
    uri: (transport) => `sip:127.0.0.1:${port};transport=${transport}`,
    requests: () => [...run.output().matchAll(/presence-server: (.*)$/gm)].map((m) => m[1]!),
    ...run,
  };
}

function config(port: number, db: string, refuse: string[]): string {
  const refusals = refuse.map((user) => `    if (is_method("SUBSCRIBE") && $rU == "${user}") { sl_send_reply("403", "Forbidden"); exit; }`).join('\n');
  return `${kamailioPreamble(port, ['db_text', 'presence', 'presence_xml'])}

modparam("tm", "fr_timer", 8000)
modparam("presence", "db_url", "text://${db}")
modparam("presence", "server_address", "sip:127.0.0.1:${port}")
modparam("presence", "subs_db_mode", 0)
modparam("presence_xml", "db_url", "text://${db}")
modparam("presence_xml", "force_active", 1)

request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    xlog("L_INFO", "presence-server: $rm $ru totag=$tt expires=$hdr(Expires) proto=$pr callid=$ci\\n");
    if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
${refusals}
    if (is_method("PUBLISH|SUBSCRIBE")) {
        if (!t_newtran()) { sl_reply_error(); exit; }
        if (is_method("PUBLISH")) { handle_publish(); } else { handle_subscribe(); }
        t_release();
        exit;
    }
    sl_send_reply("405", "Method Not Allowed");
    exit;
}
`;
}
