/**
 * Syntax shared by the identity sources: E.164 in `+` form and SIP addresses of record.
 * (RFC 7247 §6.1 leaves the mapping of telephone numbers out of scope: the sources in
 * ./identity/ are the operator's word.)
 */
import type { Address } from '../core/events.js';
import { normalizeHost } from './domain.js';

/** ITU-T E.164 in `+` form: a leading non-zero country code digit, at most 15 digits. */
const E164 = /^\+[1-9]\d{1,14}$/;

export function isE164(s: string): boolean {
  return E164.test(s);
}

/**
 * `sip:user@host` or `sips:user@host` (an address of record: no port, parameters or headers).
 * The user part is percent-decoded, as the SIP codec gives it (RFC 3261 §19.1.2).
 */
export function parseSipAor(uri: string): Address | undefined {
  const m = /^sips?:([^@;?]+)@([^@;?:]+)$/i.exec(uri);
  if (m === null) return undefined;
  let user: string;
  try {
    user = decodeURIComponent(m[1] as string);
  } catch {
    return undefined;
  }
  const domain = normalizeHost(m[2] as string);
  if (domain === undefined || user.length === 0) return undefined;
  return { side: 'sip', user, domain };
}
