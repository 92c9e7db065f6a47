/**
 * Container health check for a bridge process (docker-compose.yml), until issue 7's /healthz:
 * reads the container's own socket tables, so it sees what the bridge holds, not what a peer
 * answers. Exit 0 when every condition holds, 1 (with the unmet ones on stderr) otherwise.
 *
 *   node healthcheck.mjs --listen tcp:5060 --listen udp:5060 --connected 6379
 *
 * --listen PROTO:PORT  a socket of this process's container listens on PORT (tcp or udp)
 * --connected PORT     an established TCP connection to a peer's PORT (Redis, the XMPP server)
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';

/** /proc/net/{tcp,udp}[6] rows: local port, remote port, state (hex, include/net/tcp_states.h). */
function sockets(table) {
  const rows = [];
  for (const file of [`/proc/net/${table}`, `/proc/net/${table}6`]) {
    let text;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6 in this container
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4) continue;
      rows.push({ local: portOf(fields[1]), remote: portOf(fields[2]), state: fields[3] });
    }
  }
  return rows;
}

function portOf(address) {
  return Number.parseInt(address.slice(address.lastIndexOf(':') + 1), 16);
}

const TCP_ESTABLISHED = '01';
const TCP_LISTEN = '0A';
// A bound, unconnected UDP socket shows as TCP_CLOSE.
const UDP_UNCONNECTED = '07';

const args = process.argv.slice(2);
const unmet = [];
let conditions = 0;
for (let i = 0; i < args.length; i += 2) {
  const [flag, value] = [args[i], args[i + 1] ?? ''];
  conditions += 1;
  if (flag === '--listen' && /^(tcp|udp):\d+$/.test(value)) {
    const [proto, port] = [value.slice(0, 3), Number(value.slice(4))];
    const state = proto === 'tcp' ? TCP_LISTEN : UDP_UNCONNECTED;
    if (!sockets(proto).some((s) => s.local === port && s.state === state)) unmet.push(`nothing listens on ${value}`);
  } else if (flag === '--connected' && /^\d+$/.test(value)) {
    const port = Number(value);
    if (!sockets('tcp').some((s) => s.remote === port && s.state === TCP_ESTABLISHED)) unmet.push(`no connection to port ${port}`);
  } else {
    process.stderr.write(`healthcheck: bad argument ${flag} ${value} (use --listen tcp|udp:PORT, --connected PORT)\n`);
    process.exit(2);
  }
}
if (conditions === 0) {
  process.stderr.write('healthcheck: no conditions given\n');
  process.exit(2);
}
if (unmet.length > 0) {
  process.stderr.write(`unhealthy: ${unmet.join('; ')}\n`);
  process.exit(1);
}
