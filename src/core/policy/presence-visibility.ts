/**
 * Presence visibility (issue 4 item 5, DESIGN.md "presence is private by default"): whose
 * presence crosses the bridge. Every subscription, probe and presence change passes here; the
 * default answer is no. The operator lists the presentities partners may see, on either side:
 *
 * ```yaml
 * presence:
 *   visible:
 *     - juliet@xmpp.example.org     # one XMPP user (bare JID)
 *     - "*@support.example.org"     # every XMPP user of a domain
 *     - sip:bob@corp.example        # one SIP user
 *     - "sip:*@corp.example"        # every SIP user of a domain
 * ```
 *
 * A withheld subscription is not answered at all, so to the watcher it stays pending exactly as
 * if the person had not decided yet, and says nothing about whether the person exists
 * (RFC 8048 §8.2 "Presence Leaks"; RFC 6121 §3.1.3 lets a contact leave a request unanswered).
 */
import { prepareLocalpart } from '../../mapping/precis.js';
import type { Address, CanonicalEvent } from '../events.js';

export interface PresenceDecision {
  readonly allowed: boolean;
  /** The rule that decided, for logs and metrics: the pattern that matched, or `default-deny`. */
  readonly rule: string;
}

export class PresenceVisibility {
  private readonly exact = new Set<string>();
  private readonly domains = new Set<string>();

  /** @param visible patterns as in the file comment; a bad one throws naming it. */
  constructor(visible: readonly string[]) {
    for (const pattern of visible) {
      const key = patternKey(pattern);
      if (key === undefined) throw new Error(`presence.visible: "${pattern}" is not user@domain, *@domain, sip:user@domain or sip:*@domain`);
      (key.wildcard ? this.domains : this.exact).add(key.value);
    }
  }

  /** May `watcher` see `presentity`? Both in their own side's terms. */
  decide(presentity: Address): PresenceDecision {
    const scheme = presentity.side === 'sip' ? 'sip:' : '';
    const domain = presentity.domain.toLowerCase();
    const one = `${scheme}${presentity.user}@${domain}`;
    if (this.exact.has(one)) return { allowed: true, rule: one };
    const all = `${scheme}*@${domain}`;
    if (this.domains.has(all)) return { allowed: true, rule: all };
    return { allowed: false, rule: 'default-deny' };
  }
}

/**
 * The presentity an event is about, in its own side's terms, given the event as it arrived
 * (`inbound`) and as routed (`routed`); undefined for events that do not disclose presence.
 * Withdrawals (deny, cancel, unsubscribe) always pass: they only ever reduce what is seen.
 */
export function presentityOf(inbound: CanonicalEvent, routed: { from: Address; to: Address }): Address | undefined {
  switch (inbound.kind) {
    case 'subscription':
      if (inbound.action === 'subscribe') return routed.to;
      if (inbound.action === 'approve') return inbound.from;
      return undefined;
    case 'probe':
      return routed.to;
    case 'presence':
      return inbound.from;
    default:
      return undefined;
  }
}

function patternKey(pattern: string): { value: string; wildcard: boolean } | undefined {
  const m = /^(sip:)?([^@\s]+)@([^@\s/]+)$/i.exec(pattern.trim());
  if (m === null) return undefined;
  const scheme = m[1] === undefined ? '' : 'sip:';
  const user = m[2] as string;
  const domain = (m[3] as string).toLowerCase();
  if (user === '*') return { value: `${scheme}*@${domain}`, wildcard: true };
  // XMPP localparts compare after preparation (RFC 7622 §3.3), as the router's addresses are.
  let prepared = user;
  if (scheme === '') {
    try {
      prepared = prepareLocalpart(user);
    } catch {
      return undefined;
    }
  }
  return { value: `${scheme}${prepared}@${domain}`, wildcard: false };
}
