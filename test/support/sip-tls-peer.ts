/**
 * A federation partner's side of a SIP-over-TLS connection to the bridge, for tests: a Node TLS
 * client with the partner's certificate that frames SIP by Content-Length (RFC 3261 §18.3),
 * matches final responses to requests by Call-ID and CSeq, and answers every request the bridge
 * sends on the connection (NOTIFYs) with 200, so what the partner holds stays up.
 */
import { randomBytes } from 'node:crypto';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { header, statusOf } from './raw-sip.js';

/** Cuts a TLS stream into whole SIP messages by Content-Length; bodies are cut by bytes. */
export function sipFramer(socket: TLSSocket, onMessage: (text: string) => void): void {
  let buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString('utf8');
      const length = Number(/^(?:Content-Length|l):\s*(\d+)/im.exec(head)?.[1] ?? 0);
      if (buffer.length - end - 4 < length) return;
      onMessage(buffer.subarray(0, end + 4 + length).toString('utf8'));
      buffer = buffer.subarray(end + 4 + length);
    }
  });
}

/** A final response to `request` (RFC 3261 §8.2.6): its Via, From, Call-ID and CSeq, To with a tag. */
export function answerTo(request: string, status = 200, reason = 'OK'): string {
  const head = request.slice(0, request.indexOf('\r\n\r\n')).split('\r\n').slice(1);
  const copied = head.filter((l) => /^(Via|v|From|f|Call-ID|i|CSeq):/i.test(l));
  const to = head.find((l) => /^(To|t):/i.test(l)) ?? 'To: <sip:unknown@invalid>';
  const tagged = /;tag=/i.test(to) ? to : `${to};tag=${randomBytes(4).toString('hex')}`;
  return [`SIP/2.0 ${status} ${reason}`, ...copied, tagged, 'Content-Length: 0', '', ''].join('\r\n');
}

export class SipTlsPeer {
  closed = false;
  /** Why the connection failed, if it did (a refused handshake shows here). */
  error: (Error & { code?: string }) | undefined;
  /** Every response received, in order (1xx too). */
  readonly responses: string[] = [];
  private readonly waiting = new Map<string, (response: string) => void>();

  protected constructor(private readonly socket: TLSSocket) {
    sipFramer(socket, (text) => this.onMessage(text));
    socket.on('error', (err) => (this.error = err));
    socket.on('close', () => (this.closed = true));
  }

  /**
   * Connects and waits for the client side of the handshake to finish, or the connection to
   * close (then `closed` and `error` say why). `make` lets a test's subclass add its own fields.
   */
  static async connect<P extends SipTlsPeer>(options: ConnectionOptions, make: (socket: TLSSocket) => P): Promise<P> {
    const socket = connect({ host: '127.0.0.1', servername: 'localhost', ...options });
    const peer = make(socket);
    await new Promise<void>((resolve) => {
      socket.once('secureConnect', () => resolve());
      socket.once('close', () => resolve());
    });
    return peer;
  }

  /** Sends a request's text; resolves with its final response (same Call-ID and CSeq number). */
  request(text: string, timeoutMs = 10_000): Promise<string> {
    const key = keyOf(text);
    const answered = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`no final response to ${text.slice(0, text.indexOf(' '))} ${key} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(key, (response) => {
        clearTimeout(timer);
        resolve(response);
      });
    });
    this.write(text);
    return answered;
  }

  write(text: string): void {
    if (!this.socket.destroyed) this.socket.write(text);
  }

  close(): void {
    this.socket.destroy();
  }

  private onMessage(text: string): void {
    if (!text.startsWith('SIP/2.0 ')) {
      this.write(answerTo(text));
      return;
    }
    this.responses.push(text);
    if (statusOf(text) < 200) return;
    const key = keyOf(text);
    const resolve = this.waiting.get(key);
    if (resolve === undefined) return;
    this.waiting.delete(key);
    resolve(text);
  }
}

function keyOf(message: string): string {
  return `${header(message, 'Call-ID') ?? ''} ${(header(message, 'CSeq') ?? '').split(' ')[0] ?? ''}`;
}
