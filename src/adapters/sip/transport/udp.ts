/**
 * One UDP socket of the trunk side. Requests go out from the listening socket so the source
 * port equals the Via sent-by port (what RFC 3581 symmetric responses rely on).
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Endpoint } from './via.js';

export class UdpListener {
  private socket: Socket | undefined;
  private boundPort = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly onDatagram: (data: Buffer, source: Endpoint, local: Endpoint) => void,
    private readonly onSocketError: (err: Error) => void,
  ) {}

  get family(): 4 | 6 {
    return isIPv6(this.host) ? 6 : 4;
  }

  get local(): Endpoint {
    return { host: this.host, port: this.boundPort };
  }

  async start(): Promise<void> {
    const socket = createSocket({ type: this.family === 6 ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.port, this.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.boundPort = socket.address().port;
    socket.on('message', (data, rinfo) => this.onDatagram(data, { host: rinfo.address, port: rinfo.port }, this.local));
    // A send error surfaces on the send callback; this catches the rest so the process lives on.
    socket.on('error', (err) => this.onSocketError(err));
    this.socket = socket;
  }

  send(data: Buffer, to: Endpoint): Promise<void> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new Error('UDP socket is not open'));
    return new Promise((resolve, reject) => {
      socket.send(data, to.port, to.host, (err) => (err ? reject(err) : resolve()));
    });
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
