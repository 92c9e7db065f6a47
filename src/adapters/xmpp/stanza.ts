/**
 * Paired conversions between XMPP stanzas and canonical events (STYLE.md habit 2). Pure: the
 * clock comes in as `now`, no sockets.
 */
import xml, { type Element } from '@xmpp/xml';
import type { StanzaErrorCondition } from '../../core/errors.js';
import { formatAddress, messageEvent, type Address, type CanonicalEvent, type MessageEvent } from '../../core/events.js';
import { randomToken } from '../../core/ids.js';
import { fromPresenceStanza, presenceErrorStanza, toPresenceStanza, type InboundPresence } from './presence.js';
import { errorElement, readStanzaError } from './stanza-error.js';

export interface StanzaContext {
  /** The component's domain (the `to` domain of everything routed to the bridge). */
  readonly component: string;
  readonly now: number;
}

/** What an inbound stanza means for the bridge. */
export type InboundStanza =
  | { readonly kind: 'message'; readonly event: MessageEvent }
  /** `<message type='error'>`: the reply to a stanza the bridge sent with id `id`. */
  | { readonly kind: 'message-error'; readonly id: string | undefined; readonly condition: StanzaErrorCondition; readonly text?: string }
  | InboundPresence;

export interface Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource?: string;
}

/**
 * Splits a JID into its parts as they are on the wire (no unescaping, no case folding): the
 * localpart stays XEP-0106 escaped, as canonical XMPP addresses require (core/events.ts).
 * RFC 7622 §3.1: the resource is everything after the first '/', the localpart everything
 * before the first '@' of what precedes it.
 */
export function parseJid(jid: string): Jid | undefined {
  const slash = jid.indexOf('/');
  const bare = slash === -1 ? jid : jid.slice(0, slash);
  const resource = slash === -1 ? undefined : jid.slice(slash + 1);
  const at = bare.indexOf('@');
  const local = at === -1 ? '' : bare.slice(0, at);
  const domain = at === -1 ? bare : bare.slice(at + 1);
  if (domain === '' || resource === '' || (at !== -1 && local === '')) return undefined;
  return resource === undefined ? { local, domain } : { local, domain, resource };
}

/** The canonical address of a JID as on the wire. */
export function xmppAddress(jid: Jid): Address {
  return jid.resource === undefined
    ? { side: 'xmpp', user: jid.local, domain: jid.domain }
    : { side: 'xmpp', user: jid.local, domain: jid.domain, resource: jid.resource };
}

/** Reads an inbound `<message/>` or `<presence/>` routed to the component. */
export function fromStanza(stanza: Element, ctx: StanzaContext): InboundStanza {
  if (stanza.name === 'presence') {
    const from = parseJid(stanza.attrs['from'] ?? '');
    const to = parseJid(stanza.attrs['to'] ?? '');
    if (from === undefined || to === undefined) return { kind: 'ignored', reason: 'presence without valid from/to' };
    return fromPresenceStanza(stanza, from, to, ctx);
  }
  if (stanza.name !== 'message') return { kind: 'ignored', reason: `<${stanza.name}/> is not handled yet` };
  const type = stanza.attrs['type'] ?? 'normal';
  if (type === 'error') {
    const { condition, text } = readStanzaError(stanza);
    const id = stanza.attrs['id'];
    return text === undefined ? { kind: 'message-error', id, condition } : { kind: 'message-error', id, condition, text };
  }
  // RFC 6121 §5.2.2: groupchat belongs to MUC, headline expects no reply; neither is bridged yet.
  if (type !== 'chat' && type !== 'normal') return { kind: 'ignored', reason: `message type '${type}' is not bridged` };
  const body = stanza.getChild('body');
  // Chat states and receipts come without a body (XEP-0085, XEP-0184): later phases.
  if (body === undefined) return { kind: 'ignored', reason: 'message without body' };
  const from = parseJid(stanza.attrs['from'] ?? '');
  const to = parseJid(stanza.attrs['to'] ?? '');
  if (from === undefined || to === undefined) return { kind: 'ignored', reason: 'message without valid from/to' };
  const text = body.getText();
  const id = stanza.attrs['id'];
  const fromBare = from.local === '' ? from.domain : `${from.local}@${from.domain}`;
  const fromFull = from.resource === undefined ? fromBare : `${fromBare}/${from.resource}`;
  const thread = stanza.getChildText('thread') ?? undefined;
  const event = messageEvent({
    origin: 'xmpp',
    from: xmppAddress(from),
    to: { side: 'xmpp', user: to.local, domain: ctx.component },
    body: text,
    messageType: type,
    ...(thread === undefined || thread === '' ? {} : { thread }),
    ...(id === undefined || id === '' ? {} : { originRef: id }),
    // A stanza id is the sender's handle for one message (a resend after reconnect, XEP-0198,
    // repeats it). Without one, nothing tells a resend from a second "ok": never merge those.
    dedupeKey: id === undefined || id === '' ? `xmpp:${fromFull}:no-id:${randomToken(16)}` : `xmpp:${fromFull}:${id}`,
    createdAt: ctx.now,
  });
  return { kind: 'message', event };
}

/** Renders an outbound event as the stanza the component sends. */
export function toStanza(event: CanonicalEvent): Element {
  if (event.kind === 'message') {
    return xml(
      'message',
      { from: formatAddress(event.from), to: formatAddress(event.to), type: event.messageType ?? 'chat', id: event.id },
      xml('body', {}, event.body),
      event.thread === undefined ? undefined : xml('thread', {}, event.thread),
    );
  }
  if (event.kind !== 'failure') return toPresenceStanza(event);
  if (event.refKind === 'presence' || event.refKind === 'subscription' || event.refKind === 'probe') {
    return presenceErrorStanza(event.from, event.to, event.originRef, event.condition, event.text);
  }
  // RFC 6120 §8.3.2: the failure of a message is a message of type error, with the id of the
  // stanza that failed (§8.3.1 rule 3), from the address it was sent to.
  return xml(
    'message',
    { type: 'error', id: event.originRef, from: formatAddress(event.from), to: formatAddress(event.to) },
    errorElement(event.condition, event.text),
  );
}
