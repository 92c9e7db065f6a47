/**
 * SIP over a stream (RFC 3261 §18.3): Content-Length framing per connection, one connection per
 * remote host:port reused for every request to it, idle connections closed, and a bound on how
 * many are open at once so a peer cannot exhaust file descriptors. The same class carries TLS
 * (tls.ts): a StreamLayer says how sockets are made, everything after that is shared.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { AuditLog } from '../../../core/audit.js';
import type { Logger } from '../../../telemetry/logger.js';
import { SipStreamFramer } from '../codec/framer.js';
import type { Endpoint } from './via.js';

export interface TcpOptions {
  readonly maxMessageBytes: number;
  /** A connection with no traffic for this long is closed. */
  readonly idleMs: number;
  /** Open connections (inbound and outbound together) at most. */
  readonly maxConnections: number;
  /** An outbound connect that has not completed by then fails. */
  readonly connectTimeoutMs: number;
  /** Caps inbound connections per peer (a federation partner); see AdmitConnection. */
  readonly admit?: AdmitConnection;
  /** Where refusals are written; one of its own on the logger unless given. */
  readonly audit?: AuditLog;
}

/** An inbound connection's peer, as the listener knows it once the connection may carry SIP. */
export interface ConnectingPeer {
  /** RFC 5922 §7.1 identities of its verified certificate; empty when it showed none. */
  readonly certificateIdentities: readonly string[];
  /** SHA-256 of the certificate it presented (Node's `fingerprint256`), if any. */
  readonly fingerprint?: string;
  /** `host:port`, for the audit line. */
  readonly remote: string;
}

/**
 * Issue 6 item 5: inbound connections counted under `key` (its partner), at most `limit` open
 * at once in this process; undefined leaves the peer to the listener's overall bound only.
 */
export type AdmitConnection = (peer: ConnectingPeer) => { readonly key: string; readonly limit: number; readonly rule?: string } | undefined;

export interface TcpConnectionInfo {
  readonly id: number;
  readonly remote: Endpoint;
  readonly local: Endpoint;
  /** TLS: the peer certificate's verified identities (RFC 5922 §7.1); undefined when it showed none. */
  readonly identities?: readonly string[];
}

/** Where an outbound connection goes; TLS also checks the server certificate names `serverName`. */
export interface StreamTarget extends Endpoint {
  readonly serverName?: string;
  /**
   * TLS: SHA-256 fingerprints (Node's `fingerprint256` form) of which the server's certificate
   * must be one, besides naming `serverName` (a partner's `trust.fingerprints`).
   */
  readonly pins?: readonly string[];
}

/** What differs between plain TCP and TLS: how listeners and outbound connections are made. */
export interface StreamLayer {
  /** `TCP` or `TLS`, for log lines and errors. */
  readonly name: string;
  /** Reads what the layer needs from disk; called once by start(). */
  prepare(): Promise<void>;
  /** A server handing each connection to `onSocket` once it may carry SIP (TLS: after the handshake). */
  createServer(onSocket: (socket: Socket) => void): Server;
  /** A connection to `to` that may carry SIP (TLS: handshake done, server verified), within `timeoutMs`. */
  connect(to: StreamTarget, timeoutMs: number): Promise<Socket>;
  /** The peer's verified identities, undefined when it did not authenticate. */
  identities(socket: Socket): readonly string[] | undefined;
  /** SHA-256 of the certificate the peer presented; plain TCP has none. */
  fingerprint?(socket: Socket): string | undefined;
}

/** Plain TCP. */
export const plainTcp: StreamLayer = {
  name: 'TCP',
  prepare: () => Promise.resolve(),
  createServer: (onSocket) => createServer(onSocket),
  connect: (to, timeoutMs) => whenReady(connect({ host: to.host, port: to.port }), 'connect', timeoutMs, keyOf(to)),
  identities: () => undefined,
};

/**
 * Resolves with `socket` once it emits `event`, rejects on an error first or when `timeoutMs`
 * passes (the socket is destroyed then).
 */
export function whenReady(socket: Socket, event: 'connect' | 'secureConnect', timeoutMs: number, what: string): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`connect to ${what} timed out`), { code: 'ETIMEDOUT' })), timeoutMs);
    timer.unref();
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once(event, () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

interface Connection extends TcpConnectionInfo {
  readonly socket: Socket;
  readonly key: string;
  /** SHA-256 of the peer's certificate (TLS), for destinations that pin one. */
  readonly fingerprint?: string;
}

export class TcpTransport {
  private readonly servers: Server[] = [];
  private readonly connections = new Map<number, Connection>();
  private readonly byRemote = new Map<string, Connection>();
  /** RFC 5923 §5: connections a TLS peer offered for requests towards it, by `name|port`. */
  private readonly aliases = new Map<string, Connection>();
  /** The one alias each connection holds at most (so a peer cannot grow the table). */
  private readonly aliasOf = new Map<number, string>();
  private readonly connecting = new Map<string, Promise<Connection>>();
  /** Inbound connections open per AdmitConnection key. */
  private readonly admitted = new Map<string, number>();
  private readonly audit: AuditLog;
  private nextId = 1;
  private stopping = false;

  constructor(
    private readonly listen: readonly Endpoint[],
    private readonly opts: TcpOptions,
    private readonly onFrame: (data: Buffer, conn: TcpConnectionInfo) => void,
    private readonly logger: Logger,
    private readonly layer: StreamLayer = plainTcp,
  ) {
    this.audit = opts.audit ?? new AuditLog(logger);
  }

  get openConnections(): number {
    return this.connections.size;
  }

  /**
   * Listens on every configured address. `preferredPort(host)` offers a port for an entry
   * configured with port 0 (the UDP port on that host, RFC 3261 §18.2.1); if it is taken the
   * system picks one.
   */
  async start(preferredPort: (host: string) => number | undefined = () => undefined): Promise<Endpoint[]> {
    await this.layer.prepare();
    const bound: Endpoint[] = [];
    for (const at of this.listen) {
      const preferred = at.port === 0 ? preferredPort(at.host) : undefined;
      let server: Server;
      try {
        server = await this.listenOn(at.host, preferred ?? at.port);
      } catch (err) {
        if (preferred === undefined) throw err;
        server = await this.listenOn(at.host, 0);
      }
      server.on('error', (err) => this.logger.error({ err }, `SIP ${this.layer.name} listener error`));
      this.servers.push(server);
      const addr = server.address();
      bound.push({ host: at.host, port: typeof addr === 'object' && addr ? addr.port : at.port });
    }
    return bound;
  }

  private async listenOn(host: string, port: number): Promise<Server> {
    const server = this.layer.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  /**
   * Writes on an open connection to `to`, opening one when there is none (connection reuse):
   * one we opened to the same address for the same server name, or a TLS connection the peer
   * offered under that name and port (RFC 5923 §5).
   */
  async sendTo(to: StreamTarget, data: Buffer): Promise<void> {
    const alias = to.serverName === undefined ? undefined : this.aliases.get(aliasKey(to.serverName, to.port));
    const conn = usableFor(to, this.byRemote.get(keyOf(to))) ?? usableFor(to, alias) ?? (await this.open(to));
    await write(conn.socket, data);
  }

  /**
   * RFC 5923 §5: the peer on connection `id` takes requests for `name`:`port` over it. The
   * caller has checked that the connection's identities cover `name` (§9.2).
   */
  alias(id: number, name: string, port: number): void {
    const conn = this.connections.get(id);
    if (!conn || conn.socket.destroyed) return;
    this.forgetAlias(conn);
    const key = aliasKey(name, port);
    this.aliases.set(key, conn);
    this.aliasOf.set(conn.id, key);
  }

  /** Writes on connection `id` if it is still open; false when it is gone. */
  async sendOn(id: number, data: Buffer): Promise<boolean> {
    const conn = this.connections.get(id);
    if (!conn || conn.socket.destroyed) return false;
    await write(conn.socket, data);
    return true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const closing = [...this.connections.values()].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.socket.destroyed) return resolve();
          c.socket.once('close', () => resolve());
          c.socket.end();
          // A peer that never closes its side must not hold shutdown.
          setTimeout(() => c.socket.destroy(), 1000).unref();
        }),
    );
    const servers = this.servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    await Promise.all([...closing, ...servers]);
  }

  private accept(socket: Socket): void {
    if (this.stopping || this.connections.size >= this.opts.maxConnections) {
      this.logger.warn(
        { remote: socket.remoteAddress, open: this.connections.size },
        `SIP ${this.layer.name} connection refused: limit reached`,
      );
      socket.destroy();
      return;
    }
    const key = this.admission(socket);
    if (key === false) return;
    this.adopt(socket);
    if (key === undefined) return;
    this.admitted.set(key, (this.admitted.get(key) ?? 0) + 1);
    socket.once('close', () => {
      const left = (this.admitted.get(key) ?? 1) - 1;
      if (left > 0) this.admitted.set(key, left);
      else this.admitted.delete(key);
    });
  }

  /**
   * The key an inbound connection counts under, undefined when it is not counted, or false when
   * its key is at its limit: the socket is then destroyed before a byte of SIP is read, and the
   * refusal written to the audit log (folded there, so a flood of connections is a few lines).
   */
  private admission(socket: Socket): string | undefined | false {
    if (this.opts.admit === undefined) return undefined;
    const identities = this.layer.identities(socket) ?? [];
    const fingerprint = this.layer.fingerprint?.(socket);
    const remote = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
    let cap: ReturnType<AdmitConnection>;
    try {
      cap = this.opts.admit({ certificateIdentities: identities, remote, ...(fingerprint === undefined ? {} : { fingerprint }) });
    } catch (err) {
      // A listener callback must not throw; the overall bound still holds for this peer.
      this.logger.error({ err, remote }, `SIP ${this.layer.name} connection admission failed: not counted`);
      return undefined;
    }
    if (cap === undefined) return undefined;
    const open = this.admitted.get(cap.key) ?? 0;
    if (open < cap.limit) return cap.key;
    this.audit.deny({
      rule: 'partner-connections',
      who: [cap.key, socket.remoteAddress ?? '', ...identities].join(' '),
      what: 'connection',
      reason: `${cap.rule ?? cap.key}: ${open} of ${cap.limit} open`,
      details: { partner: cap.key, remote, transport: this.layer.name },
    });
    socket.destroy();
    return false;
  }

  private open(to: StreamTarget): Promise<Connection> {
    const key = keyOf(to);
    const pending = this.connecting.get(key);
    if (pending) return pending;
    const name = this.layer.name;
    if (this.stopping) return Promise.reject(new Error(`SIP ${name} transport is stopping`));
    if (this.connections.size >= this.opts.maxConnections) {
      return Promise.reject(new Error(`SIP ${name} connection limit (${this.opts.maxConnections}) reached`));
    }
    const attempt = this.layer
      .connect(to, this.opts.connectTimeoutMs)
      .then((socket) => this.adopt(socket, key))
      .finally(() => this.connecting.delete(key));
    this.connecting.set(key, attempt);
    return attempt;
  }

  /** `key`: what sendTo finds the connection by (an outbound one also by the server name it was verified for). */
  private adopt(socket: Socket, key?: string): Connection {
    const remote = { host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const identities = this.layer.identities(socket);
    const fingerprint = this.layer.fingerprint?.(socket);
    const conn: Connection = {
      id: this.nextId++,
      socket,
      remote,
      local: { host: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      key: key ?? keyOf(remote),
      ...(identities ? { identities } : {}),
      ...(fingerprint === undefined ? {} : { fingerprint: fingerprint.toUpperCase() }),
    };
    this.connections.set(conn.id, conn);
    this.byRemote.set(conn.key, conn);
    const framer = new SipStreamFramer({
      maxMessageBytes: this.opts.maxMessageBytes,
      // RFC 5626 §3.5.1: a CRLFCRLF ping is answered with a CRLF pong.
      onKeepAlivePing: () => void write(socket, PONG).catch(() => undefined),
    });
    socket.setNoDelay(true);
    socket.setTimeout(this.opts.idleMs, () => {
      this.logger.debug({ remote }, `SIP ${this.layer.name} connection idle: closing`);
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = framer.push(chunk);
      } catch (err) {
        // RFC 3261 §18.3: without a usable Content-Length the stream cannot be resynchronised.
        this.logger.warn({ err, remote }, `SIP ${this.layer.name} framing error: closing connection`);
        socket.destroy();
        return;
      }
      for (const frame of frames) this.onFrame(frame, conn);
    });
    socket.on('error', (err) => this.logger.debug({ err, remote }, `SIP ${this.layer.name} connection error`));
    // A peer that closed its side takes no more requests: stop reusing the connection at once.
    socket.on('end', () => this.forget(conn));
    socket.on('close', () => {
      this.connections.delete(conn.id);
      this.forget(conn);
    });
    return conn;
  }

  private forget(conn: Connection): void {
    if (this.byRemote.get(conn.key) === conn) this.byRemote.delete(conn.key);
    this.forgetAlias(conn);
  }

  private forgetAlias(conn: Connection): void {
    const key = this.aliasOf.get(conn.id);
    if (key === undefined) return;
    this.aliasOf.delete(conn.id);
    if (this.aliases.get(key) === conn) this.aliases.delete(key);
  }
}

const PONG = Buffer.from('\r\n');

/** A pinned destination reuses only a connection whose peer showed a pinned certificate. */
function usableFor(to: StreamTarget, conn: Connection | undefined): Connection | undefined {
  if (conn === undefined || to.pins === undefined) return conn;
  return conn.fingerprint !== undefined && to.pins.includes(conn.fingerprint) ? conn : undefined;
}

function keyOf(e: StreamTarget): string {
  return `${e.host}|${e.port}|${e.serverName?.toLowerCase() ?? ''}`;
}

function aliasKey(name: string, port: number): string {
  return `${name.toLowerCase()}|${port}`;
}

function write(socket: Socket, data: Buffer): Promise<void> {
  if (socket.destroyed || !socket.writable) return Promise.reject(new Error('SIP connection is closed'));
  return new Promise((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));
}
