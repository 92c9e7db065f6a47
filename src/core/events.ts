/**
 * Canonical events: protocol-neutral plain data that travels through the queue (and, later,
 * Redis), so everything here must survive JSON.stringify/parse unchanged.
 */
import type { StanzaErrorCondition } from './errors.js';
import { newEventId } from './ids.js';

export type Side = 'sip' | 'xmpp';

/**
 * An address on one side, as `user@domain` (plus an XMPP resource when one is known).
 * On the XMPP side `user` is the JID localpart exactly as on the wire (XEP-0106 escaped);
 * on the SIP side it is the URI user part. E.164 numbers are kept in `+` form as `user`.
 */
export interface Address {
  readonly side: Side;
  readonly user: string;
  /** Empty for a `tel:` URI, which has no host. */
  readonly domain: string;
  readonly resource?: string;
  /**
   * The user part is a telephone number (a SIP `tel:` URI or `user=phone`, RFC 3261 §19.1.6):
   * the identity chain says whom it belongs to.
   */
  readonly telephone?: true;
}

interface EventBase {
  readonly id: string;
  /** Side the event entered the bridge from. */
  readonly origin: Side;
  readonly from: Address;
  readonly to: Address;
  /** Repeats of the same message on the origin side carry the same key (delivered once). */
  readonly dedupeKey: string;
  /** Milliseconds since the epoch, from the bridge's clock. */
  readonly createdAt: number;
  /**
   * The origin's own handle for it (XMPP stanza id, SIP Call-ID), so a failure can be rendered
   * against the original on its way back.
   */
  readonly originRef?: string;
  /**
   * Who the origin's peer proved to be (SIP over mutual TLS: the names its certificate vouches
   * for, RFC 5922 §7.1), so the federation policy can hold the sender's domain against them.
   */
  readonly peer?: { readonly certificateIdentities: readonly string[] };
  /** Domains the origin asserted besides `from` (SIP P-Asserted-Identity hosts, RFC 3325). */
  readonly assertedDomains?: readonly string[];
  /** W3C trace context carriers (OpenTelemetry), when tracing is on. */
  readonly trace?: Readonly<Record<string, string>>;
  /**
   * Set by the router when it translates `from`/`to` for the other side: the addresses exactly
   * as the origin wrote them, so a failure goes back to the sender from the address it wrote to.
   */
  readonly source?: { readonly from: Address; readonly to: Address };
  /**
   * Set by the router: the federation partner on the far side (the sender's inbound, else the
   * target's), for metrics and traces. Absent between the operator's own users.
   */
  readonly partner?: string;
}

export interface MessageEvent extends EventBase {
  readonly kind: 'message';
  readonly body: string;
  /** MIME type of `body`; `text/plain` unless the sender said otherwise. */
  readonly contentType: string;
  readonly thread?: string;
  /** XMPP message type (chat/normal) when it came from XMPP; SIP has only page-mode IM. */
  readonly messageType?: 'chat' | 'normal';
  readonly alternative?: { readonly contentType: string; readonly body: string };
  readonly receiptRequested?: boolean;
}

/** Something could not be delivered: goes back to the origin of event `ref`. */
export interface FailureEvent extends EventBase {
  readonly kind: 'failure';
  /** Id of the event that failed. */
  readonly ref: string;
  /** Kind of the event that failed (an XMPP error is rendered as the same stanza kind). */
  readonly refKind: CanonicalEvent['kind'];
  readonly condition: StanzaErrorCondition;
  readonly text?: string;
  /** SIP status that caused it, when it came from SIP (kept for logs and precise mapping). */
  readonly sipStatus?: number;
}

/**
 * How available a person is: XMPP `<show/>` values plus `available` (no show) and
 * `unavailable`, the common ground RFC 8048 §4.3 and §5.3 map PIDF/RPID to and from.
 */
export type Availability = 'available' | 'chat' | 'away' | 'xa' | 'dnd' | 'unavailable';

export const AVAILABILITIES: readonly Availability[] = ['available', 'chat', 'away', 'xa', 'dnd', 'unavailable'];

/**
 * One presence change of `from` (the presentity) for `to` (one watcher). `from.resource` names
 * the device (XMPP resource, PIDF tuple id) when one is known.
 */
export interface PresenceEvent extends EventBase {
  readonly kind: 'presence';
  readonly availability: Availability;
  /** Free text (XMPP `<status/>`, PIDF `<note/>`). */
  readonly note?: string;
  /** XMPP priority, -128..127, when it came from XMPP. */
  readonly priority?: number;
}

/**
 * Subscription state changes in XMPP's terms (RFC 6121 §3, RFC 8048 §4.1/§5.1):
 * - `subscribe`: `from` (watcher) asks to see `to` (presentity);
 * - `approve`: `from` (presentity) lets `to` (watcher) see it;
 * - `deny`: `from` (presentity) refuses or revokes `to`'s subscription (XMPP `unsubscribed`);
 * - `unsubscribe`: `from` (watcher) stops watching `to`;
 * - `cancel`: `from` (presentity) ends a subscription that was active (SIP terminated after active).
 */
export type SubscriptionAction = 'subscribe' | 'approve' | 'deny' | 'unsubscribe' | 'cancel';

export interface SubscriptionEvent extends EventBase {
  readonly kind: 'subscription';
  readonly action: SubscriptionAction;
}

/** `from` (a watcher) asks for `to`'s current presence (XMPP `probe`, RFC 6121 §4.3). */
export interface ProbeEvent extends EventBase {
  readonly kind: 'probe';
}

export type CanonicalEvent = MessageEvent | FailureEvent | PresenceEvent | SubscriptionEvent | ProbeEvent;

interface NewEventBase {
  origin: Side;
  from: Address;
  to: Address;
  dedupeKey: string;
  createdAt: number;
  originRef?: string;
}

export function presenceEvent(p: NewEventBase & { availability: Availability; note?: string; priority?: number }): PresenceEvent {
  return { kind: 'presence', id: newEventId(), ...stripUndefined(p) } as PresenceEvent;
}

export function subscriptionEvent(s: NewEventBase & { action: SubscriptionAction }): SubscriptionEvent {
  return { kind: 'subscription', id: newEventId(), ...stripUndefined(s) } as SubscriptionEvent;
}

export function probeEvent(p: NewEventBase): ProbeEvent {
  return { kind: 'probe', id: newEventId(), ...stripUndefined(p) } as ProbeEvent;
}

export interface NewMessage {
  origin: Side;
  from: Address;
  to: Address;
  body: string;
  contentType?: string;
  dedupeKey: string;
  createdAt: number;
  originRef?: string;
  thread?: string;
  messageType?: 'chat' | 'normal';
}

export function messageEvent(m: NewMessage): MessageEvent {
  return {
    kind: 'message',
    id: newEventId(),
    contentType: 'text/plain',
    ...stripUndefined(m),
  } as MessageEvent;
}

/**
 * The failure of `original`, addressed back to its sender in the sender's own terms: `from` is
 * the address the sender wrote to, `to` is the sender. Its `origin` is the side that failed.
 */
export function failureOf(
  original: CanonicalEvent,
  failure: { condition: StanzaErrorCondition; text?: string; sipStatus?: number },
  now: number,
): FailureEvent {
  const sent = original.source ?? { from: original.from, to: original.to };
  return stripUndefined({
    kind: 'failure' as const,
    id: newEventId(),
    origin: original.to.side,
    from: sent.to,
    to: sent.from,
    dedupeKey: `failure:${original.id}`,
    createdAt: now,
    originRef: original.originRef,
    // The failure's delivery stays in the trace of what failed.
    trace: original.trace,
    ref: original.id,
    refKind: original.kind,
    condition: failure.condition,
    text: failure.text,
    sipStatus: failure.sipStatus,
  }) as FailureEvent;
}

export function formatAddress(a: Address): string {
  const base = a.user === '' ? a.domain : a.domain === '' ? a.user : `${a.user}@${a.domain}`;
  return a.resource === undefined ? base : `${base}/${a.resource}`;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
