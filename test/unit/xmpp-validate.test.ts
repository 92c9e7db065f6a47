import { describe, expect, it } from 'vitest';
import xml from '@xmpp/xml';
import { validateOutbound } from '../../src/adapters/xmpp/validate.js';
import { refusal } from '../support/refusal.js';

const limits = { component: 'sip.xmpp.test', maxStanzaBytes: 2048 };
const message = (from: string | undefined, body = 'hi', to: string | null = 'juliet@xmpp.test') =>
  xml('message', { from, to: to ?? undefined, id: 'm' }, xml('body', {}, body));

describe('validateOutbound', () => {
  it.each(['bob@sip.xmpp.test', 'sip.xmpp.test', 'bob@sip.xmpp.test/res', 'alice\\40corp.example@sip.xmpp.test'])(
    'given from %s (the component domain), then the serialized stanza is returned',
    (from) => {
      expect(validateOutbound(message(from), limits)).toBe(message(from).toString());
    },
  );

  it.each(['bob@xmpp.test', 'bob@x.sip.xmpp.test', 'bob@SIP.xmpp.test', 'bob@sip.xmpp.test.evil', '', undefined])(
    'given from %j (not exactly the component domain), then policy-violation, not retryable',
    (from) => {
      const err = refusal(() => validateOutbound(message(from), limits));
      expect([err.code, err.condition, err.retryable]).toEqual(['XMPP_FOREIGN_FROM', 'policy-violation', false]);
    },
  );

  it.each([null, '', '@xmpp.test'])('given to %j, then jid-malformed', (to) => {
    expect(refusal(() => validateOutbound(message('b@sip.xmpp.test', 'x', to), limits)).condition).toBe('jid-malformed');
  });

  it('given a stanza of exactly the limit in UTF-8 bytes, then it passes; one byte more is refused as not-acceptable/413', () => {
    const overhead = Buffer.byteLength(message('b@sip.xmpp.test', 'x').toString()) - 1;
    const room = limits.maxStanzaBytes - overhead; // bytes left for the body
    const exact = '€'.repeat(Math.floor(room / 3)) + 'a'.repeat(room % 3);
    expect(Buffer.byteLength(message('b@sip.xmpp.test', exact).toString())).toBe(limits.maxStanzaBytes);
    expect(() => validateOutbound(message('b@sip.xmpp.test', exact), limits)).not.toThrow();
    const err = refusal(() => validateOutbound(message('b@sip.xmpp.test', exact + 'a'), limits));
    expect([err.code, err.condition, err.sipStatus, err.retryable]).toEqual(['XMPP_STANZA_TOO_LARGE', 'not-acceptable', 413, false]);
  });

  it.each([
    ['\u0000', 'U+0000'],
    ['\u0007', 'U+0007'],
    ['\uFFFE', 'U+FFFE'],
    ['\uD800', 'U+D800'],
  ])('given a body with %j, then it is refused naming %s', (ch, name) => {
    const err = refusal(() => validateOutbound(message('b@sip.xmpp.test', `a${ch}b`), limits));
    expect(err.code).toBe('XMPP_ILLEGAL_CHARACTER');
    expect(err.message).toContain(name);
  });

  it('given tab, newline, carriage return and astral characters, then they pass', () => {
    expect(() => validateOutbound(message('b@sip.xmpp.test', '\t\n\r😀\u{10FFFF}'), limits)).not.toThrow();
  });
});
