/**
 * Page-mode instant messages (RFC 3428 MESSAGE, IM semantics of RFC 7572) ↔ canonical message
 * events: the paired conversions of the SIP adapter, pure functions of plain values.
 */
import { messageEvent, type Address, type MessageEvent } from '../../core/events.js';
import { randomToken } from '../../core/ids.js';
import { headerValue, type SipHeader, type SipRequest } from './codec/message.js';
import { formatNameAddr, formatUri, formatVia, parseNameAddr, parseUri } from './codec/uri.js';
import { cseqOf, MAGIC_COOKIE } from './transaction/layer.js';
import type { TransportKind } from './transport/transport.js';
import type { Endpoint } from './transport/via.js';

/** What the bridge accepts in a MESSAGE body (RFC 7572 §6: plain text is the common ground). */
export const ACCEPTED_CONTENT_TYPE = 'text/plain';

/** A request the adapter must refuse, with the status and headers to refuse it with. */
export interface Refusal {
  readonly status: number;
  readonly reason?: string;
  readonly headers?: SipHeader[];
}

export type Inbound = { readonly event: MessageEvent } | { readonly refusal: Refusal };

/** MESSAGE → canonical `message`, or why it is refused (415 wrong type, 400 unreadable). */
export function fromSipRequest(request: SipRequest, now: number): Inbound {
  if (!isPlainUtf8Text(headerValue(request, 'Content-Type'))) {
    // RFC 3261 §21.4.13: 415 lists what we do accept.
    return { refusal: { status: 415, headers: [{ name: 'Accept', value: ACCEPTED_CONTENT_TYPE }] } };
  }
  let body: string;
  try {
    body = new TextDecoder('utf-8', { fatal: true }).decode(request.body);
  } catch {
    return { refusal: { status: 400, reason: 'Body Is Not UTF-8' } };
  }
  const fromHeader = headerValue(request, 'From');
  const callId = headerValue(request, 'Call-ID');
  const cseq = cseqOf(request);
  if (!fromHeader || !callId || !cseq) return { refusal: { status: 400, reason: 'Missing From, Call-ID or CSeq' } };
  let to: Address;
  let from: Address;
  let fromTag: string;
  try {
    to = senderAddress(request.uri, '');
    const sender = parseNameAddr(fromHeader);
    fromTag = sender.params['tag'] ?? '';
    from = senderAddress(sender.uri, to.domain);
  } catch {
    return { refusal: { status: 400, reason: 'Malformed Address' } };
  }
  const event = messageEvent({
    origin: 'sip',
    from,
    to,
    body,
    contentType: ACCEPTED_CONTENT_TYPE,
    // Repeats of one MESSAGE (same Call-ID, CSeq, From tag) are delivered once (DESIGN.md).
    dedupeKey: `sip:${callId}:${cseq.seq}:${fromTag}`,
    originRef: callId,
    createdAt: now,
  });
  return { event };
}

/**
 * The address a URI names (Request-URI or From). A `tel:` URI (RFC 3966) or `sip:` with
 * `user=phone` (RFC 3261 §19.1.6) keeps its number as written and is marked `telephone`: the
 * identity chain decides whom it stands for. A tel: URI has no host, so its domain is its
 * `phone-context` when that is a domain name, else `requestDomain`. Display names, URI
 * parameters and headers never reach the address (RFC 7247 §6: only user and host map).
 */
export function senderAddress(uriText: string, requestDomain: string): Address {
  const tel = /^tel:([^;]+)(.*)$/i.exec(uriText);
  if (tel) {
    const context = /;phone-context=([^;]+)/i.exec(tel[2] ?? '')?.[1];
    const domain = context && !context.startsWith('+') ? context.toLowerCase() : requestDomain;
    return { side: 'sip', user: tel[1]!, domain, telephone: true };
  }
  const uri = parseUri(uriText);
  const address: Address = { side: 'sip', user: uri.user ?? '', domain: uri.host };
  return uri.params['user']?.toLowerCase() === 'phone' && address.user !== '' ? { ...address, telephone: true } : address;
}

/** text/plain with charset UTF-8 or no charset (RFC 3428 §9 defaults none to UTF-8 in practice). */
export function isPlainUtf8Text(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [type, ...params] = contentType.split(';').map((p) => p.trim());
  if (type?.toLowerCase() !== ACCEPTED_CONTENT_TYPE) return false;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    if (p.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const value = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    if (value !== 'utf-8' && value !== 'utf8') return false;
  }
  return true;
}

/** Our side of an outbound request: where we are reached and over what. */
export interface LocalHop {
  readonly transport: TransportKind;
  readonly sentBy: Endpoint;
  /** Route set to put in front (RFC 3261 §8.1.2: a loose-routing outbound proxy). */
  readonly route?: string;
}

/** canonical `message` → MESSAGE request with fresh branch, tag and Call-ID (all crypto random). */
export function toSipRequest(event: MessageEvent, hop: LocalHop): SipRequest {
  const requestUri = formatUri({ scheme: 'sip', user: event.to.user, host: event.to.domain, params: {} });
  const fromUri = formatUri({ scheme: 'sip', user: event.from.user, host: event.from.domain, params: {} });
  // RFC 3261 §8.1.1.7 + §17.1: branch = magic cookie + ≥ 96 random bits; rport per RFC 3581 §3.
  const branch = MAGIC_COOKIE + randomToken(12);
  const via = formatVia({
    transport: hop.transport.toUpperCase(),
    host: hop.sentBy.host,
    port: hop.sentBy.port,
    params: { branch, rport: null },
  });
  const headers: SipHeader[] = [
    { name: 'Via', value: via },
    { name: 'Max-Forwards', value: '70' },
    ...(hop.route ? [{ name: 'Route', value: `<${hop.route}>` }] : []),
    { name: 'From', value: formatNameAddr({ uri: fromUri, params: { tag: randomToken(12) } }) },
    { name: 'To', value: formatNameAddr({ uri: requestUri, params: {} }) },
    { name: 'Call-ID', value: `${randomToken(16)}@${hop.sentBy.host}` },
    { name: 'CSeq', value: '1 MESSAGE' },
    { name: 'Content-Type', value: 'text/plain;charset=UTF-8' },
  ];
  return { kind: 'request', method: 'MESSAGE', uri: requestUri, headers, body: Buffer.from(event.body, 'utf8') };
}
