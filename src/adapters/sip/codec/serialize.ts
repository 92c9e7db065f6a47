/**
 * SIP message serializer. Content-Length is always computed from the body's bytes (any given
 * value is replaced in place, or the header is appended); header order is kept. Every piece of
 * the start line and every header is checked so that no CR, LF or NUL can smuggle in a header
 * or a second message (header injection).
 */
import { BridgeError } from '../../../core/errors.js';
import { exactCanonicalName, isContentLengthName } from './header-names.js';
import type { SipMessage } from './message.js';
import { isToken, isUriText } from './syntax.js';

const LINE_BREAK_OR_NUL = /[\r\n\0]/;

/** A message that must not go on the wire: thrown by serializeMessage, never caused by a peer. */
export class SipSerializeError extends BridgeError {
  constructor(what: string) {
    super('SIP_UNSAFE_MESSAGE', `refusing to serialize SIP message: ${what}`, {
      condition: 'bad-request',
      retryable: false,
    });
    this.name = 'SipSerializeError';
  }
}

export function serializeMessage(msg: SipMessage): Buffer {
  let head: string;
  if (msg.kind === 'request') {
    if (!isToken(msg.method)) throw new SipSerializeError('method is not a token');
    if (!isUriText(msg.uri)) throw new SipSerializeError('Request-URI holds whitespace or control characters');
    head = `${msg.method} ${msg.uri} SIP/2.0\r\n`;
  } else {
    if (!Number.isInteger(msg.status) || msg.status < 100 || msg.status > 699) {
      throw new SipSerializeError('status code outside 100-699');
    }
    if (LINE_BREAK_OR_NUL.test(msg.reason)) throw new SipSerializeError('CR, LF or NUL in reason phrase');
    head = `SIP/2.0 ${msg.status} ${msg.reason}\r\n`;
  }
  const body = msg.body;
  let lengthWritten = false;
  for (const h of msg.headers) {
    const known = exactCanonicalName(h.name);
    if (known === undefined && !isToken(h.name)) throw new SipSerializeError('header name is not a token');
    if (known === 'Content-Length' || (known === undefined && isContentLengthName(h.name))) {
      if (!lengthWritten) head += `Content-Length: ${body.length}\r\n`;
      lengthWritten = true;
      continue;
    }
    const v = h.value;
    if (v.indexOf('\r') >= 0 || v.indexOf('\n') >= 0 || v.indexOf('\0') >= 0) throw new SipSerializeError(`CR, LF or NUL in ${h.name} header`);
    head += `${h.name}: ${h.value}\r\n`;
  }
  if (!lengthWritten) head += `Content-Length: ${body.length}\r\n`;
  head += '\r\n';

  const headLength = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headLength + body.length);
  out.write(head, 0, 'utf8');
  body.copy(out, headLength);
  return out;
}
