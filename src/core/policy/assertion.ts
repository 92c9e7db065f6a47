/**
 * Identity assertion (issue 6 item 3): a partner speaks only for its own domains. The SIP From
 * domain, and each P-Asserted-Identity domain when present, must be one the authenticated
 * partner claims (its domains or, for a clearinghouse, its members); traffic no partner
 * authenticated may carry only the operator's own domains. Anything else is a spoofing attempt:
 * 403 / `forbidden`, logged as such by the caller.
 *
 * A PAI is checked rather than trusted: RFC 3325 lets a network assert identities only inside
 * its trust domain, and a federation partner is outside ours, so its assertion counts for no
 * more than its From.
 */
import { BridgeError } from '../errors.js';
import { normalizeDomain, partnerClaims, type Partner } from './partners.js';

export interface AssertedIdentity {
  /** The From domain (SIP) or the `from` JID's domain (XMPP). */
  readonly fromDomain: string;
  /** P-Asserted-Identity host parts (a `tel:` PAI has none and is left out). */
  readonly assertedDomains?: readonly string[];
  /**
   * The partner the connection authenticated (by certificate), or the one authorize() found
   * for a partner that has no certificate; undefined when no partner stands behind the traffic.
   */
  readonly authenticated: { readonly partner: Partner } | undefined;
  /** The operator's own domains: what traffic no partner stands behind may carry. */
  readonly localDomains?: readonly string[];
}

export type AssertionResult = { readonly spoofed: false } | { readonly spoofed: true; readonly domain: string; readonly reason: string };

export function checkAssertedIdentity(identity: AssertedIdentity): AssertionResult {
  const { authenticated } = identity;
  const local = new Set((identity.localDomains ?? []).map(normalizeDomain));
  const claimed = [
    { header: 'From', domain: identity.fromDomain },
    ...(identity.assertedDomains ?? []).map((domain) => ({ header: 'P-Asserted-Identity', domain })),
  ];
  for (const { header, domain } of claimed) {
    const d = normalizeDomain(domain);
    if (d.length === 0) return { spoofed: true, domain: d, reason: `${header} has no domain` };
    if (authenticated === undefined) {
      if (!local.has(d)) return { spoofed: true, domain: d, reason: `${header} domain ${printable(d)} is not local and no partner authenticated it` };
    } else if (!partnerClaims(authenticated.partner, d)) {
      return { spoofed: true, domain: d, reason: `${header} domain ${printable(d)} is not one partner ${authenticated.partner.name} may assert` };
    }
  }
  return { spoofed: false };
}

/** The refusal for a spoofed identity: XMPP `forbidden`, SIP 403 (RFC 3261 §21.4.4). */
export function spoofedIdentityError(reason: string): BridgeError {
  return new BridgeError('SPOOFED_IDENTITY', `spoofed identity refused: ${reason}`, { condition: 'forbidden', sipStatus: 403, retryable: false });
}

/**
 * The sender's text as it may appear in a reason that reaches logs, a SIP reason phrase or an
 * XMPP error text: visible ASCII only (no CR/LF to inject headers with), at most 64 characters.
 */
function printable(text: string): string {
  const visible = text.replace(/[^\x21-\x7e]/g, '?');
  return visible.length > 64 ? `${visible.slice(0, 64)}...` : visible;
}
