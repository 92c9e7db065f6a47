import { describe, expect, it } from 'vitest';
import { STANZA_ERROR_CONDITIONS } from '../../src/core/errors.js';
import { STANZA_ERROR_TYPE, errorReply, readStanzaError } from '../../src/adapters/xmpp/stanza-error.js';
import { parseStanza } from '../support/xmpp-client.js';

describe('STANZA_ERROR_TYPE (RFC 6120 §8.3.3)', () => {
  const expected: Record<string, string> = {
    'bad-request': 'modify',
    conflict: 'cancel',
    'feature-not-implemented': 'cancel',
    forbidden: 'auth',
    gone: 'cancel',
    'internal-server-error': 'cancel',
    'item-not-found': 'cancel',
    'jid-malformed': 'modify',
    'not-acceptable': 'modify',
    'not-allowed': 'cancel',
    'not-authorized': 'auth',
    'policy-violation': 'modify',
    'recipient-unavailable': 'wait',
    redirect: 'modify',
    'registration-required': 'auth',
    'remote-server-not-found': 'cancel',
    'remote-server-timeout': 'wait',
    'resource-constraint': 'wait',
    'service-unavailable': 'cancel',
    'subscription-required': 'auth',
    'undefined-condition': 'cancel',
    'unexpected-request': 'wait',
  };
  it.each(STANZA_ERROR_CONDITIONS.map((c) => [c]))('gives %s the type the RFC names', (condition) => {
    expect(STANZA_ERROR_TYPE[condition]).toBe(expected[condition]);
  });
});

describe('errorReply', () => {
  it('given a message, then the error swaps from/to, keeps the id and carries condition and text', () => {
    const original = parseStanza(`<message from='juliet@xmpp.test/r' to='bob@sip.xmpp.test' id='m7' type='chat'><body>x</body></message>`);
    expect(errorReply(original, 'item-not-found', 'no such user').toString()).toBe(
      `<message type="error" id="m7" from="bob@sip.xmpp.test" to="juliet@xmpp.test/r"><error type="cancel">` +
        `<item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">no such user</text></error></message>`,
    );
  });

  it('given no text, then there is no text element', () => {
    const original = parseStanza(`<iq from='a@xmpp.test/r' to='sip.xmpp.test' id='q' type='set'><x xmlns='urn:x'/></iq>`);
    expect(errorReply(original, 'service-unavailable').toString()).toBe(
      `<iq type="error" id="q" from="sip.xmpp.test" to="a@xmpp.test/r"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`,
    );
  });
});

describe('readStanzaError', () => {
  it.each([
    [`<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`, { condition: 'resource-constraint' }],
    [`<error type='cancel'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>t</text><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xmpp:x@y</gone></error>`, { condition: 'gone', text: 't' }],
    [`<error type='cancel'><made-up xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`, { condition: 'undefined-condition' }],
    [`<error type='cancel'><item-not-found xmlns='urn:other'/></error>`, { condition: 'undefined-condition' }],
    [``, { condition: 'undefined-condition' }],
  ])('given %s, reads it', (error, expected) => {
    expect(readStanzaError(parseStanza(`<message type='error' id='1'>${error}</message>`))).toEqual(expected);
  });
});
