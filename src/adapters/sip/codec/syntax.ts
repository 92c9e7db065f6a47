/**
 * Character classes of the RFC 3261 §25 grammar as lookup tables, so that validating a token
 * is one array read per character instead of a regular expression per message part.
 */

function charSet(extra: string): Uint8Array {
  const set = new Uint8Array(128);
  for (let c = 0x30; c <= 0x39; c++) set[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) set[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) set[c] = 1;
  for (let i = 0; i < extra.length; i++) set[extra.charCodeAt(i)] = 1;
  return set;
}

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = charSet("-.!%*_+`'~");
/** unreserved = alphanum / mark */
const MARK = "-_.!~*'()";
/** user = 1*( unreserved / escaped / user-unreserved ) */
export const USER = charSet(MARK + '&=+$,;?/');
/** password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ) */
export const PASSWORD = charSet(MARK + '&=+$,');
/** paramchar = param-unreserved / unreserved / escaped */
export const PARAMCHAR = charSet(MARK + '[]/:&+$');
/** hname / hvalue characters = hnv-unreserved / unreserved / escaped */
export const HNV = charSet(MARK + '[]/?:+$');
/** hostname characters (RFC 3261 §25: alphanum, "-", "."). */
export const HOSTNAME = charSet('-.');
/** IPv6reference body (hex digits, ":" and "." for an embedded IPv4 tail). */
export const IPV6 = charSet(':.');

/** Every character of `s` is in `set`; `s` is non-empty. `%` escapes pass when `escapes`. */
export function allIn(s: string, set: Uint8Array, escapes = false): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 128 && set[c] === 1) continue;
    if (escapes && c === 0x25 && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

export function isToken(s: string): boolean {
  return allIn(s, TOKEN);
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

export function isDigits(s: string, maxLength: number): boolean {
  if (s.length === 0 || s.length > maxLength) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** SP or HTAB */
export function isWsp(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Percent-encode every character outside `set` (UTF-8 bytes), keeping existing `%XX` escapes. */
export function escapeOutside(s: string, set: Uint8Array, keepEscapes: boolean): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 128 && set[c] === 1) {
      out += s[i];
    } else if (keepEscapes && c === 0x25 && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
      out += s.slice(i, i + 3);
      i += 2;
    } else {
      const cp = s.codePointAt(i) ?? c;
      const ch = String.fromCodePoint(cp);
      if (ch.length === 2) i++;
      for (const byte of Buffer.from(ch, 'utf8')) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}

/** Non-empty and free of whitespace and control characters (a URI as it may appear on a line). */
export function isUriText(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false;
  }
  return true;
}

/** absoluteURI shape: scheme ":" then at least one URI character (RFC 3261 §25, RFC 3986). */
export function isAbsoluteUri(s: string): boolean {
  const colon = s.indexOf(':');
  if (colon < 1 || colon === s.length - 1 || !isUriText(s)) return false;
  for (let i = 0; i < colon; i++) {
    const c = s.charCodeAt(i);
    const alpha = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (!alpha && (i === 0 || !((c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e))) return false;
  }
  return true;
}
