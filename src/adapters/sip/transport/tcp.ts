/**
 * SIP over TCP (RFC 3261 §18.3): Content-Length framing per connection, one connection per
 * remote host:port reused for every request to it, idle connections closed, and a bound on how
 * many are open at once so a peer cannot exhaust file descriptors.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
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
}

export interface TcpConnectionInfo {
  readonly id: number;
  readonly remote: Endpoint;
  readonly local: Endpoint;
}

interface Connection extends TcpConnectionInfo {
  readonly socket: Socket;
  readonly key: string;
}

export class TcpTransport {
  private readonly servers: Server[] = [];
  private readonly connections = new Map<number, Connection>();
  private readonly byRemote = new Map<string, Connection>();
  private readonly connecting = new Map<string, Promise<Connection>>();
  private nextId = 1;
  private stopping = false;

  constructor(
    private readonly listen: readonly Endpoint[],
    private readonly opts: TcpOptions,
    private readonly onFrame: (data: Buffer, conn: TcpConnectionInfo) => void,
    private readonly logger: Logger,
  ) {}

  get openConnections(): number {
    return this.connections.size;
  }

  /**
   * Listens on every configured address. `preferredPort(host)` offers a port for an entry
   * configured with port 0 (the UDP port on that host, RFC 3261 §18.2.1); if it is taken the
   * system picks one.
   */
  async start(preferredPort: (host: string) => number | undefined = () => undefined): Promise<Endpoint[]> {
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
      server.on('error', (err) => this.logger.error({ err }, 'SIP TCP listener error'));
      this.servers.push(server);
      const addr = server.address();
      bound.push({ host: at.host, port: typeof addr === 'object' && addr ? addr.port : at.port });
    }
    return bound;
  }

  private async listenOn(host: string, port: number): Promise<Server> {
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  /** Writes on an open connection to `to`, opening one when there is none (connection reuse). */
  async sendTo(to: Endpoint, data: Buffer): Promise<void> {
    const conn = this.byRemote.get(keyOf(to)) ?? (await this.open(to));
    await write(conn.socket, data);
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
      this.logger.warn({ remote: socket.remoteAddress, open: this.connections.size }, 'SIP TCP connection refused: limit reached');
      socket.destroy();
      return;
    }
    this.adopt(socket);
  }

  private open(to: Endpoint): Promise<Connection> {
    const key = keyOf(to);
    const pending = this.connecting.get(key);
    if (pending) return pending;
    if (this.stopping) return Promise.reject(new Error('SIP TCP transport is stopping'));
    if (this.connections.size >= this.opts.maxConnections) {
      return Promise.reject(new Error(`SIP TCP connection limit (${this.opts.maxConnections}) reached`));
    }
    const attempt = new Promise<Connection>((resolve, reject) => {
      const socket = connect({ host: to.host, port: to.port });
      const timer = setTimeout(() => socket.destroy(new Error(`connect to ${key} timed out`)), this.opts.connectTimeoutMs);
      timer.unref();
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(this.adopt(socket));
      });
    }).finally(() => this.connecting.delete(key));
    this.connecting.set(key, attempt);
    return attempt;
  }

  private adopt(socket: Socket): Connection {
    const remote = { host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const conn: Connection = {
      id: this.nextId++,
      socket,
      remote,
      local: { host: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      key: keyOf(remote),
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
      this.logger.debug({ remote }, 'SIP TCP connection idle: closing');
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = framer.push(chunk);
      } catch (err) {
        // RFC 3261 §18.3: without a usable Content-Length the stream cannot be resynchronised.
        this.logger.warn({ err, remote }, 'SIP TCP framing error: closing connection');
        socket.destroy();
        return;
      }
      for (const frame of frames) this.onFrame(frame, conn);
    });
    socket.on('error', (err) => this.logger.debug({ err, remote }, 'SIP TCP connection error'));
    // A peer that closed its side takes no more requests: stop reusing the connection at once.
    socket.on('end', () => {
      if (this.byRemote.get(conn.key) === conn) this.byRemote.delete(conn.key);
    });
    socket.on('close', () => {
      this.connections.delete(conn.id);
      if (this.byRemote.get(conn.key) === conn) this.byRemote.delete(conn.key);
    });
    return conn;
  }
}

const PONG = Buffer.from('\r\n');

function keyOf(e: Endpoint): string {
  return `${e.host}|${e.port}`;
}

function write(socket: Socket, data: Buffer): Promise<void> {
  if (socket.destroyed || !socket.writable) return Promise.reject(new Error('SIP TCP connection is closed'));
  return new Promise((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));
}
