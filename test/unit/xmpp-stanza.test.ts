import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { FailureEvent, MessageEvent } from '../../src/core/events.js';
import { fromStanza, parseJid, toStanza } from '../../src/adapters/xmpp/stanza.js';
import { parseStanza } from '../support/xmpp-client.js';

const ctx = { component: 'sip.xmpp.test', now: 1_700_000_000_000 };

describe('parseJid', () => {
  it.each([
    ['juliet@xmpp.test/balcony', { local: 'juliet', domain: 'xmpp.test', resource: 'balcony' }],
    ['juliet@xmpp.test', { local: 'juliet', domain: 'xmpp.test' }],
    ['xmpp.test', { local: '', domain: 'xmpp.test' }],
    ['alice\\40corp.example@sip.xmpp.test', { local: 'alice\\40corp.example', domain: 'sip.xmpp.test' }],
    ['a@b/c/d@e', { local: 'a', domain: 'b', resource: 'c/d@e' }],
    ['+15551234567@sip.xmpp.test', { local: '+15551234567', domain: 'sip.xmpp.test' }],
  ])('given %s, splits it as on the wire', (jid, parts) => {
    expect(parseJid(jid)).toEqual(parts);
  });

  it.each(['', '@xmpp.test', 'juliet@', 'juliet@xmpp.test/', '/res'])('given %j, refuses it', (jid) => {
    expect(parseJid(jid)).toBeUndefined();
  });
});

describe('fromStanza', () => {
  it('given a chat message with id and thread, then it is a canonical message with exact fields', () => {
    const stanza = parseStanza(
      `<message from='juliet@xmpp.test/balcony' to='alice\\40corp.example@sip.xmpp.test' type='chat' id='m1'>` +
        `<body>Wherefore art thou? &amp; 😀</body><thread>t-1</thread></message>`,
    );
    const got = fromStanza(stanza, ctx);
    expect(got.kind).toBe('message');
    const e = (got as { event: MessageEvent }).event;
    expect(e).toMatchObject({
      kind: 'message',
      origin: 'xmpp',
      from: { side: 'xmpp', user: 'juliet', domain: 'xmpp.test', resource: 'balcony' },
      to: { side: 'xmpp', user: 'alice\\40corp.example', domain: 'sip.xmpp.test' },
      body: 'Wherefore art thou? & 😀',
      contentType: 'text/plain',
      messageType: 'chat',
      thread: 't-1',
      originRef: 'm1',
      dedupeKey: 'xmpp:juliet@xmpp.test/balcony:m1',
      createdAt: ctx.now,
    });
    expect(e.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('given a message without type, then it is a normal message', () => {
    const got = fromStanza(parseStanza(`<message from='a@xmpp.test/r' to='b@sip.xmpp.test' id='x'><body>hi</body></message>`), ctx);
    expect(got.kind === 'message' && got.event.messageType).toBe('normal');
  });

  it('given two id-less messages with the same body, then they are two messages (distinct dedupe keys)', () => {
    const key = (from: string, body: string): string => {
      const got = fromStanza(parseStanza(`<message from='${from}' to='b@sip.xmpp.test'><body>${body}</body></message>`), ctx);
      return got.kind === 'message' ? got.event.dedupeKey : '';
    };
    expect(key('a@xmpp.test/r1', 'ok')).not.toBe(key('a@xmpp.test/r1', 'ok'));
    expect(key('a@xmpp.test/r1', 'ok')).toMatch(/^xmpp:a@xmpp\.test\/r1:no-id:/);
  });

  it('given the same id from two resources, then the dedupe keys differ', () => {
    const key = (from: string): string => {
      const got = fromStanza(parseStanza(`<message from='${from}' to='b@sip.xmpp.test' id='m1'><body>x</body></message>`), ctx);
      return got.kind === 'message' ? got.event.dedupeKey : '';
    };
    expect(key('a@xmpp.test/phone')).toBe('xmpp:a@xmpp.test/phone:m1');
    expect(key('a@xmpp.test/phone')).not.toBe(key('a@xmpp.test/laptop'));
  });

  it.each([
    ['chat state without body', `<message from='a@xmpp.test/r' to='b@sip.xmpp.test' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`],
    ['groupchat', `<message from='room@muc.xmpp.test/n' to='b@sip.xmpp.test' type='groupchat'><body>x</body></message>`],
    ['headline', `<message from='a@xmpp.test' to='b@sip.xmpp.test' type='headline'><body>x</body></message>`],
    ['presence to the component domain itself', `<presence from='a@xmpp.test/r' to='sip.xmpp.test'/>`],
    ['missing from', `<message to='b@sip.xmpp.test'><body>x</body></message>`],
  ])('given a %s, then it is ignored', (_what, text) => {
    expect(fromStanza(parseStanza(text), ctx).kind).toBe('ignored');
  });

  it('given an error message, then its id, condition and text are read', () => {
    const got = fromStanza(
      parseStanza(
        `<message type='error' id='e-1' from='juliet@xmpp.test' to='bob@sip.xmpp.test'><error type='cancel'>` +
          `<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone fishing</text></error></message>`,
      ),
      ctx,
    );
    expect(got).toEqual({ kind: 'message-error', id: 'e-1', condition: 'service-unavailable', text: 'gone fishing' });
  });
});

describe('toStanza', () => {
  const message: MessageEvent = {
    kind: 'message',
    id: 'ev-1',
    origin: 'sip',
    from: { side: 'xmpp', user: 'alice\\40corp.example', domain: 'sip.xmpp.test' },
    to: { side: 'xmpp', user: 'juliet', domain: 'xmpp.test' },
    body: 'a <b> & "c"',
    contentType: 'text/plain',
    dedupeKey: 'k',
    createdAt: 0,
  };

  it('given a message event, then it is a chat message with the event id', () => {
    expect(toStanza(message).toString()).toBe(
      `<message from="alice\\40corp.example@sip.xmpp.test" to="juliet@xmpp.test" type="chat" id="ev-1"><body>a &lt;b&gt; &amp; "c"</body></message>`,
    );
  });

  it('given a normal message with a thread, then both are kept', () => {
    const el = toStanza({ ...message, messageType: 'normal', thread: 'th' });
    expect(el.attrs['type']).toBe('normal');
    expect(el.getChildText('thread')).toBe('th');
  });

  it('given a failure event, then it is an error message answering the original id', () => {
    const failure: FailureEvent = {
      kind: 'failure',
      id: 'f-1',
      origin: 'xmpp',
      from: { side: 'xmpp', user: 'bob', domain: 'sip.xmpp.test' },
      to: { side: 'xmpp', user: 'juliet', domain: 'xmpp.test', resource: 'balcony' },
      dedupeKey: 'failure:x',
      createdAt: 0,
      originRef: 'm1',
      ref: 'x',
      refKind: 'message',
      condition: 'item-not-found',
      text: 'no such user',
    };
    expect(toStanza(failure).toString()).toBe(
      `<message type="error" id="m1" from="bob@sip.xmpp.test" to="juliet@xmpp.test/balcony"><error type="cancel">` +
        `<item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">no such user</text></error></message>`,
    );
  });

  it('round-trips any body through the wire form (property)', () => {
    // XML 1.0 characters only: the others are refused before sending (validate.ts).
    const xmlChar = fc
      .integer({ min: 0x20, max: 0x10ffff })
      .filter((c) => (c < 0xd800 || c > 0xdfff) && c !== 0xfffe && c !== 0xffff)
      .map((c) => String.fromCodePoint(c));
    fc.assert(
      fc.property(fc.array(fc.oneof(xmlChar, fc.constantFrom('\n', '\t', '<', '&', ']]>')), { maxLength: 40 }), (chars) => {
        const body = chars.join('');
        const inbound = {
          ...message,
          body,
          from: { side: 'xmpp' as const, user: 'juliet', domain: 'xmpp.test', resource: 'r' },
          to: { side: 'xmpp' as const, user: 'b', domain: 'sip.xmpp.test' },
        };
        const back = fromStanza(parseStanza(toStanza(inbound).toString()), ctx);
        return back.kind === 'message' && back.event.body === body;
      }),
    );
  });
});
