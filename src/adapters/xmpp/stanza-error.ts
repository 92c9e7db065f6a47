/**
 * The one place that builds and reads XMPP stanza errors (RFC 6120 §8.3), STYLE.md habit 9.
 */
import xml, { type Element } from '@xmpp/xml';
import { isStanzaErrorCondition, type StanzaErrorCondition } from '../../core/errors.js';

export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3: the error type each defined condition SHOULD carry. */
export const STANZA_ERROR_TYPE: Record<StanzaErrorCondition, StanzaErrorType> = {
  'bad-request': 'modify', // §8.3.3.1
  conflict: 'cancel', // §8.3.3.2
  'feature-not-implemented': 'cancel', // §8.3.3.3 ("cancel" or "modify")
  forbidden: 'auth', // §8.3.3.4
  gone: 'cancel', // §8.3.3.5
  'internal-server-error': 'cancel', // §8.3.3.6
  'item-not-found': 'cancel', // §8.3.3.7
  'jid-malformed': 'modify', // §8.3.3.8
  'not-acceptable': 'modify', // §8.3.3.9
  'not-allowed': 'cancel', // §8.3.3.10
  'not-authorized': 'auth', // §8.3.3.11
  'policy-violation': 'modify', // §8.3.3.12 ("modify" or "wait")
  'recipient-unavailable': 'wait', // §8.3.3.13
  redirect: 'modify', // §8.3.3.14
  'registration-required': 'auth', // §8.3.3.15
  'remote-server-not-found': 'cancel', // §8.3.3.16
  'remote-server-timeout': 'wait', // §8.3.3.17
  'resource-constraint': 'wait', // §8.3.3.18
  'service-unavailable': 'cancel', // §8.3.3.19
  'subscription-required': 'auth', // §8.3.3.20
  'undefined-condition': 'cancel', // §8.3.3.21 (any type)
  'unexpected-request': 'wait', // §8.3.3.22 ("wait" or "modify")
};

/** `<error type=…><condition/>[<text/>]</error>` (RFC 6120 §8.3.2). */
export function errorElement(condition: StanzaErrorCondition, text?: string): Element {
  return xml(
    'error',
    { type: STANZA_ERROR_TYPE[condition] },
    xml(condition, { xmlns: NS_STANZAS }),
    text === undefined || text === '' ? undefined : xml('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text),
  );
}

/**
 * The error reply to `stanza`: same kind and id, `from`/`to` swapped (RFC 6120 §8.3.1 rules
 * 2 and 3). The original payload is not echoed back (rule 6 makes it optional, and it may be
 * what was too large).
 */
export function errorReply(stanza: Element, condition: StanzaErrorCondition, text?: string): Element {
  return xml(
    stanza.name,
    { type: 'error', id: stanza.attrs['id'], from: stanza.attrs['to'], to: stanza.attrs['from'] },
    errorElement(condition, text),
  );
}

/**
 * The condition and text of an error stanza; an unknown or missing condition reads as
 * undefined-condition (RFC 6120 §8.3.2).
 */
export function readStanzaError(stanza: Element): { condition: StanzaErrorCondition; text?: string } {
  const error = stanza.getChild('error');
  if (error === undefined) return { condition: 'undefined-condition' };
  let condition: StanzaErrorCondition = 'undefined-condition';
  let text: string | undefined;
  for (const child of error.getChildElements()) {
    if (child.attrs['xmlns'] !== NS_STANZAS) continue;
    if (child.name === 'text') text = child.getText();
    else if (isStanzaErrorCondition(child.name)) condition = child.name;
  }
  return text === undefined ? { condition } : { condition, text };
}
