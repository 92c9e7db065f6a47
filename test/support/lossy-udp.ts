/**
 * A loopback UDP relay between a client and a target that can drop the first datagram(s) in
 * either direction: a stand-in for a lossy network, to prove SIP retransmission over UDP.
 * Datagrams from the target go back to the client that spoke last.
 */
import { createSocket, type Socket } from 'node:dgram';

export interface LossyUdpOptions {
  target: { host: string; port: number };
  /** Datagrams client → target to drop before forwarding. */
  dropToTarget?: number;
  /** Datagrams target → client to drop before forwarding. */
  dropToClient?: number;
}

export interface Counts {
  forwarded: number;
  dropped: number;
}

export class LossyUdpRelay {
  /** What passed (or not) in each direction; first lines of each datagram, for failure messages. */
  readonly toTarget: Counts = { forwarded: 0, dropped: 0 };
  readonly toClient: Counts = { forwarded: 0, dropped: 0 };
  readonly seen: string[] = [];
  private client: { host: string; port: number } | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly opts: LossyUdpOptions,
  ) {}

  static async start(opts: LossyUdpOptions): Promise<LossyUdpRelay> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve());
    });
    const relay = new LossyUdpRelay(socket, opts);
    socket.on('message', (data, rinfo) => relay.relay(data, { host: rinfo.address, port: rinfo.port }));
    return relay;
  }

  get port(): number {
    return this.socket.address().port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private relay(data: Buffer, from: { host: string; port: number }): void {
    const { target } = this.opts;
    const fromTarget = from.host === target.host && from.port === target.port;
    const firstLine = data.toString('utf8', 0, Math.min(data.length, 80)).split('\r\n')[0] ?? '';
    if (fromTarget) {
      if (!this.client) return;
      if (this.toClient.dropped < (this.opts.dropToClient ?? 0)) {
        this.toClient.dropped++;
        this.seen.push(`dropped → client: ${firstLine}`);
        return;
      }
      this.toClient.forwarded++;
      this.seen.push(`→ client: ${firstLine}`);
      this.socket.send(data, this.client.port, this.client.host);
      return;
    }
    this.client = from;
    if (this.toTarget.dropped < (this.opts.dropToTarget ?? 0)) {
      this.toTarget.dropped++;
      this.seen.push(`dropped → target: ${firstLine}`);
      return;
    }
    this.toTarget.forwarded++;
    this.seen.push(`→ target: ${firstLine}`);
    this.socket.send(data, target.port, target.host);
  }
}
