/**
 * XEP-0106 JID Escaping of localparts. Applies to the localpart only, never to domainparts or
 * resourceparts (XEP-0106 §3). Escape sequences are lower case: "CASE IS SIGNIFICANT" (§4), so
 * `\2F` is not an escape and is left as it is.
 */
import { BridgeError } from '../core/errors.js';

/** XEP-0106 §4.2 escaping table: the characters RFC 7622 disallows in a localpart, plus space. */
const ESCAPES: Readonly<Record<string, string>> = Object.freeze({
  ' ': '\\20',
  '"': '\\22',
  '&': '\\26',
  "'": '\\27',
  '/': '\\2f',
  ':': '\\3a',
  '<': '\\3c',
  '>': '\\3e',
  '@': '\\40',
});

/** XEP-0106 §4.3 unescaping table (keys are the two hex digits after the backslash). */
const UNESCAPES: Readonly<Record<string, string>> = Object.freeze({
  '20': ' ',
  '22': '"',
  '26': '&',
  '27': "'",
  '2f': '/',
  '3a': ':',
  '3c': '<',
  '3e': '>',
  '40': '@',
  '5c': '\\',
});

/** Whether `s` holds, at `i`, a backslash followed by one of the ten escape codes. */
function escapeSequenceAt(s: string, i: number): string | undefined {
  if (s[i] !== '\\') return undefined;
  const code = s.slice(i + 1, i + 3);
  return Object.hasOwn(UNESCAPES, code) ? code : undefined;
}

/**
 * Escapes a string (e.g. an unescaped SIP user part) into a JID localpart (XEP-0106 §4.2, §5.2).
 * A backslash is escaped to `\5c` only where it starts one of the escape sequences (XEP-0106
 * §5.2 step 3: "\27" in the source becomes "\5c27"); any other backslash is left alone
 * ("foo\bar" stays "foo\bar", §5.2). Everything else outside the table is left alone too:
 * escaping MUST NOT be applied to other characters (§3), so characters that PRECIS forbids stay
 * and are for the caller's localpart validation to refuse.
 *
 * @throws BridgeError `JID_MALFORMED` when `s` starts or ends with a space: "\20 MUST NOT be
 *   the first or last character of an escaped localpart" (XEP-0106 §4.2 note, §5.1).
 */
export function escapeNode(s: string): string {
  if (s.startsWith(' ') || s.endsWith(' ')) {
    throw new BridgeError('JID_MALFORMED', `cannot escape "${s}": a localpart may not start or end with a space`, {
      condition: 'jid-malformed',
    });
  }
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    const escaped = ESCAPES[c];
    if (escaped !== undefined) out += escaped;
    else if (escapeSequenceAt(s, i) !== undefined) out += '\\5c';
    else out += c;
  }
  return out;
}

/**
 * Unescapes a JID localpart for use outside XMPP (XEP-0106 §4.3). Only the ten specified
 * sequences are unescaped; partial sequences and sequences for other characters ("\2plus",
 * "\41", "\2F") are left as they are (XEP-0106 §5.1 "MUST unescape only the specified
 * sequences", §5.2). Total: never throws. Note that two wire forms can unescape to the same
 * string (`foo\5cbar` and `foo\bar` both give `foo\bar`, XEP-0106 §7), so callers that route on
 * the result should check `escapeNode(unescapeNode(x)) === x`.
 */
export function unescapeNode(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const code = escapeSequenceAt(s, i);
    if (code !== undefined) {
      out += UNESCAPES[code];
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}
