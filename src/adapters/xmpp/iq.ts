/**
 * Answers to iq requests addressed to the component. Pure: stanza in, reply out.
 */
import xml, { type Element } from '@xmpp/xml';
import { errorReply } from './stanza-error.js';

export const NS_PING = 'urn:xmpp:ping';
export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';

/** Features the component advertises in disco#info (XEP-0030 §3.1). */
export const COMPONENT_FEATURES = [NS_DISCO_INFO, NS_PING] as const;

/**
 * The reply to an inbound iq, or undefined for results and errors, which are never answered
 * (RFC 6120 §8.2.3 rule 5, §8.3.1 rule 8).
 */
export function answerIq(iq: Element): Element | undefined {
  const type = iq.attrs['type'];
  if (type === 'result' || type === 'error') return undefined;
  // RFC 6120 §8.3.3.1: an unrecognised iq type is a bad-request.
  if (type !== 'get' && type !== 'set') return errorReply(iq, 'bad-request', `unknown iq type '${type ?? ''}'`);
  const payload = iq.getChildElements()[0];
  if (type === 'get' && payload?.is('ping', NS_PING) === true) return result(iq); // XEP-0199 §4
  if (type === 'get' && payload?.is('query', NS_DISCO_INFO) === true && (payload.attrs['node'] ?? '') === '') {
    return result(
      iq,
      xml(
        'query',
        { xmlns: NS_DISCO_INFO },
        // XEP-0100 §4.1 / disco registry: a gateway to SIP/SIMPLE.
        xml('identity', { category: 'gateway', type: 'sip', name: 'SIP bridge' }),
        ...COMPONENT_FEATURES.map((f) => xml('feature', { var: f })),
      ),
    );
  }
  // RFC 6120 §8.2.3: an iq get/set MUST be answered; §8.4: unsupported payload → service-unavailable.
  return errorReply(iq, 'service-unavailable');
}

function result(iq: Element, payload?: Element): Element {
  return xml('iq', { type: 'result', id: iq.attrs['id'], from: iq.attrs['to'], to: iq.attrs['from'] }, payload);
}
