/**
 * Static identity table from the configuration: E.164 numbers (in `+` form) that stand for SIP
 * addresses, e.g. `+15551234567` ↔ `sip:alice@corp.example`. RFC 7247 §6.1 leaves the mapping
 * of telephone numbers out of scope, so this table is the operator's word.
 */
import { BridgeError } from '../core/errors.js';
import type { Address } from '../core/events.js';
import { normalizeHost } from './domain.js';

/** One configured row (config key `mapping.identities[i]`). */
export interface IdentityEntry {
  readonly e164: string;
  readonly sip: string;
}

/** ITU-T E.164 in `+` form: a leading non-zero country code digit, at most 15 digits. */
const E164 = /^\+[1-9]\d{1,14}$/;

export function isE164(s: string): boolean {
  return E164.test(s);
}

export class StaticIdentityTable {
  private readonly byE164 = new Map<string, { readonly sip: Address; readonly at: number }>();
  private readonly bySip = new Map<string, { readonly e164: string; readonly at: number }>();

  /** @throws BridgeError `IDENTITY_INVALID` naming the first bad or duplicate entry. */
  constructor(entries: readonly IdentityEntry[]) {
    entries.forEach((entry, at) => {
      const where = `mapping.identities[${at}]`;
      if (!isE164(entry.e164)) {
        throw invalid(`${where}: e164 "${entry.e164}" is not an E.164 number in + form such as +15551234567`);
      }
      const sip = parseSipAor(entry.sip);
      if (sip === undefined) {
        throw invalid(`${where}: sip "${entry.sip}" is not a SIP address such as sip:alice@corp.example`);
      }
      const sameNumber = this.byE164.get(entry.e164);
      if (sameNumber !== undefined) {
        throw invalid(`${where}: e164 ${entry.e164} is already listed at mapping.identities[${sameNumber.at}]`);
      }
      const key = sipKey(sip);
      const sameSip = this.bySip.get(key);
      if (sameSip !== undefined) {
        // Two numbers for one SIP address would make the reverse lookup a guess.
        throw invalid(
          `${where}: sip ${entry.sip} is already the address of ${sameSip.e164} at mapping.identities[${sameSip.at}]`,
        );
      }
      this.byE164.set(entry.e164, { sip, at });
      this.bySip.set(key, { e164: entry.e164, at });
    });
  }

  /** The SIP address a number stands for, or undefined when the number is not in the table. */
  sipForE164(e164: string): Address | undefined {
    return this.byE164.get(e164)?.sip;
  }

  /** The number that stands for a SIP address (user exact, domain case-insensitive). */
  e164ForSip(sip: Address): string | undefined {
    return this.bySip.get(sipKey(sip))?.e164;
  }

  get size(): number {
    return this.byE164.size;
  }
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

// RFC 3261 §19.1.4: the user part compares case-sensitively, the host case-insensitively.
function sipKey(a: Address): string {
  return `${a.user}@${a.domain.toLowerCase()}`;
}

function invalid(message: string): BridgeError {
  return new BridgeError('IDENTITY_INVALID', message, { condition: 'internal-server-error' });
}
