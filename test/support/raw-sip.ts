/**
 * A bare SIP peer for tests that must send bytes no real user agent would (malformed requests,
 * exact retransmissions): a UDP socket or a TCP connection on loopback that collects whatever
 * comes back, one whole message at a time.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface RawRequestOptions {
  method?: string;
  uri?: string;
  branch?: string;
  callId?: string;
  cseq?: number;
  fromTag?: string;
  contentType?: string | null;
  body?: string;
  /** Replaces the whole CSeq header line (for malformed cases). */
  cseqLine?: string;
  via?: { transport: 'UDP' | 'TCP'; port: number };
  /** Whole header lines added before Content-Type, e.g. `Require: 100rel`. */
  extraHeaders?: string[];
}

/** A request as text; Content-Length counts body bytes. */
export function rawRequest(o: RawRequestOptions = {}): string {
  const method = o.method ?? 'MESSAGE';
  const body = o.body ?? '';
  const lines = [
    `${method} ${o.uri ?? 'sip:bob@xmpp.example.org'} SIP/2.0`,
    `Via: SIP/2.0/${o.via?.transport ?? 'UDP'} 127.0.0.1:${o.via?.port ?? 9};branch=${o.branch ?? newBranch()};rport`,
    'Max-Forwards: 70',
    `From: <sip:carol@sip.example.com>;tag=${o.fromTag ?? 'raw1'}`,
    'To: <sip:bob@xmpp.example.org>',
    `Call-ID: ${o.callId ?? `${randomBytes(8).toString('hex')}@127.0.0.1`}`,
    o.cseqLine ?? `CSeq: ${o.cseq ?? 1} ${method}`,
  ];
  lines.push(...(o.extraHeaders ?? []));
  const contentType = o.contentType === undefined ? 'text/plain;charset=UTF-8' : o.contentType;
  if (contentType !== null) lines.push(`Content-Type: ${contentType}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
  return lines.join('\r\n');
}

export function newBranch(): string {
  return `z9hG4bK${randomBytes(12).toString('hex')}`;
}

/** The status code of a response text, and a header's value. */
export function statusOf(response: string): number {
  return Number(/^SIP\/2\.0 (\d{3})/.exec(response)?.[1] ?? NaN);
}

export function header(response: string, name: string): string | undefined {
  const re = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im');
  return re.exec(response)?.[1]?.trim();
}

abstract class Collector {
  protected readonly received: string[] = [];
  private waiters: (() => void)[] = [];

  protected push(msg: string): void {
    this.received.push(msg);
    for (const w of this.waiters.splice(0)) w();
  }

  /** Messages received and not yet taken with next(). */
  get waiting(): number {
    return this.received.length;
  }

  /** The next message received (in order), failing after `timeoutMs`. */
  async next(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no SIP message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.received.shift()!;
  }
}

export class RawUdpPeer extends Collector {
  private constructor(private readonly socket: UdpSocket) {
    super();
    socket.on('message', (d) => this.push(d.toString('utf8')));
  }

  static async open(): Promise<RawUdpPeer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    return new RawUdpPeer(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(text: string | Buffer, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(text, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

export class RawTcpPeer extends Collector {
  private buffer = '';
  closed = false;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<RawTcpPeer> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawTcpPeer(socket);
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Responses from the bridge carry Content-Length; cut the stream with it (bodies are ASCII here). */
  private onData(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/^Content-Length:\s*(\d+)/im.exec(this.buffer.slice(0, end))?.[1] ?? 0);
      if (this.buffer.length < end + 4 + length) return;
      this.push(this.buffer.slice(0, end + 4 + length));
      this.buffer = this.buffer.slice(end + 4 + length);
    }
  }
}
