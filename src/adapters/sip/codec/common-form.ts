/**
 * Allocation-free recognisers for the common, simple spelling of the Via, From and To values
 * that `parseMessage` must check on every message (RFC 3261 §8.1.1). They are a fast path
 * only: `true` means the full parser (`parseVia`, `parseNameAddr` in uri.ts) certainly accepts
 * the value; `false` means "not the simple form, ask the full parser", which then decides, so
 * strictness and error statuses are exactly those of uri.ts. Anything unusual (whitespace
 * inside, quoted parameter values, IPv6, several Via values on one line, addr-spec without
 * angle brackets) is left to the full parser.
 */
import { HOSTNAME, TOKEN } from './syntax.js';

/** More parameters than this are left to the full parser (keeps the duplicate check bounded). */
const MAX_PARAMS = 8;
const paramStart = new Int32Array(MAX_PARAMS);
const paramEnd = new Int32Array(MAX_PARAMS);

function isTokenChar(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

/** `SIP/2.0/` transport SP host [ ":" port ] *( ";" param ), e.g. a Via written by any common stack. */
export function isCommonVia(s: string): boolean {
  const n = s.length;
  if (!s.startsWith('SIP/2.0/')) return false;
  let i = 8;
  while (i < n && isTokenChar(s.charCodeAt(i))) i++;
  if (i === 8) return false;
  // At least one SP/HTAB between sent-protocol and sent-by (LWS).
  const afterTransport = i;
  while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
  if (i === afterTransport) return false;
  const hostStart = i;
  while (i < n && s.charCodeAt(i) < 128 && HOSTNAME[s.charCodeAt(i)] === 1) i++;
  if (i === hostStart) return false;
  if (i < n && s.charCodeAt(i) === 0x3a /* : */) {
    i = port(s, i + 1);
    if (i < 0) return false;
  }
  return params(s, i);
}

/** `"Display Name" <uri> *( ";" param )`, `Name <uri>…` or `<uri>…` (RFC 3261 §20.10 name-addr). */
export function isCommonNameAddr(s: string): boolean {
  const n = s.length;
  let i = 0;
  const c0 = s.charCodeAt(0);
  if (c0 === 0x22 /* " */) {
    // quoted-string display name: any character, `\` escapes the next one.
    for (i = 1; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x5c) i++;
      else if (c === 0x22) break;
    }
    if (i >= n) return false;
    i++;
    while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
  } else if (isTokenChar(c0)) {
    // Display name as words of token characters separated by SP/HTAB.
    while (i < n && (isTokenChar(s.charCodeAt(i)) || s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
  }
  if (i >= n || s.charCodeAt(i) !== 0x3c /* < */) return false;
  // absoluteURI: scheme ":" then URI characters (no whitespace, controls, `<`, `"`) up to ">".
  i++;
  const schemeStart = i;
  let c = s.charCodeAt(i);
  if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a))) return false;
  for (i++; i < n; i++) {
    c = s.charCodeAt(i);
    const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (!alnum && c !== 0x2b && c !== 0x2d && c !== 0x2e) break;
  }
  if (i === schemeStart || c !== 0x3a /* : */) return false;
  const uriRestStart = ++i;
  for (; i < n; i++) {
    c = s.charCodeAt(i);
    if (c === 0x3e /* > */) break;
    if (c <= 0x20 || c === 0x7f || c === 0x3c || c === 0x22) return false;
  }
  if (i >= n || i === uriRestStart) return false;
  return params(s, i + 1);
}

/** 1-5 digits up to 65535 starting at `i`; the index after them, or -1. */
function port(s: string, i: number): number {
  let value = 0;
  const start = i;
  while (i < s.length && i - start < 6) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    value = value * 10 + (c - 0x30);
    i++;
  }
  const digits = i - start;
  return digits === 0 || digits > 5 || value > 65535 ? -1 : i;
}

/**
 * From `i` to the end: `*( ";" token [ "=" value ] )` with no whitespace and no quoted value,
 * names distinct regardless of case (uri.ts refuses a repeated parameter).
 */
function params(s: string, i: number): boolean {
  const n = s.length;
  let count = 0;
  while (i < n) {
    if (s.charCodeAt(i) !== 0x3b /* ; */ || count === MAX_PARAMS) return false;
    const nameStart = ++i;
    while (i < n && isTokenChar(s.charCodeAt(i))) i++;
    if (i === nameStart) return false;
    for (let k = 0; k < count; k++) {
      if (sameName(s, paramStart[k] as number, paramEnd[k] as number, nameStart, i)) return false;
    }
    paramStart[count] = nameStart;
    paramEnd[count] = i;
    count++;
    if (i < n && s.charCodeAt(i) === 0x3d /* = */) {
      // gen-value = token / host (IPv6 reference brackets and colons included)
      const valueStart = ++i;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (!isTokenChar(c) && c !== 0x5b && c !== 0x5d && c !== 0x3a) break;
      }
      if (i === valueStart) return false;
    }
  }
  return true;
}

/** ASCII case-insensitive equality of two token ranges of `s`. */
function sameName(s: string, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (; a < aEnd; a++, b++) {
    const x = s.charCodeAt(a);
    const y = s.charCodeAt(b);
    if (x !== y && (x | 0x20) !== (y | 0x20)) return false;
  }
  return true;
}
