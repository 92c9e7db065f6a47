/**
 * SIP dialog state (RFC 3261 §12) for subscription dialogs, as plain JSON so it can live in the
 * subscription store, and the pure functions that create it from a request or response and
 * build the requests sent inside it.
 */
import { randomToken } from '../../core/ids.js';
import { headerValue, headerValues, type SipHeader, type SipMessage, type SipRequest } from './codec/message.js';
import { formatNameAddr, formatUri, formatVia, parseNameAddr, parseNameAddrList, parseUri } from './codec/uri.js';
import { cseqOf, MAGIC_COOKIE } from './transaction/layer.js';
import type { Destination, TransportKind } from './transport/transport.js';
import type { Endpoint } from './transport/via.js';

export interface DialogState {
  readonly callId: string;
  readonly localTag: string;
  /** Empty while the subscriber waits for the first NOTIFY or 2xx (RFC 6665 §4.1.2.4). */
  readonly remoteTag: string;
  /** Our URI (From of the requests we send). */
  readonly localUri: string;
  /** The peer's URI (To of the requests we send). */
  readonly remoteUri: string;
  /** Request-URI of the requests we send (the peer's Contact, §12.1). */
  readonly remoteTarget: string;
  /** Route set as `<uri>` values in the order they go into Route (§12.1.1, §12.1.2). */
  readonly routeSet: readonly string[];
  /** Last CSeq number we sent. */
  readonly localSeq: number;
  /** Last CSeq number received, -1 while none (§12.2.2: "empty"). */
  readonly remoteSeq: number;
  /**
   * Where every request of the dialog is sent: the flow the dialog was made on (the address a
   * SUBSCRIBE came from, or the hop our SUBSCRIBE went to). A trunk peer talks to its trunk,
   * and a Contact never makes the bridge send to a host nobody routed it to (RFC 8048 §8.1
   * warns of gateways used for amplification).
   */
  readonly peer: Destination;
}

/** Why a request cannot start or continue a dialog (its caller answers 400). */
export class DialogError extends Error {}

/**
 * RFC 3261 §12.1.1: the UAS side of a dialog a request creates (a SUBSCRIBE we accept, or the
 * NOTIFY that establishes a subscription at the subscriber, RFC 6665 §4.4.1). Route set: the
 * Record-Route values in order; remote target: the Contact.
 */
export function uasDialog(request: SipRequest, localTag: string, peer: Destination): DialogState {
  const callId = headerValue(request, 'Call-ID');
  const cseq = cseqOf(request);
  const from = nameAddrOf(request, 'From');
  const to = nameAddrOf(request, 'To');
  const remoteTag = from.params['tag'];
  if (!callId || !cseq || remoteTag === undefined || remoteTag === null) throw new DialogError('missing Call-ID, CSeq or From tag');
  return {
    callId,
    localTag,
    remoteTag,
    localUri: to.uri,
    remoteUri: from.uri,
    remoteTarget: contactOf(request) ?? from.uri,
    routeSet: recordRoutes(request),
    localSeq: 0,
    remoteSeq: cseq.seq,
    peer,
  };
}

/** What a subscriber knows of its dialog before any answer (RFC 3261 §12.1.2 before the 2xx). */
export function uacDialog(request: SipRequest, peer: Destination): DialogState {
  const callId = headerValue(request, 'Call-ID');
  const cseq = cseqOf(request);
  const from = nameAddrOf(request, 'From');
  const to = nameAddrOf(request, 'To');
  const localTag = from.params['tag'];
  if (!callId || !cseq || !localTag) throw new DialogError('missing Call-ID, CSeq or From tag');
  return {
    callId,
    localTag,
    remoteTag: '',
    localUri: from.uri,
    remoteUri: to.uri,
    remoteTarget: request.uri,
    routeSet: [],
    localSeq: cseq.seq,
    remoteSeq: -1,
    peer,
  };
}

/**
 * The subscriber's dialog once the peer has answered: a 2xx to SUBSCRIBE (RFC 3261 §12.1.2:
 * Record-Route reversed) or a NOTIFY (RFC 6665 §4.4.1: the route set comes from the NOTIFY,
 * taken in order like any request received, §12.1.1). The remote tag is fixed by the first.
 */
export function confirmDialog(dialog: DialogState, message: SipMessage): DialogState {
  const isRequest = message.kind === 'request';
  const peerSide = nameAddrOf(message, isRequest ? 'From' : 'To');
  const tag = peerSide.params['tag'];
  const contact = contactOf(message);
  const routes = recordRoutes(message);
  const cseq = isRequest ? cseqOf(message)?.seq : undefined;
  return {
    ...dialog,
    remoteTag: dialog.remoteTag === '' && tag ? tag : dialog.remoteTag,
    remoteTarget: contact ?? dialog.remoteTarget,
    // §12.1: the route set is fixed when the dialog is made; a later 2xx or NOTIFY keeps it.
    routeSet: dialog.remoteTag === '' ? (isRequest ? routes : routes.reverse()) : dialog.routeSet,
    remoteSeq: cseq ?? dialog.remoteSeq,
  };
}

/** §12.2.2: a request in the dialog, with CSeq checked and the remote target refreshed. */
export function receiveInDialog(dialog: DialogState, request: SipRequest): DialogState | 'out-of-order' {
  const cseq = cseqOf(request);
  if (!cseq) throw new DialogError('missing CSeq');
  // §12.2.2: a CSeq lower than the remote sequence number is out of order (answered 500).
  if (dialog.remoteSeq >= 0 && cseq.seq < dialog.remoteSeq) return 'out-of-order';
  // RFC 6665 §4.1.2 / §4.4.1: SUBSCRIBE and NOTIFY are target refresh requests.
  return { ...dialog, remoteSeq: cseq.seq, remoteTarget: contactOf(request) ?? dialog.remoteTarget };
}

/** Our side of a request: the transport it goes over and our Via sent-by for it. */
export interface LocalSide {
  readonly transport: TransportKind;
  readonly sentBy: Endpoint;
}

/**
 * RFC 3261 §12.2.1.1: a request inside the dialog with the next CSeq. Loose routing when the
 * first route has `lr` (Request-URI = remote target, Route = route set), else strict routing
 * (Request-URI = first route, Route = the rest then the remote target).
 */
export function inDialogRequest(
  dialog: DialogState,
  method: string,
  local: LocalSide,
  extra: readonly SipHeader[],
  body: Buffer = Buffer.alloc(0),
): { request: SipRequest; dialog: DialogState } {
  const localSeq = dialog.localSeq + 1;
  const [first, ...rest] = dialog.routeSet;
  const strict = first !== undefined && !isLooseRoute(first);
  const requestUri = strict ? stripRouteUri(first) : dialog.remoteTarget;
  const routes = strict ? [...rest, `<${dialog.remoteTarget}>`] : dialog.routeSet;
  const headers: SipHeader[] = [
    { name: 'Via', value: newVia(local) },
    { name: 'Max-Forwards', value: '70' },
    ...routes.map((value) => ({ name: 'Route', value })),
    { name: 'From', value: formatNameAddr({ uri: dialog.localUri, params: { tag: dialog.localTag } }) },
    {
      name: 'To',
      value: formatNameAddr({ uri: dialog.remoteUri, params: dialog.remoteTag === '' ? {} : { tag: dialog.remoteTag } }),
    },
    { name: 'Call-ID', value: dialog.callId },
    { name: 'CSeq', value: `${localSeq} ${method}` },
    ...extra,
  ];
  return { request: { kind: 'request', method, uri: requestUri, headers, body }, dialog: { ...dialog, localSeq } };
}

/**
 * A request outside any dialog (RFC 3261 §8.1.1) with fresh Call-ID, tag and branch, all
 * crypto random: the first SUBSCRIBE of a subscription.
 */
export function outOfDialogRequest(
  method: string,
  target: string,
  fromUri: string,
  local: LocalSide,
  route: string | undefined,
  extra: readonly SipHeader[],
): SipRequest {
  const headers: SipHeader[] = [
    { name: 'Via', value: newVia(local) },
    { name: 'Max-Forwards', value: '70' },
    ...(route ? [{ name: 'Route', value: `<${route}>` }] : []),
    { name: 'From', value: formatNameAddr({ uri: fromUri, params: { tag: randomToken(12) } }) },
    { name: 'To', value: formatNameAddr({ uri: target, params: {} }) },
    { name: 'Call-ID', value: `${randomToken(16)}@${local.sentBy.host}` },
    { name: 'CSeq', value: `1 ${method}` },
    ...extra,
  ];
  return { kind: 'request', method, uri: target, headers, body: Buffer.alloc(0) };
}

/** Contact of a request we send: our address, with the user part the peer addressed. */
export function contactFor(user: string | undefined, local: LocalSide): string {
  const params: Record<string, string | null> = local.transport === 'udp' ? {} : { transport: local.transport };
  const uri = formatUri({
    scheme: 'sip',
    ...(user ? { user } : {}),
    host: local.sentBy.host,
    port: local.sentBy.port,
    params,
  });
  return `<${uri}>`;
}

/** The tag of a From or To header, undefined when absent or unreadable. */
export function tagOf(message: SipMessage, header: 'From' | 'To'): string | undefined {
  try {
    return nameAddrOf(message, header).params['tag'] ?? undefined;
  } catch {
    return undefined;
  }
}

function newVia(local: LocalSide): string {
  // RFC 3261 §8.1.1.7: branch = magic cookie + ≥ 96 random bits; rport per RFC 3581 §3.
  return formatVia({
    transport: local.transport.toUpperCase(),
    host: local.sentBy.host,
    port: local.sentBy.port,
    params: { branch: MAGIC_COOKIE + randomToken(12), rport: null },
  });
}

function nameAddrOf(message: SipMessage, header: 'From' | 'To'): { uri: string; params: Readonly<Record<string, string | null>> } {
  const value = headerValue(message, header);
  if (value === undefined) throw new DialogError(`missing ${header}`);
  try {
    return parseNameAddr(value);
  } catch {
    throw new DialogError(`malformed ${header}`);
  }
}

/** The first Contact URI, if any and readable. */
function contactOf(message: SipMessage): string | undefined {
  const value = headerValue(message, 'Contact');
  if (value === undefined) return undefined;
  try {
    const uri = parseNameAddrList(value)[0]?.uri;
    return uri === undefined || uri === '*' ? undefined : uri;
  } catch {
    return undefined;
  }
}

/** Record-Route values in message order, each as `<uri>` with its parameters. */
function recordRoutes(message: SipMessage): string[] {
  try {
    return headerValues(message, 'Record-Route')
      .flatMap((v) => parseNameAddrList(v))
      .map((na) => formatNameAddr({ uri: na.uri, params: na.params }));
  } catch {
    throw new DialogError('malformed Record-Route');
  }
}

function isLooseRoute(route: string): boolean {
  try {
    return 'lr' in parseUri(parseNameAddr(route).uri).params;
  } catch {
    return true; // not a SIP URI we can read: leave the Request-URI alone
  }
}

/** RFC 3261 §12.2.1.1 and §19.1.1: a strict route as Request-URI loses `method` and headers. */
function stripRouteUri(route: string): string {
  const { headers: _headers, params, ...uri } = parseUri(parseNameAddr(route).uri);
  return formatUri({ ...uri, params: Object.fromEntries(Object.entries(params).filter(([name]) => name !== 'method')) });
}
