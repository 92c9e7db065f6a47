/**
 * Host names as both sides may use them. RFC 7247 §6.1 leaves domain mapping out of scope
 * (IDNs are allowed in JIDs but not in SIP URIs), so the bridge carries only hosts valid on the
 * SIP side: ASCII host names and IP literals, compared in lower case.
 */

// RFC 3261 §25.1: hostname = *( domainlabel "." ) toplabel [ "." ]; a label is alphanum,
// optionally with inner hyphens. IPv4 literals match the same shape.
const HOSTNAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.?$/;
// RFC 3261 §25.1 IPv6reference, loosely: the codec is the place that parses it exactly.
const IPV6_REFERENCE = /^\[[0-9a-f:.]{2,45}\]$/;

/** The host in lower case, or undefined when it is not a host name or IP literal (RFC 3261 §25.1). */
export function normalizeHost(host: string): string | undefined {
  const lower = host.toLowerCase();
  if (lower.length === 0 || lower.length > 253) return undefined;
  return HOSTNAME.test(lower) || IPV6_REFERENCE.test(lower) ? lower : undefined;
}
