import { describe, expect, it } from 'vitest';
import { answerIq } from '../../src/adapters/xmpp/iq.js';
import { parseStanza } from '../support/xmpp-client.js';

const iq = (type: string, payload: string) => parseStanza(`<iq type='${type}' id='q1' from='juliet@xmpp.test/r' to='sip.xmpp.test'>${payload}</iq>`);

describe('answerIq', () => {
  it('given a XEP-0199 ping get, then an empty result to the sender', () => {
    expect(answerIq(iq('get', `<ping xmlns='urn:xmpp:ping'/>`))?.toString()).toBe(
      `<iq type="result" id="q1" from="sip.xmpp.test" to="juliet@xmpp.test/r"/>`,
    );
  });

  it('given a disco#info get, then a gateway/sip identity with disco#info and ping features', () => {
    const reply = answerIq(iq('get', `<query xmlns='http://jabber.org/protocol/disco#info'/>`));
    expect(reply?.attrs['type']).toBe('result');
    const query = reply?.getChild('query', 'http://jabber.org/protocol/disco#info');
    expect(query?.getChild('identity')?.attrs).toMatchObject({ category: 'gateway', type: 'sip' });
    expect(query?.getChildren('feature').map((f) => f.attrs['var'])).toEqual(['http://jabber.org/protocol/disco#info', 'urn:xmpp:ping']);
  });

  it.each([
    ['get', `<query xmlns='jabber:iq:version'/>`],
    ['set', `<ping xmlns='urn:xmpp:ping'/>`],
    ['get', `<query xmlns='http://jabber.org/protocol/disco#info' node='x'/>`],
    ['get', ``],
  ])('given an unsupported %s %s, then service-unavailable', (type, payload) => {
    const reply = answerIq(iq(type, payload));
    expect(reply?.attrs).toMatchObject({ type: 'error', id: 'q1', to: 'juliet@xmpp.test/r' });
    expect(reply?.getChild('error')?.getChild('service-unavailable')).toBeDefined();
  });

  it('given an unknown iq type, then bad-request', () => {
    expect(answerIq(iq('fetch', ''))?.getChild('error')?.getChild('bad-request')).toBeDefined();
  });

  it.each(['result', 'error'])('given an iq %s, then no answer (RFC 6120 §8.2.3)', (type) => {
    expect(answerIq(iq(type, ''))).toBeUndefined();
  });
});
