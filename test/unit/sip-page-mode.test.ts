/**
 * Page-mode MESSAGE ↔ canonical message (RFC 3428, RFC 7572): the adapter's paired pure
 * conversions, with the real codec in between for the round trip.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { headerValue, type SipRequest } from '../../src/adapters/sip/codec/message.js';
import { parseMessage } from '../../src/adapters/sip/codec/parse.js';
import { serializeMessage } from '../../src/adapters/sip/codec/serialize.js';
import { parseNameAddr, parseVia } from '../../src/adapters/sip/codec/uri.js';
import { fromSipRequest, isPlainUtf8Text, senderAddress, toSipRequest } from '../../src/adapters/sip/page-mode.js';
import { messageEvent, type MessageEvent } from '../../src/core/events.js';

const HOP = { transport: 'udp' as const, sentBy: { host: '127.0.0.1', port: 5060 } };

function outbound(body: string, user = 'bob'): MessageEvent {
  return messageEvent({
    origin: 'xmpp',
    from: { side: 'sip', user: 'romeo', domain: 'xmpp.example.org' },
    to: { side: 'sip', user, domain: 'sip.example.com' },
    body,
    dedupeKey: 'k',
    createdAt: 0,
  });
}

function reparse(req: SipRequest): SipRequest {
  const msg = parseMessage(serializeMessage(req));
  if (msg.kind !== 'request') throw new Error('expected a request');
  return msg;
}

function withHeaders(req: SipRequest, patch: Record<string, string | null>, body?: Buffer): SipRequest {
  const headers = req.headers.filter((h) => !(h.name in patch));
  for (const [name, value] of Object.entries(patch)) if (value !== null) headers.push({ name, value });
  return { ...req, headers, body: body ?? req.body };
}

describe('isPlainUtf8Text', () => {
  it.each([
    ['text/plain', true],
    ['text/plain;charset=UTF-8', true],
    ['TEXT/Plain; charset="utf-8"', true],
    ['text/plain;format=flowed', true],
    ['text/plain;charset=ISO-8859-1', false],
    ['text/html', false],
    ['message/cpim', false],
    [undefined, false],
  ])('%s → %s', (contentType, ok) => {
    expect(isPlainUtf8Text(contentType)).toBe(ok);
  });
});

describe('senderAddress', () => {
  it.each([
    { uri: 'sip:alice@sip.example.com', user: 'alice', domain: 'sip.example.com' },
    { uri: 'sip:alice@sip.example.com;transport=tcp;maddr=10.0.0.1?Subject=x', user: 'alice', domain: 'sip.example.com' },
    { uri: 'sip:+15551234567@gw.example.com;user=phone', user: '+15551234567', domain: 'gw.example.com', telephone: true },
    { uri: 'sip:+15551234567@gw.example.com;USER=Phone', user: '+15551234567', domain: 'gw.example.com', telephone: true },
    { uri: 'sip:+15551234567@gw.example.com', user: '+15551234567', domain: 'gw.example.com' },
    { uri: 'tel:+15551234567', user: '+15551234567', domain: 'bridge.example.org', telephone: true },
    { uri: 'tel:7042;phone-context=Example.COM', user: '7042', domain: 'example.com', telephone: true },
    { uri: 'tel:7042;phone-context=+1555', user: '7042', domain: 'bridge.example.org', telephone: true },
  ])('$uri → $user @ $domain (telephone: $telephone)', ({ uri, user, domain, telephone }) => {
    expect(senderAddress(uri, 'bridge.example.org')).toEqual({ side: 'sip', user, domain, ...(telephone ? { telephone } : {}) });
  });

  it('takes the Request-URI and From of a MESSAGE without display names or parameters', () => {
    const req = withHeaders(reparse(toSipRequest(outbound('hi'), HOP)), { From: '"Alice \\"The Boss\\" <x>" <sip:alice@corp.example;transport=tcp>;tag=9' });
    const result = fromSipRequest({ ...req, uri: 'tel:+442079460958' }, 0);
    if (!('event' in result)) throw new Error('refused');
    expect(result.event.from).toEqual({ side: 'sip', user: 'alice', domain: 'corp.example' });
    expect(result.event.to).toEqual({ side: 'sip', user: '+442079460958', domain: '', telephone: true });
  });
});

describe('fromSipRequest', () => {
  const base = reparse(toSipRequest(outbound('hi'), HOP));

  it('gives a message event keyed by Call-ID, CSeq number and From tag', () => {
    const result = fromSipRequest(base, 42);
    if (!('event' in result)) throw new Error('refused');
    const callId = headerValue(base, 'Call-ID');
    const tag = parseNameAddr(headerValue(base, 'From')!).params['tag'];
    expect(result.event).toMatchObject({ body: 'hi', createdAt: 42, originRef: callId, dedupeKey: `sip:${callId}:1:${tag}` });
  });

  it.each<{ name: string; patch: Record<string, string | null>; status: number }>([
    { name: 'no Content-Type', patch: { 'Content-Type': null }, status: 415 },
    { name: 'text/html', patch: { 'Content-Type': 'text/html' }, status: 415 },
    { name: 'a From that is neither sip: nor tel:', patch: { From: '<urn:x:y>;tag=1' }, status: 400 },
  ])('refuses $name with $status', ({ patch, status }) => {
    const result = fromSipRequest(withHeaders(base, patch), 0);
    expect('refusal' in result && result.refusal.status).toBe(status);
  });

  it('refuses a body that is not UTF-8 with 400', () => {
    const result = fromSipRequest(withHeaders(base, {}, Buffer.from([0xc3, 0x28])), 0);
    expect('refusal' in result && result.refusal.status).toBe(400);
  });
});

describe('toSipRequest', () => {
  it('gives fresh crypto-random branch (≥ 96 bits after the magic cookie), tag and Call-ID each time', () => {
    const a = toSipRequest(outbound('x'), HOP);
    const b = toSipRequest(outbound('x'), HOP);
    const branch = (r: SipRequest) => parseVia(headerValue(r, 'Via')!)[0]!.params['branch']!;
    expect(branch(a)).toMatch(/^z9hG4bK[A-Za-z0-9_-]{16,}$/);
    expect(branch(a)).not.toBe(branch(b));
    expect(headerValue(a, 'From')).not.toBe(headerValue(b, 'From'));
    expect(headerValue(a, 'Call-ID')).not.toBe(headerValue(b, 'Call-ID'));
    expect(parseVia(headerValue(a, 'Via')!)[0]!.params).toHaveProperty('rport', null);
  });

  it('adds a Route only when the hop has one', () => {
    expect(headerValue(toSipRequest(outbound('x'), HOP), 'Route')).toBeUndefined();
    expect(headerValue(toSipRequest(outbound('x'), { ...HOP, route: 'sip:proxy.example;lr' }), 'Route')).toBe('<sip:proxy.example;lr>');
  });

  it('property: any text and user survive MESSAGE → wire → MESSAGE → event unchanged', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.stringMatching(/^[A-Za-z0-9+._~-]{1,20}$/), (body, user) => {
        const result = fromSipRequest(reparse(toSipRequest(outbound(body, user), HOP)), 0);
        if (!('event' in result)) throw new Error(`refused ${result.refusal.status}`);
        expect(result.event.body).toBe(body);
        expect(result.event.to).toEqual({ side: 'sip', user, domain: 'sip.example.com' });
        expect(result.event.from).toEqual({ side: 'sip', user: 'romeo', domain: 'xmpp.example.org' });
      }),
      { numRuns: 300 },
    );
  });
});
