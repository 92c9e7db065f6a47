/**
 * The SIP transport layer (RFC 3261 §18): the UDP, TCP and TLS sockets of the configured `listen`
 * entries, bytes ↔ SipMessage, Via stamping of received requests, response routing, and the
 * refusals that happen before any transaction exists (unparsable → drop, invalid → 400,
 * oversized → 513).
 */
import type { SipConfig } from '../../../config/schema.js';
import type { Logger } from '../../../telemetry/logger.js';
import type { SipMessage, SipRequest, SipResponse } from '../codec/message.js';
import { isKeepAlive, parseMessage } from '../codec/parse.js';
import { SipParseError } from '../codec/parse-error.js';
import { buildResponse } from '../codec/response.js';
import { serializeMessage } from '../codec/serialize.js';
import { BridgeError } from '../../../core/errors.js';
import type { AuditLog } from '../../../core/audit.js';
import { randomToken } from '../../../core/ids.js';
import { formatVia, parseVia } from '../codec/uri.js';
import { TcpTransport, type AdmitConnection, type TcpConnectionInfo } from './tcp.js';
import { matchesDomain, TlsLayer } from './tls.js';
import { UdpListener } from './udp.js';
import { DEFAULT_SIP_PORT, responseDestination, stampReceived, stripBrackets, topVia, type Endpoint } from './via.js';

export type TransportKind = 'udp' | 'tcp' | 'tls';

/** RFC 3261 §19.1.2: the default port of sips: and of SIP over TLS. */
export const DEFAULT_SIPS_PORT = 5061;

/** Where a request goes: an IP literal, a port and a transport. */
export interface Destination extends Endpoint {
  readonly transport: TransportKind;
  /** TLS: the domain the server certificate must name (RFC 5922 §7.2), also sent as SNI. */
  readonly serverName?: string;
  /** TLS: the fingerprints one of which the server certificate must have (a partner's pins). */
  readonly pins?: readonly string[];
}

/** How a message arrived, kept by the server transaction so its responses can be routed back. */
export interface ReceivedFrom {
  readonly transport: TransportKind;
  readonly remote: Endpoint;
  readonly local: Endpoint;
  /** TCP and TLS: the connection it came on (responses go back on it while it is open). */
  readonly connectionId?: number;
  /**
   * TLS: the SIP domains the peer's certificate proved (RFC 5922 §7.1), after the chain was
   * verified against `sip.tls.ca`; absent when the peer showed no verified certificate.
   */
  readonly identities?: readonly string[];
}

export interface BoundPort {
  readonly transport: TransportKind;
  readonly host: string;
  readonly port: number;
}

export interface TransportOptions {
  /** TCP and TLS connections without traffic for this long are closed. Default 60 s. */
  readonly idleConnectionMs?: number;
  /** Open TCP connections at most, and as many TLS ones. Default 1024. */
  readonly maxConnections?: number;
  /**
   * TLS listeners: inbound connections per federation partner, by its certificate (issue 6
   * item 5). Counted in this process: each SIP edge holds its own sockets.
   */
  readonly admitConnection?: AdmitConnection;
  /** The process's audit log of denials (refused handshakes, connections past a cap). */
  readonly audit?: AuditLog;
}

export type MessageHandler = (message: SipMessage, from: ReceivedFrom) => void;

export class SipTransport {
  private readonly udp: UdpListener[];
  private readonly tcp: TcpTransport;
  /** Present when `sip.tls` is configured (listeners, and `sips:` / `;transport=tls` next hops). */
  private readonly tls: TcpTransport | undefined;
  private bound: BoundPort[] = [];

  constructor(
    private readonly config: SipConfig,
    private readonly logger: Logger,
    private readonly onMessage: MessageHandler,
    options: TransportOptions = {},
  ) {
    this.udp = config.listen
      .filter((l) => l.transport === 'udp')
      .map(
        (l) =>
          new UdpListener(
            l.host,
            l.port,
            (data, source, local) => this.receive(data, { transport: 'udp', remote: source, local }),
            (err) => this.logger.error({ err }, 'SIP UDP socket error'),
          ),
      );
    const listenOn = (kind: TransportKind): Endpoint[] =>
      config.listen.filter((l) => l.transport === kind).map((l) => ({ host: l.host, port: l.port }));
    const streamOptions = {
      maxMessageBytes: config.maxMessageBytes,
      idleMs: options.idleConnectionMs ?? 60_000,
      maxConnections: options.maxConnections ?? 1024,
      connectTimeoutMs: 64 * config.timers.t1Ms,
      ...(options.audit === undefined ? {} : { audit: options.audit }),
    };
    this.tcp = new TcpTransport(listenOn('tcp'), streamOptions, (data, conn) => this.receive(data, streamFrom('tcp', conn)), logger);
    this.tls =
      config.tls &&
      new TcpTransport(
        listenOn('tls'),
        { ...streamOptions, ...(options.admitConnection === undefined ? {} : { admit: options.admitConnection }) },
        (data, conn) => this.receive(data, streamFrom('tls', conn)),
        logger,
        new TlsLayer(config.tls, { handshakeTimeoutMs: streamOptions.connectTimeoutMs, maxConnections: streamOptions.maxConnections }, logger, options.audit),
      );
  }

  async start(): Promise<void> {
    const bound: BoundPort[] = [];
    for (const u of this.udp) {
      await u.start();
      bound.push({ transport: 'udp', ...u.local });
    }
    // RFC 3261 §18.2.1: where we listen on UDP we must listen on TCP too, on the same port.
    const udpPortOn = (host: string): number | undefined =>
      this.config.listen.some((l) => l.transport === 'udp' && l.host === host && l.port === 0)
        ? bound.find((b) => b.transport === 'udp' && b.host === host)?.port
        : undefined;
    for (const e of await this.tcp.start(udpPortOn)) bound.push({ transport: 'tcp', ...e });
    for (const e of (await this.tls?.start()) ?? []) bound.push({ transport: 'tls', ...e });
    this.bound = bound;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.udp.map((u) => u.stop()), this.tcp.stop(), this.tls?.stop()]);
  }

  /** The sockets actually bound (a configured port 0 shows the port the system chose). */
  boundPorts(): BoundPort[] {
    return this.bound.slice();
  }

  /** The sent-by to write into our Via for `transport`: advertised host, the bound port. */
  sentBy(transport: TransportKind): Endpoint {
    const own = this.bound.find((b) => b.transport === transport) ?? this.bound[0];
    if (!own) throw new Error('SIP transport is not started');
    const host = this.config.advertisedHost ?? own.host;
    return { host: host.includes(':') && !host.startsWith('[') ? `[${host}]` : host, port: own.port };
  }

  get openConnections(): number {
    return this.tcp.openConnections + (this.tls?.openConnections ?? 0);
  }

  async sendRequest(request: SipRequest, to: Destination): Promise<void> {
    if (to.transport === 'tls') return this.tlsTransport().sendTo(to, this.encode(withAlias(request)));
    const data = this.encode(request);
    if (to.transport === 'tcp') return this.tcp.sendTo(to, data);
    return this.udpFor(to.host).send(data, to);
  }

  /** RFC 3261 §18.2.2 (with the RFC 3581 §4 rport step): back where the request came from. */
  async sendResponse(response: SipResponse, from: ReceivedFrom): Promise<void> {
    const data = this.encode(response);
    const via = topVia(response);
    if (from.transport === 'tcp' || from.transport === 'tls') {
      const stream = from.transport === 'tls' ? this.tlsTransport() : this.tcp;
      if (from.connectionId !== undefined && (await stream.sendOn(from.connectionId, data))) return;
      // The connection is gone: open one to `received` (else sent-by host) at the sent-by port;
      // RFC 3261 §18.2.2 + §26.2.1: over TLS, checked against the sent-by host.
      const host = via?.params['received'] ?? (via ? stripBrackets(via.host) : from.remote.host);
      const port = via?.port ?? (from.transport === 'tls' ? DEFAULT_SIPS_PORT : DEFAULT_SIP_PORT);
      const serverName = via ? stripBrackets(via.host) : host;
      return stream.sendTo(from.transport === 'tls' ? { host, port, serverName } : { host, port }, data);
    }
    const to = via ? responseDestination(via) : from.remote;
    // RFC 3581 §4: sent from the socket the request arrived on.
    const socket = this.udp.find((u) => u.local.port === from.local.port && u.local.host === from.local.host) ?? this.udpFor(to.host);
    return socket.send(data, to);
  }

  private encode(msg: SipMessage): Buffer {
    const data = serializeMessage(msg);
    if (data.length > this.config.maxMessageBytes) {
      throw new BridgeError('SIP_TOO_LARGE', `SIP message of ${data.length} bytes exceeds maxMessageBytes ${this.config.maxMessageBytes}`, {
        condition: 'policy-violation', // RFC 7247 §7.2 Table 3 maps 513 Message Too Large so
        retryable: false,
      });
    }
    return data;
  }

  private tlsTransport(): TcpTransport {
    if (!this.tls) throw new BridgeError('SIP_NO_TLS', 'SIP over TLS needs sip.tls (certificate and key)', { condition: 'remote-server-not-found' });
    return this.tls;
  }

  private udpFor(host: string): UdpListener {
    const family = host.includes(':') ? 6 : 4;
    const socket = this.udp.find((u) => u.family === family);
    if (!socket) throw new Error(`no UDP listener for IPv${family} destination ${host}`);
    return socket;
  }

  private receive(data: Buffer, from: ReceivedFrom): void {
    if (isKeepAlive(data)) return; // RFC 5626 §3.5.1 CRLF keep-alives carry no message
    let message: SipMessage;
    try {
      // TLS is a stream like TCP: Content-Length is mandatory (RFC 3261 §18.3).
      message = parseMessage(data, { maxBytes: this.config.maxMessageBytes, transport: from.transport === 'udp' ? 'udp' : 'tcp' });
    } catch (err) {
      this.refuse(err, data.length, from);
      return;
    }
    if (message.kind === 'request') {
      message = stampReceived(message, from.remote);
      if (from.transport === 'tls') this.acceptAlias(message, from);
    }
    try {
      this.onMessage(message, from);
    } catch (err) {
      this.logger.error({ err, remote: from.remote }, 'SIP message handler failed');
    }
  }

  /** A request we can route an answer to gets the parser's status (400, 513); anything else is dropped. */
  private refuse(err: unknown, bytes: number, from: ReceivedFrom): void {
    const partial = err instanceof SipParseError ? err.partial : undefined;
    const log = { err, remote: from.remote, transport: from.transport, bytes };
    if (!(err instanceof SipParseError) || !partial || partial.method === 'ACK' || !topVia(partial)) {
      this.logger.warn(log, 'unparsable SIP message dropped');
      return;
    }
    this.logger.warn({ ...log, status: err.status }, 'invalid SIP request refused');
    let response: SipResponse;
    try {
      response = buildResponse(stampReceived(partial, from.remote), err.status, { reason: err.reason, toTag: randomToken() });
    } catch (buildErr) {
      this.logger.warn({ err: buildErr, remote: from.remote }, 'could not build a response to an invalid request');
      return;
    }
    this.sendResponse(response, from).catch((sendErr: unknown) =>
      this.logger.warn({ err: sendErr, remote: from.remote }, 'could not send the response to an invalid request'),
    );
  }

  /**
   * RFC 5923 §8.2: a request over TLS whose top Via has `alias` offers its connection for our
   * requests towards the Via sent-by; taken only when the peer's certificate names that host
   * (§9.2), so a later request to that domain and port goes back over it.
   */
  private acceptAlias(request: SipRequest, from: ReceivedFrom): void {
    const via = topVia(request);
    if (!via || !('alias' in via.params) || from.connectionId === undefined || !from.identities) return;
    const host = stripBrackets(via.host);
    if (!matchesDomain(from.identities, host)) return;
    this.tls?.alias(from.connectionId, host, via.port ?? DEFAULT_SIPS_PORT);
  }
}

function streamFrom(transport: 'tcp' | 'tls', conn: TcpConnectionInfo): ReceivedFrom {
  return {
    transport,
    remote: conn.remote,
    local: conn.local,
    connectionId: conn.id,
    ...(conn.identities ? { identities: conn.identities } : {}),
  };
}

/**
 * RFC 5923 §5: our requests over TLS carry `alias` in the top Via, so the peer may send its
 * requests for us back over the connection we opened (and authenticated).
 */
function withAlias(request: SipRequest): SipRequest {
  const index = request.headers.findIndex((h) => h.name.toLowerCase() === 'via');
  const header = request.headers[index];
  if (!header) return request;
  let values;
  try {
    values = parseVia(header.value);
  } catch {
    return request;
  }
  const [top, ...rest] = values;
  if (!top || 'alias' in top.params) return request;
  const headers = request.headers.slice();
  headers[index] = { name: header.name, value: [{ ...top, params: { ...top.params, alias: null } }, ...rest].map(formatVia).join(', ') };
  return { ...request, headers };
}
