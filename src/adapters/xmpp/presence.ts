/**
 * Paired conversions between `<presence/>` stanzas and the canonical presence, subscription and
 * probe events (RFC 6121 §3 and §4, RFC 8048). Pure, like stanza.ts, which dispatches here.
 */
import xml, { type Element } from '@xmpp/xml';
import type { StanzaErrorCondition } from '../../core/errors.js';
import {
  formatAddress,
  presenceEvent,
  probeEvent,
  subscriptionEvent,
  type Address,
  type Availability,
  type PresenceEvent,
  type ProbeEvent,
  type SubscriptionAction,
  type SubscriptionEvent,
} from '../../core/events.js';
import { randomToken } from '../../core/ids.js';
import { errorElement, readStanzaError } from './stanza-error.js';
import { xmppAddress, type Jid } from './stanza.js';

export type PresenceLikeEvent = PresenceEvent | SubscriptionEvent | ProbeEvent;

/** What an inbound `<presence/>` means for the bridge. */
export type InboundPresence =
  | { readonly kind: 'presence'; readonly event: PresenceLikeEvent }
  /** `<presence type='error'>`: the reply to a presence stanza the bridge sent with id `id`. */
  | { readonly kind: 'presence-error'; readonly id: string | undefined; readonly condition: StanzaErrorCondition; readonly text?: string }
  | { readonly kind: 'ignored'; readonly reason: string };

/** RFC 6121 §3: subscription stanza types in canonical terms (RFC 8048 §5.2.1, §5.3.1). */
const ACTION_OF_TYPE: Readonly<Record<string, SubscriptionAction>> = {
  subscribe: 'subscribe',
  subscribed: 'approve',
  unsubscribe: 'unsubscribe',
  unsubscribed: 'deny',
};

/**
 * Canonical actions as stanza types. `cancel` (a presentity ends an active subscription) is
 * `unsubscribed` too: RFC 6121 §3.2 uses the same stanza to cancel and to deny.
 */
const TYPE_OF_ACTION: Record<SubscriptionAction, string> = {
  subscribe: 'subscribe',
  approve: 'subscribed',
  unsubscribe: 'unsubscribe',
  deny: 'unsubscribed',
  cancel: 'unsubscribed',
};

/** RFC 6121 §4.7.2.1: the defined `<show/>` values; no `<show/>` means plain available. */
const SHOWS: ReadonlySet<string> = new Set<Availability>(['chat', 'away', 'xa', 'dnd']);

export interface PresenceContext {
  readonly component: string;
  readonly now: number;
}

/**
 * Reads an inbound `<presence/>` routed to the component. `from` and `to` are already parsed;
 * `to` must name a user at the component (presence to the bare component domain is ignored).
 */
export function fromPresenceStanza(stanza: Element, from: Jid, to: Jid, ctx: PresenceContext): InboundPresence {
  const type = stanza.attrs['type'];
  if (type === 'error') {
    const { condition, text } = readStanzaError(stanza);
    const id = stanza.attrs['id'];
    return text === undefined ? { kind: 'presence-error', id, condition } : { kind: 'presence-error', id, condition, text };
  }
  if (to.local === '') return { kind: 'ignored', reason: 'presence to the component domain itself' };
  const id = stanza.attrs['id'];
  const originRef = id === undefined || id === '' ? undefined : id;
  const fromFull = formatAddress(xmppAddress(from));
  const base = {
    origin: 'xmpp' as const,
    from: xmppAddress(from),
    to: { side: 'xmpp' as const, user: to.local, domain: ctx.component },
    createdAt: ctx.now,
    ...(originRef === undefined ? {} : { originRef }),
  };
  if (type === undefined || type === 'unavailable') {
    const note = statusOf(stanza);
    return {
      kind: 'presence',
      event: presenceEvent({
        ...base,
        availability: type === 'unavailable' ? 'unavailable' : showOf(stanza),
        ...(note === undefined ? {} : { note }),
        ...(type === 'unavailable' ? {} : { priority: priorityOf(stanza) }),
        // Each presence is a new state, never a resend of an earlier one: the latest wins.
        dedupeKey: `xmpp:${fromFull}:presence:${randomToken(16)}`,
      }),
    };
  }
  if (type === 'probe') {
    return { kind: 'presence', event: probeEvent({ ...base, dedupeKey: `xmpp:${fromFull}:probe:${randomToken(16)}` }) };
  }
  const action = ACTION_OF_TYPE[type];
  // RFC 6121 §4.7.1: a presence type other than the defined ones is not understood; drop it.
  if (action === undefined) return { kind: 'ignored', reason: `presence type '${type}' is not defined` };
  return {
    kind: 'presence',
    event: subscriptionEvent({
      ...base,
      action,
      // As for messages: an id names one request, so a resend after reconnect is merged.
      dedupeKey: originRef === undefined ? `xmpp:${fromFull}:no-id:${randomToken(16)}` : `xmpp:${fromFull}:${originRef}`,
    }),
  };
}

/** Renders a presence, subscription or probe event as the stanza the component sends. */
export function toPresenceStanza(event: PresenceLikeEvent): Element {
  const attrs = { from: formatAddress(event.from), to: formatAddress(event.to), id: event.id };
  switch (event.kind) {
    case 'probe':
      return xml('presence', { ...attrs, type: 'probe' });
    case 'subscription':
      return xml('presence', { ...attrs, type: TYPE_OF_ACTION[event.action] });
    case 'presence': {
      const unavailable = event.availability === 'unavailable';
      return xml(
        'presence',
        unavailable ? { ...attrs, type: 'unavailable' } : attrs,
        SHOWS.has(event.availability) ? xml('show', {}, event.availability) : undefined,
        event.note === undefined || event.note === '' ? undefined : xml('status', {}, event.note),
        unavailable || event.priority === undefined ? undefined : xml('priority', {}, String(clampPriority(event.priority))),
      );
    }
  }
}

/**
 * RFC 6120 §8.3.2: the failure of a presence-related stanza is a presence of type error with
 * the failed stanza's id (§8.3.1 rule 3).
 */
export function presenceErrorStanza(from: Address, to: Address, originRef: string | undefined, condition: StanzaErrorCondition, text?: string): Element {
  return xml('presence', { type: 'error', id: originRef, from: formatAddress(from), to: formatAddress(to) }, errorElement(condition, text));
}

/** RFC 6121 §4.7.2.1: an unknown `<show/>` value is not one of the states; read it as none. */
function showOf(stanza: Element): Availability {
  const show = stanza.getChildText('show')?.trim() ?? '';
  return SHOWS.has(show) ? (show as Availability) : 'available';
}

/**
 * RFC 6121 §4.7.2.2: several `<status/>` may come, one per xml:lang. The one without xml:lang
 * (the stanza's own language) is preferred, else the first.
 */
function statusOf(stanza: Element): string | undefined {
  const statuses = stanza.getChildren('status');
  const chosen = statuses.find((s) => s.attrs['xml:lang'] === undefined) ?? statuses[0];
  const text = chosen?.getText();
  return text === undefined || text === '' ? undefined : text;
}

/**
 * RFC 6121 §4.7.2.3: an integer in -128..127; none means 0. A value outside that, or not an
 * integer, is read as 0 too rather than refusing the whole presence.
 */
function priorityOf(stanza: Element): number {
  const text = stanza.getChildText('priority')?.trim() ?? '';
  if (!/^[+-]?\d{1,4}$/.test(text)) return 0;
  const n = Number(text);
  return n >= -128 && n <= 127 ? n : 0;
}

function clampPriority(n: number): number {
  return Number.isInteger(n) ? Math.min(127, Math.max(-128, n)) : 0;
}
