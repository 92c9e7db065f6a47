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

/**
 * One visibility rule: these presentities (patterns or `group:NAME`) may be seen by these
 * watchers (patterns; absent: by every watcher the federation lets in).
 */
export interface VisibilityRule {
  readonly presentities: readonly string[];
  readonly watchers?: readonly string[];
}

interface CompiledRule {
  readonly exact: ReadonlySet<string>;
  readonly domains: ReadonlySet<string>;
  readonly watchers?: { readonly exact: ReadonlySet<string>; readonly domains: ReadonlySet<string> };
  readonly name: string;
}

/**
 * Which rules speak for a presentity: those naming it (or a group it is in) come first, and
 * when any does, only they decide; otherwise the rules for its whole domain decide. So
 * `*@corp` visible to all and `group:executives` visible to named partners keeps the
 * executives to those partners (issue 6 item 4: "who sees the CEO").
 */
export class PresenceVisibility {
  private readonly rules: readonly CompiledRule[];

  /**
   * @param visible a pattern (visible to every watcher) or a rule per entry
   * @param groups named lists of presentity patterns, referred to as `group:NAME`
   * @throws Error naming a bad pattern or an unknown group.
   */
  constructor(visible: ReadonlyArray<string | VisibilityRule>, groups: Readonly<Record<string, readonly string[]>> = {}) {
    this.rules = visible.map((entry, i) => compile(typeof entry === 'string' ? { presentities: [entry] } : entry, groups, i));
  }

  /** May `watcher` see `presentity`? Both in their own side's terms (`sip:` for SIP users). */
  decide(presentity: Address, watcher?: Address): PresenceDecision {
    const one = addressKey(presentity);
    const all = domainKey(presentity);
    const named = this.rules.filter((r) => r.exact.has(one));
    const speaking = named.length > 0 ? named : this.rules.filter((r) => r.domains.has(all));
    for (const rule of speaking) {
      if (rule.watchers === undefined) return { allowed: true, rule: rule.name };
      if (watcher !== undefined && (rule.watchers.exact.has(addressKey(watcher)) || rule.watchers.domains.has(domainKey(watcher)))) {
        return { allowed: true, rule: rule.name };
      }
    }
    return { allowed: false, rule: speaking.length > 0 ? `${speaking[0]?.name ?? ''}: watcher not listed` : 'default-deny' };
  }
}

function compile(rule: VisibilityRule, groups: Readonly<Record<string, readonly string[]>>, index: number): CompiledRule {
  const exact = new Set<string>();
  const domains = new Set<string>();
  const add = (pattern: string, where: string): void => {
    const key = patternKey(pattern);
    if (key === undefined) throw new Error(`${where}: "${pattern}" is not user@domain, *@domain, sip:user@domain or sip:*@domain`);
    (key.wildcard ? domains : exact).add(key.value);
  };
  for (const p of rule.presentities) {
    if (p.startsWith('group:')) {
      const members = groups[p.slice('group:'.length)];
      if (members === undefined) throw new Error(`presence.visible[${index}]: no group "${p.slice('group:'.length)}" in presence.groups`);
      for (const m of members) add(m, `presence.groups.${p.slice('group:'.length)}`);
    } else {
      add(p, `presence.visible[${index}]`);
    }
  }
  let watchers: CompiledRule['watchers'];
  if (rule.watchers !== undefined) {
    const w = { exact: new Set<string>(), domains: new Set<string>() };
    for (const p of rule.watchers) {
      const key = patternKey(p);
      if (key === undefined) throw new Error(`presence.visible[${index}].watchers: "${p}" is not user@domain, *@domain, sip:user@domain or sip:*@domain`);
      (key.wildcard ? w.domains : w.exact).add(key.value);
    }
    watchers = w;
  }
  const name = rule.presentities.join(',') + (rule.watchers === undefined ? '' : ` to ${rule.watchers.join(',')}`);
  return { exact, domains, ...(watchers === undefined ? {} : { watchers }), name };
}

function addressKey(a: Address): string {
  return `${a.side === 'sip' ? 'sip:' : ''}${a.user}@${a.domain.toLowerCase()}`;
}

function domainKey(a: Address): string {
  return `${a.side === 'sip' ? 'sip:' : ''}*@${a.domain.toLowerCase()}`;
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

/** The watcher of an event presentityOf names, in its own side's terms. */
export function watcherOf(inbound: CanonicalEvent, routed: { from: Address; to: Address }): Address | undefined {
  switch (inbound.kind) {
    case 'subscription':
      if (inbound.action === 'subscribe') return inbound.from;
      if (inbound.action === 'approve') return routed.to;
      return undefined;
    case 'probe':
      return inbound.from;
    case 'presence':
      return routed.to;
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
