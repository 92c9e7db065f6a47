/**
 * Routes to federation partners (issue 6 item 2): the SIP URI a target domain's requests go
 * through, from the partner registry, for SipAdapterOptions.routeFor. The adapter locates the
 * URI with RFC 3263, as it would the domain itself.
 */
import { normalizeDomain, partnerClaims, type PartnerRegistry } from '../../core/policy/partners.js';

/**
 * For a target domain, in turn:
 * - its partner's configured `nextHop`;
 * - a clearinghouse member: the clearinghouse's first own (non-wildcard) domain, `sips:` when
 *   its certificate is pinned or named (trust configured), else `sip:`;
 * - a direct partner with trust configured: `sips:<domain>` (RFC 5922: TLS, so the partner's
 *   certificate can be checked against its domain);
 * - otherwise undefined: the outbound proxy or the domain's own RFC 3263 location.
 */
export function partnerRoutes(registry: PartnerRegistry): (domain: string) => string | undefined {
  return (domain) => {
    const partner = registry.partnerForDomain(domain, 'sip');
    if (partner === undefined) return undefined;
    if (partner.nextHop !== undefined) return partner.nextHop;
    const trusted = partner.trust.certificateNames !== undefined || partner.trust.fingerprints !== undefined;
    // A clearinghouse's own domains are reached like a direct partner's; its members through it.
    const member = partner.model === 'clearinghouse' && !partnerClaims({ ...partner, members: undefined }, domain);
    if (member) {
      const hub = partner.domains.find((d) => !d.startsWith('*.'));
      return hub === undefined ? undefined : `${trusted ? 'sips' : 'sip'}:${hub}`;
    }
    return trusted ? `sips:${normalizeDomain(domain)}` : undefined;
  };
}
