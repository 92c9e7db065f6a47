/**
 * Cuts a SIP byte stream (TCP, TLS) into messages by Content-Length (RFC 3261 §18.3, §7.5).
 * Pure: bytes in, whole message buffers out, no socket. The header section is buffered until
 * its empty line; the body is then copied into a buffer of exactly the announced size.
 *
 * Keep-alives (RFC 5626 §3.5.1): CRLFs between messages are skipped. Each double CRLF
 * ("\r\n\r\n", the ping) calls `onKeepAlivePing`; the transport answers with a single CRLF
 * (the pong). A single CRLF (a pong, or a CRLF before a start line, §7.5) is just skipped.
 *
 * A fault (header section over the limit, Content-Length missing, malformed or too large)
 * throws SipParseError; the stream can no longer be framed, so the transport closes the
 * connection. Messages completed earlier in the same chunk are dropped with it, and every
 * later `push` throws the same error.
 */
import { SipParseError } from './parse-error.js';
import { isDigits, isWsp } from './syntax.js';

export interface SipStreamFramerOptions {
  /** Largest whole message (header section + body) accepted, in bytes. */
  maxMessageBytes: number;
  /** Called for each CRLFCRLF keep-alive ping seen between messages. */
  onKeepAlivePing?: () => void;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const LONE_CR = Buffer.from('\r');

export class SipStreamFramer {
  private readonly maxMessageBytes: number;
  private readonly onKeepAlivePing: (() => void) | undefined;
  /** Bytes of a header section not yet terminated (or leftover after a message). */
  private pending: Buffer = EMPTY;
  /** Offset in `pending` from which the CRLFCRLF search resumes. */
  private searchFrom = 0;
  /** Message whose header section is complete and whose body is being filled. */
  private message: Buffer | undefined;
  private filled = 0;
  /** CRLFs seen in a row at a message boundary. */
  private crlfRun = 0;
  private failure: SipParseError | undefined;

  constructor(opts: SipStreamFramerOptions) {
    this.maxMessageBytes = opts.maxMessageBytes;
    this.onKeepAlivePing = opts.onKeepAlivePing;
  }

  /** Feed the next chunk from the stream; returns the messages it completes, in order. */
  push(chunk: Buffer): Buffer[] {
    if (this.failure !== undefined) throw this.failure;
    try {
      return this.frame(chunk);
    } catch (err) {
      if (err instanceof SipParseError) this.failure = err;
      this.pending = EMPTY;
      this.message = undefined;
      throw err;
    }
  }

  /** Bytes buffered for an incomplete message (bounded by maxMessageBytes). */
  get bufferedBytes(): number {
    return this.message !== undefined ? this.filled : this.pending.length;
  }

  private frame(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let data = chunk;
    for (let guard = 0; data.length > 0; guard++) {
      // Every turn consumes bytes or completes a message, so this bound is never reached.
      if (guard > 2 * chunk.length + 4) throw new Error('SipStreamFramer made no progress');
      if (this.message !== undefined) {
        data = this.fillBody(data, out);
        continue;
      }
      if (this.pending.length === 0) {
        data = this.skipCrlfs(data);
        if (data.length === 0) break;
      }
      data = this.readHead(data);
    }
    if (this.message !== undefined && this.filled === this.message.length) this.finishMessage(out);
    return out;
  }

  private skipCrlfs(data: Buffer): Buffer {
    let i = 0;
    while (i < data.length) {
      const c = data[i];
      if (c === 0x0d && i + 1 >= data.length) {
        // A lone CR at the end of the chunk: keep it until the next one says what it starts.
        this.pending = LONE_CR;
        return EMPTY;
      }
      if (c !== 0x0d || data[i + 1] !== 0x0a) break;
      i += 2;
      if (++this.crlfRun === 2) {
        this.crlfRun = 0;
        this.onKeepAlivePing?.();
      }
    }
    if (i < data.length) this.crlfRun = 0;
    return data.subarray(i);
  }

  /** Buffer header bytes until CRLFCRLF; then size the message. Returns the unconsumed rest. */
  private readHead(data: Buffer): Buffer {
    if (this.pending.length === 1 && this.pending[0] === 0x0d && data[0] === 0x0a) {
      // The lone CR left by skipCrlfs completed a CRLF: still between messages.
      this.pending = EMPTY;
      return this.skipCrlfs(Buffer.concat([LONE_CR, data]));
    }
    const buf = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    const end = buf.indexOf(CRLFCRLF, this.searchFrom);
    if (end < 0) {
      if (buf.length > this.maxMessageBytes) throw new SipParseError(413, 'Message Too Large');
      // Copy, so a small unfinished head does not pin the chunk it arrived in.
      this.pending = Buffer.from(buf);
      this.searchFrom = Math.max(0, buf.length - 3);
      return EMPTY;
    }
    const headLength = end + 4;
    const total = headLength + contentLengthOf(buf.subarray(0, end));
    if (total > this.maxMessageBytes) throw new SipParseError(413, 'Message Too Large');
    this.pending = EMPTY;
    this.searchFrom = 0;
    this.crlfRun = 0;
    this.message = Buffer.allocUnsafe(total);
    const take = Math.min(total, buf.length);
    buf.copy(this.message, 0, 0, take);
    this.filled = take;
    return buf.subarray(take);
  }

  private fillBody(data: Buffer, out: Buffer[]): Buffer {
    const message = this.message as Buffer;
    const take = Math.min(message.length - this.filled, data.length);
    data.copy(message, this.filled, 0, take);
    this.filled += take;
    if (this.filled === message.length) this.finishMessage(out);
    return data.subarray(take);
  }

  private finishMessage(out: Buffer[]): void {
    out.push(this.message as Buffer);
    this.message = undefined;
    this.filled = 0;
  }
}

/**
 * Content-Length from a raw header section (long or compact `l` name, any case, folded lines
 * joined). Read as latin1: only ASCII digits matter and this avoids a UTF-8 decode per message.
 */
function contentLengthOf(head: Buffer): number {
  const lines = head.toString('latin1').split('\r\n');
  let value: string | undefined;
  for (let k = 1; k < lines.length; k++) {
    const line = lines[k] as string;
    const colon = line.indexOf(':');
    if (colon < 1 || isWsp(line.charCodeAt(0))) continue;
    const name = line.slice(0, colon).trimEnd().toLowerCase();
    if (name !== 'content-length' && name !== 'l') continue;
    let v = line.slice(colon + 1);
    while (k + 1 < lines.length && isWsp((lines[k + 1] as string).charCodeAt(0))) v += ' ' + lines[++k];
    v = v.trim();
    if (value !== undefined && value !== v) throw new SipParseError(400, 'Repeated Content-Length header');
    value = v;
  }
  if (value === undefined) throw new SipParseError(400, 'Missing Content-Length header');
  if (!isDigits(value, 10)) throw new SipParseError(400, 'Malformed Content-Length');
  return Number(value);
}
