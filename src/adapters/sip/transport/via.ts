/**
 * Via handling at the transport edge: what the server transport writes into a received
 * request's top Via (RFC 3261 §18.2.1, RFC 3581 §4) and where a response goes (RFC 3261 §18.2.2
 * with the RFC 3581 rport step). Pure functions of the message and the packet's source.
 */
import { formatVia, parseVia } from '../codec/uri.js';
import type { SipHeader, SipMessage, Via } from '../codec/message.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** RFC 3261 §19.1.2: the default port of sip: over UDP and TCP. */
export const DEFAULT_SIP_PORT = 5060;

/** The top Via value of a message, or undefined when there is none or it does not parse. */
export function topVia(msg: { headers: readonly SipHeader[] }): Via | undefined {
  const first = msg.headers.find((h) => h.name.toLowerCase() === 'via');
  if (!first) return undefined;
  try {
    return parseVia(first.value)[0];
  } catch {
    return undefined;
  }
}

/**
 * Adds `received` when the sent-by host is not the packet's source address (§18.2.1) and fills
 * an empty `rport` with the source port, in which case `received` is always added (RFC 3581 §4).
 * Returns the request unchanged when it has no parsable Via.
 */
export function stampReceived<T extends SipMessage>(msg: T, source: Endpoint): T {
  const index = msg.headers.findIndex((h) => h.name.toLowerCase() === 'via');
  if (index < 0) return msg;
  let values: Via[];
  try {
    values = parseVia(msg.headers[index]!.value);
  } catch {
    return msg;
  }
  const top = values[0];
  if (!top) return msg;
  const params: Record<string, string | null> = { ...top.params };
  const wantsRport = 'rport' in params && (params['rport'] === null || params['rport'] === '');
  if (wantsRport) params['rport'] = String(source.port);
  if (wantsRport || stripBrackets(top.host) !== stripBrackets(source.host)) params['received'] = stripBrackets(source.host);
  const stamped: Via = { ...top, params };
  const headers = msg.headers.slice();
  headers[index] = { name: msg.headers[index]!.name, value: [stamped, ...values.slice(1)].map(formatVia).join(', ') };
  return { ...msg, headers };
}

/**
 * Where a response goes over an unreliable transport, from its top Via: `received`:`rport`
 * (RFC 3581 §4), else `received`:sent-by port (§18.2.2 third bullet), else sent-by itself.
 * `maddr` (multicast) is not supported by this trunk peer and is ignored.
 */
export function responseDestination(via: Via): Endpoint {
  const received = via.params['received'];
  const rport = via.params['rport'];
  const host = received ? received : stripBrackets(via.host);
  if (received && rport && /^\d+$/.test(rport)) return { host, port: Number(rport) };
  return { host, port: via.port ?? DEFAULT_SIP_PORT };
}

/** Host of a Via or URI without IPv6 brackets, as socket APIs want it. */
export function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

