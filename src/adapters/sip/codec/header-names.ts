/**
 * Header names: compact forms and the canonical spelling of well-known headers. Names are
 * matched case-insensitively (RFC 3261 §7.3.1); a name not in the table is kept as written.
 */

/**
 * Compact forms (RFC 3261 §7.3.3 and §20; RFC 3841 a/d/j; RFC 3892 b; RFC 4028 x;
 * RFC 4474 n; RFC 8224 y; RFC 3515 r; RFC 6665 o/u).
 */
export const COMPACT_FORMS: Readonly<Record<string, string>> = {
  a: 'Accept-Contact',
  b: 'Referred-By',
  c: 'Content-Type',
  d: 'Request-Disposition',
  e: 'Content-Encoding',
  f: 'From',
  i: 'Call-ID',
  j: 'Reject-Contact',
  k: 'Supported',
  l: 'Content-Length',
  m: 'Contact',
  n: 'Identity-Info',
  o: 'Event',
  r: 'Refer-To',
  s: 'Subject',
  t: 'To',
  u: 'Allow-Events',
  v: 'Via',
  x: 'Session-Expires',
  y: 'Identity',
};

const WELL_KNOWN = [
  'Accept', 'Accept-Contact', 'Accept-Encoding', 'Accept-Language', 'Alert-Info', 'Allow',
  'Allow-Events', 'Authentication-Info', 'Authorization', 'Call-ID', 'Call-Info', 'Contact',
  'Content-Disposition', 'Content-Encoding', 'Content-Language', 'Content-Length', 'Content-Type',
  'CSeq', 'Date', 'Error-Info', 'Event', 'Expires', 'Flow-Timer', 'From', 'History-Info',
  'Identity', 'Identity-Info', 'In-Reply-To', 'Max-Breadth', 'Max-Forwards', 'MIME-Version',
  'Min-Expires', 'Min-SE', 'Organization', 'P-Asserted-Identity', 'P-Preferred-Identity', 'Path',
  'Priority', 'Privacy', 'Proxy-Authenticate', 'Proxy-Authorization', 'Proxy-Require', 'RAck',
  'Reason', 'Record-Route', 'Refer-To', 'Referred-By', 'Reject-Contact', 'Replaces', 'Reply-To',
  'Request-Disposition', 'Require', 'Retry-After', 'Route', 'RSeq', 'Server', 'Service-Route',
  'Session-Expires', 'SIP-ETag', 'SIP-If-Match', 'Subject', 'Subscription-State', 'Supported',
  'Target-Dialog', 'Timestamp', 'To', 'Unsupported', 'User-Agent', 'Via', 'Warning',
  'WWW-Authenticate',
];

const CANONICAL = new Map<string, string>();
for (const name of WELL_KNOWN) CANONICAL.set(name.toLowerCase(), name);
for (const [compact, long] of Object.entries(COMPACT_FORMS)) CANONICAL.set(compact, long);
/** Names as most peers write them, mapped to themselves: one lookup on the common path. */
const CANONICAL_EXACT = new Map<string, string>();
for (const name of WELL_KNOWN) CANONICAL_EXACT.set(name, name);
for (const [compact, long] of Object.entries(COMPACT_FORMS)) CANONICAL_EXACT.set(compact, long);

/** The canonical spelling when `name` is written exactly so (then it is also a valid token). */
export function exactCanonicalName(name: string): string | undefined {
  return CANONICAL_EXACT.get(name);
}

/** Long canonical name for a header name as written (compact forms expanded). */
export function canonicalHeaderName(name: string): string {
  return CANONICAL.get(name) ?? CANONICAL.get(name.toLowerCase()) ?? name;
}

export function isContentLengthName(name: string): boolean {
  return canonicalHeaderName(name) === 'Content-Length';
}
