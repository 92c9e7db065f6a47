/**
 * The SIP transport layer (RFC 3261 §18): the UDP and TCP sockets of the configured `listen`
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
import { randomToken } from '../../../core/ids.js';
import { TcpTransport, type TcpConnectionInfo } from './tcp.js';
import { UdpListener } from './udp.js';
import { DEFAULT_SIP_PORT, responseDestination, stampReceived, stripBrackets, topVia, type Endpoint } from './via.js';

export type TransportKind = 'udp' | 'tcp';

/** Where a request goes: an IP literal, a port and a transport. */
export interface Destination extends Endpoint {
  readonly transport: TransportKind;
}

/** How a message arrived, kept by the server transaction so its responses can be routed back. */
export interface ReceivedFrom {
  readonly transport: TransportKind;
  readonly remote: Endpoint;
  readonly local: Endpoint;
  /** TCP: the connection it came on (responses go back on it while it is open). */
  readonly connectionId?: number;
}

export interface BoundPort {
  readonly transport: TransportKind;
  readonly host: string;
  readonly port: number;
}

export interface TransportOptions {
  /** TCP connections without traffic for this long are closed. Default 60 s. */
  readonly idleConnectionMs?: number;
  /** Open TCP connections at most. Default 1024. */
  readonly maxConnections?: number;
}

export type MessageHandler = (message: SipMessage, from: ReceivedFrom) => void;

export class SipTransport {
  private readonly udp: UdpListener[];
  private readonly tcp: TcpTransport;
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
    const tcpListen = config.listen.filter((l) => l.transport === 'tcp').map((l) => ({ host: l.host, port: l.port }));
    this.tcp = new TcpTransport(
      tcpListen,
      {
        maxMessageBytes: config.maxMessageBytes,
        idleMs: options.idleConnectionMs ?? 60_000,
        maxConnections: options.maxConnections ?? 1024,
        connectTimeoutMs: 64 * config.timers.t1Ms,
      },
      (data, conn) => this.receive(data, tcpFrom(conn)),
      logger,
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
    this.bound = bound;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.udp.map((u) => u.stop()), this.tcp.stop()]);
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
    return this.tcp.openConnections;
  }

  async sendRequest(request: SipRequest, to: Destination): Promise<void> {
    const data = this.encode(request);
    if (to.transport === 'tcp') return this.tcp.sendTo(to, data);
    return this.udpFor(to.host).send(data, to);
  }

  /** RFC 3261 §18.2.2 (with the RFC 3581 §4 rport step): back where the request came from. */
  async sendResponse(response: SipResponse, from: ReceivedFrom): Promise<void> {
    const data = this.encode(response);
    const via = topVia(response);
    if (from.transport === 'tcp') {
      if (from.connectionId !== undefined && (await this.tcp.sendOn(from.connectionId, data))) return;
      // The connection is gone: open one to `received` (else sent-by host) at the sent-by port.
      const host = via?.params['received'] ?? (via ? stripBrackets(via.host) : from.remote.host);
      return this.tcp.sendTo({ host, port: via?.port ?? DEFAULT_SIP_PORT }, data);
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
      message = parseMessage(data, { maxBytes: this.config.maxMessageBytes, transport: from.transport });
    } catch (err) {
      this.refuse(err, data.length, from);
      return;
    }
    if (message.kind === 'request') message = stampReceived(message, from.remote);
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
}

function tcpFrom(conn: TcpConnectionInfo): ReceivedFrom {
  return { transport: 'tcp', remote: conn.remote, local: conn.local, connectionId: conn.id };
}
