/**
 * Strict SIP message parser (RFC 3261 §7, §25). One `indexOf` finds the end of the header
 * section, which is decoded once and read line by line in place; only the start line and the headers a
 * transaction needs (Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length) are checked
 * beyond the generic `name: value` shape. Every fault throws SipParseError with the status to
 * answer (400, 413, 416, 505) and, for requests, the part that parsed.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { isCommonNameAddr, isCommonVia } from './common-form.js';
import { canonicalHeaderName, exactCanonicalName } from './header-names.js';
import type { SipHeader, SipMessage, SipRequest, SipResponse } from './message.js';
import { SipParseError } from './parse-error.js';
import { isAbsoluteUri, isDigits, isToken, isUriText, isWsp } from './syntax.js';
import { parseNameAddr, parseVia } from './uri.js';

export { SipParseError } from './parse-error.js';

/** Largest UDP payload; a transport passes its own limit for streams. */
export const DEFAULT_MAX_MESSAGE_BYTES = 65_535;

export interface ParseOptions {
  /** Messages longer than this are refused with 413. Default 65 535. */
  maxBytes?: number;
  /** `tcp` (any stream: TCP, TLS, WebSocket) makes Content-Length mandatory (§18.3). Default `udp`. */
  transport?: 'udp' | 'tcp';
}

export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const SIP_VERSION = /^SIP\/[0-9]+\.[0-9]+$/i;


/** Whether a datagram or stream chunk is only CRLFs: a keep-alive (RFC 5626 §3.5.1), not a message. */
export function isKeepAlive(data: Buffer): boolean {
  if (data.length === 0) return false;
  for (let i = 0; i < data.length; i++) if (data[i] !== 0x0d && data[i] !== 0x0a) return false;
  return true;
}

/** CSeq = 1*DIGIT LWS Method, the number below 2^31 (§8.1.1.5). */
export function parseCSeq(value: string): CSeq {
  let i = 0;
  while (i < value.length && value.charCodeAt(i) >= 0x30 && value.charCodeAt(i) <= 0x39) i++;
  const digits = value.slice(0, i);
  let j = i;
  while (j < value.length && isWsp(value.charCodeAt(j))) j++;
  const method = value.slice(j);
  const seq = Number(digits);
  if (!isDigits(digits, 10) || j === i || !isToken(method) || seq >= 2 ** 31) {
    throw new SipParseError(400, 'Malformed CSeq');
  }
  return { seq, method };
}

interface MutableHeader {
  name: string;
  value: string;
}

/** Parse one whole SIP message (a datagram, or a buffer cut by SipStreamFramer). */
export function parseMessage(data: Buffer, opts: ParseOptions = {}): SipMessage {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  // §7.5: CRLFs before the start line are ignored.
  let start = 0;
  while (start + 1 < data.length && data[start] === 0x0d && data[start + 1] === 0x0a) start += 2;
  if (start >= data.length) throw new SipParseError(400, 'Empty message');

  const tooLarge = data.length > maxBytes;
  const searchIn = tooLarge ? data.subarray(0, maxBytes) : data;
  const headEnd = searchIn.indexOf(CRLFCRLF, start);
  if (headEnd < 0) {
    throw tooLarge
      ? new SipParseError(413, 'Message Too Large')
      : new SipParseError(400, 'Header section not terminated by an empty line');
  }
  const headBytes = data.subarray(start, headEnd);
  // Pure ASCII (the usual case) decodes as latin1, the cheapest decoder; otherwise it must be UTF-8.
  let head: string;
  if (isAscii(headBytes)) head = headBytes.toString('latin1');
  else if (isUtf8(headBytes)) head = headBytes.toString('utf8');
  else throw new SipParseError(400, 'Header section is not UTF-8');
  if (head.indexOf('\0') >= 0) throw new SipParseError(400, 'NUL byte in header section');

  // Lines are read in place: `pos` is where a line starts, `eol` where its CRLF starts.
  let eol = lineEnd(head, 0);
  if (eol < 0) throw new SipParseError(400, 'Bare CR or LF in header section');
  const startLine = head.slice(0, eol);
  const isResponse = startLine.length >= 4 && startLine.slice(0, 4).toUpperCase() === 'SIP/';
  const firstLine = isResponse ? parseStatusLine(startLine) : parseRequestLine(startLine);

  const headers: MutableHeader[] = [];
  for (let pos = eol + 2; pos < head.length + 2; pos = eol + 2) {
    eol = lineEnd(head, pos);
    if (eol < 0) throw fault(firstLine, headers, 400, 'Bare CR or LF in header section');
    if (isWsp(head.charCodeAt(pos))) {
      // §7.3.1: a line starting with whitespace continues the previous header (folding).
      const prev = headers[headers.length - 1];
      if (prev === undefined) throw fault(firstLine, headers, 400, 'Continuation line before any header');
      const more = head.slice(pos, eol).trim();
      if (more !== '') prev.value = prev.value === '' ? more : `${prev.value} ${more}`;
      continue;
    }
    const colon = head.indexOf(':', pos);
    if (colon <= pos || colon >= eol) throw fault(firstLine, headers, 400, 'Header line without a colon');
    let nameEnd = colon;
    while (nameEnd > pos && isWsp(head.charCodeAt(nameEnd - 1))) nameEnd--; // HCOLON = *(SP/HTAB) ":" SWS
    const rawName = head.slice(pos, nameEnd);
    let name = exactCanonicalName(rawName);
    if (name === undefined) {
      if (!isToken(rawName)) throw fault(firstLine, headers, 400, 'Malformed header name');
      name = canonicalHeaderName(rawName);
    }
    headers.push({ name, value: trimmedSlice(head, colon + 1, eol) });
  }

  if (firstLine.kind === 'version') throw fault(firstLine, headers, 505, 'Version Not Supported');
  if (tooLarge) throw fault(firstLine, headers, 413, 'Message Too Large');
  const contentLength = checkHeaders(firstLine, headers);

  // §18.3 framing of the body by Content-Length, counted in bytes.
  const bodyStart = headEnd + 4;
  const available = data.length - bodyStart;
  let body: Buffer;
  if (contentLength === undefined) {
    if (opts.transport === 'tcp') throw fault(firstLine, headers, 400, 'Missing Content-Length header');
    body = data.subarray(bodyStart);
  } else {
    if (!isDigits(contentLength, 10)) throw fault(firstLine, headers, 400, 'Malformed Content-Length');
    const length = Number(contentLength);
    if (length > available) throw fault(firstLine, headers, 400, 'Body shorter than Content-Length');
    body = data.subarray(bodyStart, bodyStart + length); // excess bytes are discarded
  }

  if (firstLine.kind === 'request') {
    return { kind: 'request', method: firstLine.method, uri: firstLine.uri, headers, body };
  }
  const response: SipResponse = {
    kind: 'response',
    status: firstLine.status,
    reason: firstLine.reason,
    headers,
    body,
  };
  return response;
}

/** The error to throw, carrying the request as far as it parsed. */
function fault(first: FirstLine, headers: readonly SipHeader[], status: number, reason: string): SipParseError {
  const partial: SipRequest | undefined =
    first.kind === 'response'
      ? undefined
      : { kind: 'request', method: first.method, uri: first.uri, headers: headers.slice(), body: EMPTY };
  return new SipParseError(status, reason, partial);
}

/**
 * Presence, uniqueness and syntax of the headers the stack relies on (§8.1.1, §20); returns
 * the Content-Length value, if any. Plain locals rather than a keyed record: this runs on
 * every message.
 */
function checkHeaders(first: FirstLine, headers: readonly SipHeader[]): string | undefined {
  let via: string | undefined; // the first Via line; the other headers are single-valued
  let from: string | undefined;
  let to: string | undefined;
  let callId: string | undefined;
  let cseqValue: string | undefined;
  let maxForwards: string | undefined;
  let contentLength: string | undefined;
  let repeated = false;
  let k = 0;
  for (; k < headers.length && !repeated; k++) {
    const h = headers[k] as SipHeader;
    const v = h.value;
    switch (h.name) {
      case 'Via': if (via === undefined) via = v; break;
      case 'From': repeated = from !== undefined; from = v; break;
      case 'To': repeated = to !== undefined; to = v; break;
      case 'Call-ID': repeated = callId !== undefined; callId = v; break;
      case 'CSeq': repeated = cseqValue !== undefined; cseqValue = v; break;
      case 'Max-Forwards': repeated = maxForwards !== undefined; maxForwards = v; break;
      case 'Content-Length': repeated = contentLength !== undefined; contentLength = v; break;
      default: break;
    }
  }
  // RFC 4475 §3.1.2.19 expects 400 for a repeated single-valued header.
  if (repeated) throw fault(first, headers, 400, `Repeated ${(headers[k - 1] as SipHeader).name} header`);
  const isRequest = first.kind !== 'response';
  // §8.1.1 for requests; a response carries the same minus Max-Forwards.
  if (to === undefined) throw fault(first, headers, 400, 'Missing To header');
  if (from === undefined) throw fault(first, headers, 400, 'Missing From header');
  if (cseqValue === undefined) throw fault(first, headers, 400, 'Missing CSeq header');
  if (callId === undefined) throw fault(first, headers, 400, 'Missing Call-ID header');
  if (isRequest && maxForwards === undefined) throw fault(first, headers, 400, 'Missing Max-Forwards header');
  if (via === undefined) throw fault(first, headers, 400, 'Missing Via header');

  let cseq: CSeq;
  try {
    cseq = parseCSeq(cseqValue);
    // The common spellings are recognised without allocating; anything else gets the full
    // parser, which accepts or refuses it with its own status (common-form.ts).
    if (!isCommonVia(via)) parseVia(via);
    if (!isCommonNameAddr(from)) parseNameAddr(from);
    if (!isCommonNameAddr(to)) parseNameAddr(to);
  } catch (err) {
    if (err instanceof SipParseError) throw fault(first, headers, err.status, err.reason);
    throw err;
  }
  if (isRequest && cseq.method !== first.method) {
    throw fault(first, headers, 400, 'CSeq method does not match the request method');
  }
  if (maxForwards !== undefined && (!isDigits(maxForwards, 3) || Number(maxForwards) > 255)) {
    throw fault(first, headers, 400, 'Malformed Max-Forwards'); // §20.22: 0-255
  }
  if (callId === '' || !isUriText(callId)) throw fault(first, headers, 400, 'Malformed Call-ID');
  return contentLength;
}

/**
 * Where the line starting at `pos` ends (the index of its CRLF, or the end of the section),
 * or -1 when the line holds a CR or LF that is not part of a CRLF, which could split a header.
 */
function lineEnd(head: string, pos: number): number {
  const cr = head.indexOf('\r', pos);
  const eol = cr < 0 ? head.length : cr;
  if (cr >= 0 && head.charCodeAt(cr + 1) !== 0x0a) return -1;
  const lf = head.indexOf('\n', pos);
  return lf < 0 || lf === eol + 1 ? eol : -1;
}

/** `text.slice(from, to).trim()`, without the second string when only SP/HTAB surround the value. */
function trimmedSlice(text: string, from: number, to: number): string {
  let i = from;
  let j = to;
  while (i < j && isWsp(text.charCodeAt(i))) i++;
  while (j > i && isWsp(text.charCodeAt(j - 1))) j--;
  const value = text.slice(i, j);
  // String.prototype.trim also strips other white space (VT, FF, NBSP, U+2028…): defer to it then.
  return i < j && (maybeTrimmed(text.charCodeAt(i)) || maybeTrimmed(text.charCodeAt(j - 1))) ? value.trim() : value;
}

function maybeTrimmed(c: number): boolean {
  return c < 0x21 || c > 0x7e;
}

type FirstLine =
  | { kind: 'request'; method: string; uri: string }
  | { kind: 'response'; status: number; reason: string }
  /** A well-formed request line with another SIP version: headers are read, then 505. */
  | { kind: 'version'; method: string; uri: string };

/** Request-Line = Method SP Request-URI SP SIP-Version (§7.1, §25) */
function parseRequestLine(line: string): FirstLine {
  const sp1 = line.indexOf(' ');
  const sp2 = line.indexOf(' ', sp1 + 1);
  if (sp1 < 1 || sp2 < 0 || line.indexOf(' ', sp2 + 1) >= 0) {
    throw new SipParseError(400, 'Malformed request line');
  }
  const method = line.slice(0, sp1);
  const uri = line.slice(sp1 + 1, sp2);
  const version = line.slice(sp2 + 1);
  if (!isToken(method) || !isAbsoluteUri(uri)) throw new SipParseError(400, 'Malformed request line');
  if (version === 'SIP/2.0' || version.toUpperCase() === 'SIP/2.0') return { kind: 'request', method, uri };
  if (SIP_VERSION.test(version)) return { kind: 'version', method, uri };
  throw new SipParseError(400, 'Malformed request line');
}

/** Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (§7.2, §25) */
function parseStatusLine(line: string): FirstLine {
  const sp1 = line.indexOf(' ');
  const version = sp1 < 0 ? line : line.slice(0, sp1);
  if (version.toUpperCase() !== 'SIP/2.0') {
    throw new SipParseError(SIP_VERSION.test(version) ? 505 : 400, 'Malformed status line');
  }
  const code = line.slice(sp1 + 1, sp1 + 4);
  const afterCode = line.charCodeAt(sp1 + 4);
  // An empty Reason-Phrase is legal; tolerate the SP before it being left out too.
  if (!isDigits(code, 3) || code < '100' || code > '699' || (line.length > sp1 + 4 && afterCode !== 0x20)) {
    throw new SipParseError(400, 'Malformed status line');
  }
  return { kind: 'response', status: Number(code), reason: line.slice(sp1 + 5) };
}
