import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { headerValue, type SipHeader, type SipMessage, type SipRequest } from '../../src/adapters/sip/codec/message.js';
import { parseMessage } from '../../src/adapters/sip/codec/parse.js';
import { REASON_PHRASES, buildResponse, reasonPhrase } from '../../src/adapters/sip/codec/response.js';
import { SipSerializeError, serializeMessage } from '../../src/adapters/sip/codec/serialize.js';
import { parseNameAddr } from '../../src/adapters/sip/codec/uri.js';

const BASE_HEADERS: SipHeader[] = [
  { name: 'Via', value: 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc' },
  { name: 'Via', value: 'SIP/2.0/TCP proxy.example;branch=z9hG4bKdef;received=192.0.2.9' },
  { name: 'Max-Forwards', value: '70' },
  { name: 'From', value: '<sip:alice@corp.example>;tag=f1' },
  { name: 'To', value: '"Bob" <sip:bob@xmpp.example.org>' },
  { name: 'Call-ID', value: 'c1@corp.example' },
  { name: 'CSeq', value: '7 MESSAGE' },
  { name: 'Timestamp', value: '54' },
];

function request(headers: SipHeader[] = BASE_HEADERS, body = Buffer.alloc(0)): SipRequest {
  return { kind: 'request', method: 'MESSAGE', uri: 'sip:bob@xmpp.example.org', headers, body };
}

describe('serializeMessage', () => {
  it('writes Content-Length from the body bytes, not its characters', () => {
    const body = Buffer.from('grüße ✓', 'utf8');
    const text = serializeMessage(request(BASE_HEADERS, body)).toString('utf8');
    expect(text).toContain(`\r\nContent-Length: ${body.length}\r\n\r\ngrüße ✓`);
  });

  it('replaces a given Content-Length in place and drops repeats', () => {
    const headers = [...BASE_HEADERS.slice(0, 2), { name: 'Content-Length', value: '999' }, ...BASE_HEADERS.slice(2), { name: 'l', value: '1' }];
    const out = parseMessage(serializeMessage(request(headers, Buffer.from('abc'))));
    expect(out.headers.filter((h) => h.name === 'Content-Length')).toEqual([{ name: 'Content-Length', value: '3' }]);
    expect(out.headers[2]?.name).toBe('Content-Length');
  });

  it('keeps header order', () => {
    const out = parseMessage(serializeMessage(request()));
    expect(out.headers.map((h) => h.name)).toEqual([...BASE_HEADERS.map((h) => h.name), 'Content-Length']);
  });

  it.each<[string, SipMessage]>([
    ['a header value with CRLF', request([...BASE_HEADERS, { name: 'Subject', value: 'hi\r\nVia: evil' }])],
    ['a header value with a bare LF', request([...BASE_HEADERS, { name: 'Subject', value: 'hi\nVia: evil' }])],
    ['a header value with a bare CR', request([...BASE_HEADERS, { name: 'Subject', value: 'hi\rx' }])],
    ['a header value with NUL', request([...BASE_HEADERS, { name: 'Subject', value: 'hi\0' }])],
    ['a header name with a colon', request([...BASE_HEADERS, { name: 'Subject: x\r\nVia', value: 'evil' }])],
    ['an empty header name', request([...BASE_HEADERS, { name: '', value: 'x' }])],
    ['a method with a space', { ...request(), method: 'MESSAGE sip:x SIP/2.0\r\n' }],
    ['a Request-URI with CRLF', { ...request(), uri: 'sip:bob@x\r\nVia: evil' }],
    ['a Request-URI with a space', { ...request(), uri: 'sip:bob@x SIP/2.0' }],
    ['a reason phrase with CRLF', { kind: 'response', status: 200, reason: 'OK\r\nVia: evil', headers: [], body: Buffer.alloc(0) }],
    ['a status code of 1000', { kind: 'response', status: 1000, reason: 'OK', headers: [], body: Buffer.alloc(0) }],
  ])('refuses %s (header injection)', (_name, msg) => {
    expect(() => serializeMessage(msg)).toThrow(SipSerializeError);
  });
});

describe('buildResponse (RFC 3261 §8.2.6.2)', () => {
  it('copies every Via in order, From, Call-ID and CSeq', () => {
    const res = buildResponse(request(), 200);
    for (const name of ['From', 'Call-ID', 'CSeq']) expect(headerValue(res, name)).toBe(headerValue(request(), name));
    expect(res.headers.filter((h) => h.name === 'Via')).toEqual(BASE_HEADERS.filter((h) => h.name === 'Via'));
  });

  it('adds the given tag to a To without one', () => {
    const res = buildResponse(request(), 200, { toTag: 'bridge1' });
    expect(parseNameAddr(headerValue(res, 'To') as string).params['tag']).toBe('bridge1');
  });

  it('adds a random tag to a To without one when none is given', () => {
    const tags = [1, 2].map(() => parseNameAddr(headerValue(buildResponse(request(), 404), 'To') as string).params['tag']);
    expect(tags[0]).toMatch(/^[A-Za-z0-9_-]{8,}$/);
    expect(tags[0]).not.toBe(tags[1]);
  });

  it('keeps the tag a To already has', () => {
    const headers = BASE_HEADERS.map((h) => (h.name === 'To' ? { name: 'To', value: '<sip:bob@x.example>;tag=abc' } : h));
    expect(headerValue(buildResponse(request(headers), 200, { toTag: 'other' }), 'To')).toBe('<sip:bob@x.example>;tag=abc');
  });

  it('adds no To tag to a 100 Trying and copies its Timestamp (§8.2.6.1)', () => {
    const res = buildResponse(request(), 100);
    expect(headerValue(res, 'To')).toBe('"Bob" <sip:bob@xmpp.example.org>');
    expect(headerValue(res, 'Timestamp')).toBe('54');
  });

  it('leaves out request headers that are not copied', () => {
    const names = buildResponse(request(), 200).headers.map((h) => h.name);
    expect(names).not.toContain('Max-Forwards');
    expect(names).not.toContain('Timestamp');
  });

  it('appends extra headers and a typed body', () => {
    const res = buildResponse(request(), 200, {
      headers: [{ name: 'Expires', value: '60' }],
      body: Buffer.from('<x/>'),
      contentType: 'application/pidf+xml',
    });
    expect(headerValue(res, 'Expires')).toBe('60');
    expect(headerValue(res, 'Content-Type')).toBe('application/pidf+xml');
    expect(res.body.toString()).toBe('<x/>');
  });

  it('answers a partial request with the headers it has', () => {
    const partial = request(BASE_HEADERS.filter((h) => h.name !== 'Call-ID'));
    const res = buildResponse(partial, 400, { reason: 'Missing Call-ID header' });
    expect(res).toMatchObject({ kind: 'response', status: 400, reason: 'Missing Call-ID header' });
    expect(res.headers.map((h) => h.name)).toEqual(['Via', 'Via', 'From', 'To', 'CSeq']);
  });

  it.each(Object.entries(REASON_PHRASES))('uses the default reason for %s', (status, reason) => {
    expect(buildResponse(request(), Number(status)).reason).toBe(reason);
  });

  it.each([
    [299, 'OK'],
    [499, 'Bad Request'],
    [599, 'Server Internal Error'],
  ])('falls back to the class reason for the unknown status %s', (status, reason) => {
    expect(reasonPhrase(status)).toBe(reason);
  });
});

// ---------------------------------------------------------------- properties

const token = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,11}$/);
const host = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,2}$/);
/** Any text a header value may carry: UTF-8, no CR/LF/NUL, no surrounding whitespace. */
const headerText = fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => s.replace(/[\r\n\0]/g, '').trim());
const extraHeader = fc.record({
  name: fc.constantFrom('Subject', 'User-Agent', 'Accept', 'Supported', 'Ms-Conversation-ID', 'Event', 'Expires'),
  value: headerText,
});
const body = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 200 }).map((s) => Buffer.from(s, 'utf8')),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
);

const mandatory = (method: string) =>
  fc
    .record({ branch: token, fromUser: token, fromHost: host, tag: token, toHost: host, callId: token, seq: fc.integer({ min: 0, max: 2 ** 31 - 1 }) })
    .map((v): SipHeader[] => [
      { name: 'Via', value: `SIP/2.0/UDP ${v.fromHost}:5060;branch=z9hG4bK${v.branch}` },
      { name: 'From', value: `<sip:${v.fromUser}@${v.fromHost}>;tag=${v.tag}` },
      { name: 'To', value: `<sip:x@${v.toHost}>` },
      { name: 'Call-ID', value: v.callId },
      { name: 'CSeq', value: `${v.seq} ${method}` },
    ]);

const requestArb = fc
  .tuple(fc.constantFrom('MESSAGE', 'OPTIONS', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'INFO'), host, fc.nat(255))
  .chain(([method, target, maxForwards]) =>
    fc.record({ mandatory: mandatory(method), extra: fc.array(extraHeader, { maxLength: 6 }), body }).map(
      (r): SipMessage => ({
        kind: 'request',
        method,
        uri: `sip:someone@${target}`,
        headers: [...r.mandatory, { name: 'Max-Forwards', value: String(maxForwards) }, ...r.extra],
        body: r.body,
      }),
    ),
  );

const responseArb = fc
  .record({
    status: fc.integer({ min: 100, max: 699 }),
    reason: headerText,
    mandatory: mandatory('MESSAGE'),
    extra: fc.array(extraHeader, { maxLength: 6 }),
    body,
  })
  .map((r): SipMessage => ({ kind: 'response', status: r.status, reason: r.reason, headers: [...r.mandatory, ...r.extra], body: r.body }));

const messageArb = fc.oneof(requestArb, responseArb);

describe('codec round trip', () => {
  it('parse(serialize(m)) is m with its Content-Length added, over UDP and TCP', () => {
    fc.assert(
      fc.property(messageArb, fc.constantFrom('udp' as const, 'tcp' as const), (m, transport) => {
        const expected = { ...m, headers: [...m.headers, { name: 'Content-Length', value: String(m.body.length) }] };
        expect(parseMessage(serializeMessage(m), { transport })).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('serialize(parse(x)) reproduces x byte for byte', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const wire = serializeMessage(m);
        expect(serializeMessage(parseMessage(wire)).equals(wire)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
