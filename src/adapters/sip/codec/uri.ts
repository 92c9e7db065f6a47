/**
 * SIP URIs (RFC 3261 §19.1), name-addr values (From/To/Contact, §20.10) and Via values
 * (§20.42). Hand-written scanners over the §25 grammar; every syntax fault throws
 * SipParseError(400). Parameter values are kept raw (escapes and quotes as written) so that
 * formatting reproduces them exactly.
 */
import type { NameAddr, SipUri, Via } from './message.js';
import { SipParseError } from './parse-error.js';
import {
  HNV, HOSTNAME, IPV6, PARAMCHAR, PASSWORD, TOKEN, USER,
  allIn, escapeOutside, isAbsoluteUri, isDigits, isToken, isWsp,
} from './syntax.js';

type Params = Record<string, string | null>;

function bad(what: string): SipParseError {
  return new SipParseError(400, `Malformed ${what}`);
}

/** An object without prototype, so a parameter named `__proto__` is just a parameter. */
function newParams(): Params {
  return Object.create(null) as Params;
}

// ---------------------------------------------------------------- host and port

interface HostPort {
  host: string;
  port?: number;
}

/** hostport = host [ ":" port ]; host = hostname / IPv4address / IPv6reference */
function parseHostPort(text: string, what: string): HostPort {
  let host: string;
  let rest: string;
  if (text.charCodeAt(0) === 0x5b /* [ */) {
    const close = text.indexOf(']');
    if (close < 0 || !allIn(text.slice(1, close), IPV6)) throw bad(what);
    host = text.slice(0, close + 1).toLowerCase();
    rest = text.slice(close + 1);
  } else {
    const colon = text.indexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    rest = colon < 0 ? '' : text.slice(colon);
    if (!allIn(host, HOSTNAME)) throw bad(what);
    host = host.toLowerCase();
  }
  if (rest === '') return { host };
  const port = rest.slice(1);
  if (rest.charCodeAt(0) !== 0x3a || !isDigits(port, 5) || Number(port) > 65535) throw bad(what);
  return { host, port: Number(port) };
}

function formatHostPort(host: string, port: number | undefined): string {
  return port === undefined ? host : `${host}:${port}`;
}

// ---------------------------------------------------------------- SIP URI

/** Parse a `sip:` or `sips:` URI. Other schemes (tel:, im:, pres:) are rejected. */
export function parseUri(text: string): SipUri {
  const colon = text.indexOf(':');
  if (colon < 1) throw bad('URI');
  const scheme = text.slice(0, colon).toLowerCase();
  // RFC 3261 §8.2.2.1: a scheme we do not understand is answered 416, not 400.
  if (scheme !== 'sip' && scheme !== 'sips') throw new SipParseError(416, 'Unsupported URI Scheme');
  let rest = text.slice(colon + 1);

  // No "@" is allowed in params or headers, so the first one ends the userinfo; the user part
  // itself may hold ";" and "?" (user-unreserved), which is why it is cut off first.
  let user: string | undefined;
  let password: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const pw = userinfo.indexOf(':');
    const rawUser = pw < 0 ? userinfo : userinfo.slice(0, pw);
    if (!allIn(rawUser, USER, true)) throw bad('URI user');
    user = unescape(rawUser);
    if (pw >= 0) {
      const rawPw = userinfo.slice(pw + 1);
      if (rawPw !== '' && !allIn(rawPw, PASSWORD, true)) throw bad('URI password');
      password = unescape(rawPw);
    }
  }

  let headersText: string | undefined;
  const q = rest.indexOf('?');
  if (q >= 0) {
    headersText = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const semi = rest.indexOf(';');
  const { host, port } = parseHostPort(semi < 0 ? rest : rest.slice(0, semi), 'URI host');

  const params = newParams();
  if (semi >= 0) {
    for (const item of rest.slice(semi + 1).split(';')) {
      const eq = item.indexOf('=');
      const name = (eq < 0 ? item : item.slice(0, eq)).toLowerCase();
      const value = eq < 0 ? null : item.slice(eq + 1);
      if (!allIn(name, PARAMCHAR, true) || (value !== null && !allIn(value, PARAMCHAR, true))) {
        throw bad('URI parameter');
      }
      // RFC 3261 §19.1.1: any given parameter MUST NOT appear more than once.
      if (name in params) throw bad('URI parameter');
      params[name] = value;
    }
  }

  const uri: { -readonly [K in keyof SipUri]: SipUri[K] } = { scheme, host, params };
  if (user !== undefined) uri.user = user;
  if (password !== undefined) uri.password = password;
  if (port !== undefined) uri.port = port;
  if (headersText !== undefined) {
    const headers: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const item of headersText.split('&')) {
      const eq = item.indexOf('=');
      const hname = item.slice(0, eq);
      const hvalue = item.slice(eq + 1);
      if (eq < 1 || !allIn(hname, HNV, true) || (hvalue !== '' && !allIn(hvalue, HNV, true))) {
        throw bad('URI header');
      }
      headers[hname] = hvalue;
    }
    uri.headers = headers;
  }
  return uri;
}

function unescape(s: string): string {
  if (s.indexOf('%') < 0) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    throw bad('URI escape');
  }
}

export function formatUri(uri: SipUri): string {
  let out = `${uri.scheme}:`;
  if (uri.user !== undefined) {
    out += escapeOutside(uri.user, USER, false);
    if (uri.password !== undefined) out += ':' + escapeOutside(uri.password, PASSWORD, false);
    out += '@';
  }
  out += formatHostPort(uri.host, uri.port);
  for (const [name, value] of Object.entries(uri.params)) {
    out += ';' + escapeOutside(name, PARAMCHAR, true);
    if (value !== null) out += '=' + escapeOutside(value, PARAMCHAR, true);
  }
  if (uri.headers !== undefined) {
    const pairs = Object.entries(uri.headers).map(
      ([n, v]) => `${escapeOutside(n, HNV, true)}=${v === '' ? '' : escapeOutside(v, HNV, true)}`,
    );
    if (pairs.length > 0) out += '?' + pairs.join('&');
  }
  return out;
}

// ---------------------------------------------------------------- header parameters

function skipWsp(s: string, i: number): number {
  while (i < s.length && isWsp(s.charCodeAt(i))) i++;
  return i;
}

/** Index after a quoted-string starting at `start` (which holds `"`), or -1 if unterminated. */
function skipQuoted(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c /* \ */) i++;
    else if (c === 0x22) return i + 1;
  }
  return -1;
}

/**
 * `*( SEMI generic-param )` from `s`, which must be empty or start with ";" (after LWS).
 * generic-param = token [ EQUAL gen-value ]; gen-value = token / host / quoted-string.
 */
function parseHeaderParams(s: string, what: string): Params {
  const params = newParams();
  let i = 0;
  const n = s.length;
  i = skipWsp(s, i);
  while (i < n) {
    if (s.charCodeAt(i) !== 0x3b /* ; */) throw bad(what);
    i++;
    i = skipWsp(s, i);
    let j = i;
    while (j < n && s.charCodeAt(j) < 128 && TOKEN[s.charCodeAt(j)] === 1) j++;
    if (j === i) throw bad(what);
    const name = s.slice(i, j).toLowerCase();
    i = j;
    i = skipWsp(s, i);
    let value: string | null = null;
    if (i < n && s.charCodeAt(i) === 0x3d /* = */) {
      i++;
      i = skipWsp(s, i);
      if (s.charCodeAt(i) === 0x22) {
        j = skipQuoted(s, i);
        if (j < 0) throw bad(what);
      } else {
        j = i;
        // token, host (IPv6 reference brackets and colons included)
        while (j < n && s.charCodeAt(j) < 128 && (TOKEN[s.charCodeAt(j)] === 1 || isHostExtra(s.charCodeAt(j)))) j++;
        if (j === i) throw bad(what);
      }
      value = s.slice(i, j);
      i = j;
      i = skipWsp(s, i);
    }
    if (name in params) throw bad(what);
    params[name] = value;
  }
  return params;
}

/** "[", "]" and ":" of an IPv6 reference in a host-valued parameter (received=). */
function isHostExtra(c: number): boolean {
  return c === 0x5b || c === 0x5d || c === 0x3a;
}

function formatHeaderParams(params: Readonly<Params>): string {
  let out = '';
  for (const [name, value] of Object.entries(params)) out += value === null ? `;${name}` : `;${name}=${value}`;
  return out;
}

/** Split a header value at commas outside quoted strings and angle brackets. */
export function splitHeaderList(text: string): string[] {
  if (text.indexOf(',') < 0) return [text.trim()];
  const parts: string[] = [];
  let start = 0;
  let angle = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const end = skipQuoted(text, i);
      if (end < 0) throw bad('quoted string');
      i = end - 1;
    } else if (c === 0x3c) angle = true;
    else if (c === 0x3e) angle = false;
    else if (c === 0x2c && !angle) {
      parts.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(text.slice(start).trim());
  return parts;
}

// ---------------------------------------------------------------- name-addr

/** One From/To/Contact value: name-addr or addr-spec, then header parameters (RFC 3261 §20.10). */
export function parseNameAddr(text: string): NameAddr {
  const s = text.trim();
  if (s === '*') return { uri: '*', params: newParams() }; // Contact: * (REGISTER, §10.2.2)
  let displayName: string | undefined;
  let uri: string;
  let rest: string;
  let lt: number;
  if (s.charCodeAt(0) === 0x22) {
    const end = skipQuoted(s, 0);
    if (end < 0) throw bad('display name');
    displayName = s.slice(1, end - 1).replace(/\\(.)/g, '$1');
    lt = end;
    while (lt < s.length && isWsp(s.charCodeAt(lt))) lt++;
    if (s.charCodeAt(lt) !== 0x3c) throw bad('name-addr');
  } else {
    lt = s.indexOf('<');
    if (lt > 0) {
      const words = s.slice(0, lt).trim().split(/[ \t]+/);
      if (!words.every(isToken)) throw bad('display name');
      displayName = words.join(' ');
    }
  }
  if (lt >= 0) {
    const gt = s.indexOf('>', lt);
    if (gt < 0) throw bad('name-addr');
    uri = s.slice(lt + 1, gt);
    rest = s.slice(gt + 1);
  } else {
    // addr-spec: a ";" after the URI starts header parameters, not URI parameters (§20.10).
    const semi = s.indexOf(';');
    uri = (semi < 0 ? s : s.slice(0, semi)).trim();
    rest = semi < 0 ? '' : s.slice(semi);
  }
  if (!isAbsoluteUri(uri) || /[<>"]/.test(uri)) throw bad('name-addr URI');
  const params = parseHeaderParams(rest, 'header parameter');
  return displayName === undefined || displayName === '' ? { uri, params } : { displayName, uri, params };
}

/** Every value of a header holding a comma-separated list of name-addrs (Contact, Route…). */
export function parseNameAddrList(text: string): NameAddr[] {
  return splitHeaderList(text).map(parseNameAddr);
}

export function formatNameAddr(na: NameAddr): string {
  if (na.uri === '*') return '*';
  const name = na.displayName === undefined || na.displayName === ''
    ? ''
    : `"${na.displayName.replace(/["\\]/g, '\\$&')}" `;
  return `${name}<${na.uri}>${formatHeaderParams(na.params)}`;
}

// ---------------------------------------------------------------- Via

/** via-parm = sent-protocol LWS sent-by *( SEMI via-params ); sent-protocol = "SIP/2.0/" transport */
function parseOneVia(s: string): Via {
  const slash1 = s.indexOf('/');
  const slash2 = s.indexOf('/', slash1 + 1);
  if (slash1 < 0 || slash2 < 0) throw bad('Via');
  if (s.slice(0, slash1).trim().toUpperCase() !== 'SIP' || s.slice(slash1 + 1, slash2).trim() !== '2.0') {
    throw bad('Via');
  }
  let i = slash2 + 1;
  while (i < s.length && isWsp(s.charCodeAt(i))) i++;
  let j = i;
  while (j < s.length && s.charCodeAt(j) < 128 && TOKEN[s.charCodeAt(j)] === 1) j++;
  const transport = s.slice(i, j).toUpperCase();
  if (transport === '' || !isWsp(s.charCodeAt(j))) throw bad('Via');
  const semi = s.indexOf(';', j);
  let sentBy = (semi < 0 ? s.slice(j) : s.slice(j, semi)).trim();
  if (sentBy.indexOf(' ') >= 0 || sentBy.indexOf('\t') >= 0) sentBy = sentBy.replace(/[ \t]*:[ \t]*/, ':'); // COLON = SWS ":" SWS
  const { host, port } = parseHostPort(sentBy, 'Via sent-by');
  const params = parseHeaderParams(semi < 0 ? '' : s.slice(semi), 'Via parameter');
  return port === undefined ? { transport, host, params } : { transport, host, port, params };
}

/** All Via values in one header line, in order (a line may hold several, comma-separated). */
export function parseVia(text: string): Via[] {
  return splitHeaderList(text).map(parseOneVia);
}

export function formatVia(via: Via): string {
  return `SIP/2.0/${via.transport} ${formatHostPort(via.host, via.port)}${formatHeaderParams(via.params)}`;
}
