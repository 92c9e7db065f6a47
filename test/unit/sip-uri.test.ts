import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NameAddr, SipUri } from '../../src/adapters/sip/codec/message.js';
import { SipParseError } from '../../src/adapters/sip/codec/parse.js';
import {
  formatNameAddr, formatUri, formatVia, parseNameAddr, parseNameAddrList, parseUri, parseVia,
} from '../../src/adapters/sip/codec/uri.js';

function statusOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof SipParseError) return err.status;
    throw err;
  }
  return undefined;
}

describe('parseUri', () => {
  it.each<[string, Partial<SipUri>]>([
    ['sip:alice@corp.example', { scheme: 'sip', user: 'alice', host: 'corp.example' }],
    ['SIPS:Bob@Corp.EXAMPLE:5061', { scheme: 'sips', user: 'Bob', host: 'corp.example', port: 5061 }],
    ['sip:corp.example', { scheme: 'sip', host: 'corp.example' }],
    ['sip:192.0.2.4:5060;transport=TCP;lr', { host: '192.0.2.4', port: 5060, params: { transport: 'TCP', lr: null } }],
    ['sip:[2001:db8::1]:5070', { host: '[2001:db8::1]', port: 5070 }],
    ['sip:+15551234567;phone-context=corp.example@gw.example;user=phone', { user: '+15551234567;phone-context=corp.example', params: { user: 'phone' } }],
    ['sip:o%27malley%40corp.example@bridge.example', { user: "o'malley@corp.example" }],
    ['sip:j%C3%BCrgen@x.example', { user: 'jürgen' }],
    ['sip:alice:secret@x.example', { user: 'alice', password: 'secret' }],
    ['sip:alice@x.example?subject=project%20x&priority=urgent', { headers: { subject: 'project%20x', priority: 'urgent' } }],
    ['sip:alice@x.example;Method=MESSAGE', { params: { method: 'MESSAGE' } }],
  ])('reads %s', (text, expected) => {
    expect(parseUri(text)).toMatchObject(expected);
  });

  it.each([
    ['no scheme', 'alice@x.example', 400],
    ['an empty host', 'sip:alice@', 400],
    ['a host with a space', 'sip:alice@x example', 400],
    ['a host with an underscore', 'sip:x_y.example', 400],
    ['a port above 65535', 'sip:x.example:65536', 400],
    ['a port that is not a number', 'sip:x.example:50a', 400],
    ['an unterminated IPv6 reference', 'sip:[2001:db8::1', 400],
    ['an empty user', 'sip:@x.example', 400],
    ['a bad escape in the user', 'sip:a%zz@x.example', 400],
    ['an escape that is not UTF-8', 'sip:a%ff@x.example', 400],
    ['a repeated parameter', 'sip:x.example;lr;lr', 400],
    ['an angle bracket', 'sip:<alice@x.example>', 400],
    ['a header without value sign', 'sip:x.example?subject', 400],
    ['a tel: URI', 'tel:+15551234567', 416],
    ['an im: URI', 'im:alice@x.example', 416],
  ])('rejects %s', (_name, text, status) => {
    expect(statusOf(() => parseUri(text))).toBe(status);
  });
});

describe('formatUri', () => {
  it.each<[SipUri, string]>([
    [{ scheme: 'sip', user: 'alice', host: 'x.example', params: {} }, 'sip:alice@x.example'],
    [{ scheme: 'sips', host: 'x.example', port: 5061, params: { transport: 'tls', lr: null } }, 'sips:x.example:5061;transport=tls;lr'],
    [{ scheme: 'sip', user: 'o\'malley@corp', host: 'b.example', params: {} }, "sip:o'malley%40corp@b.example"],
    [{ scheme: 'sip', user: 'jürgen smith', host: 'b.example', params: {} }, 'sip:j%C3%BCrgen%20smith@b.example'],
    [{ scheme: 'sip', user: 'a', host: 'b.example', params: {}, headers: { subject: 'hi' } }, 'sip:a@b.example?subject=hi'],
  ])('writes %j as %s', (uri, text) => {
    expect(formatUri(uri)).toBe(text);
  });

  it('round-trips any user text through escaping', () => {
    const uri = fc.record({
      scheme: fc.constantFrom('sip' as const, 'sips' as const),
      user: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
      host: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}(\.[a-z]{2,6}){1,2}$/),
      port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
      params: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), fc.option(fc.stringMatching(/^[A-Za-z0-9.]{1,8}$/), { nil: null })),
    });
    fc.assert(
      fc.property(uri, (u) => {
        const clean = u.port === undefined ? { scheme: u.scheme, user: u.user, host: u.host, params: u.params } : u;
        expect(parseUri(formatUri(clean))).toEqual(clean);
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseNameAddr', () => {
  it.each<[string, NameAddr]>([
    ['<sip:bob@x.example>', { uri: 'sip:bob@x.example', params: {} }],
    ['"Bob \\"B\\" Smith" <sip:bob@x.example>;tag=abc', { displayName: 'Bob "B" Smith', uri: 'sip:bob@x.example', params: { tag: 'abc' } }],
    ['Bob  Smith <sip:bob@x.example;transport=tcp> ; tag = a1', { displayName: 'Bob Smith', uri: 'sip:bob@x.example;transport=tcp', params: { tag: 'a1' } }],
    ['sip:bob@x.example;tag=xyz', { uri: 'sip:bob@x.example', params: { tag: 'xyz' } }],
    ['"Jürgen" <sip:j@x.example>', { displayName: 'Jürgen', uri: 'sip:j@x.example', params: {} }],
    ['<sip:a@x.example>;+sip.instance="<urn:uuid:1;2>";expires', { uri: 'sip:a@x.example', params: { '+sip.instance': '"<urn:uuid:1;2>"', expires: null } }],
    ['<tel:+15551234567>', { uri: 'tel:+15551234567', params: {} }],
    ['*', { uri: '*', params: {} }],
  ])('reads %s', (text, expected) => {
    expect(parseNameAddr(text)).toEqual(expected);
  });

  it.each([
    ['an unclosed angle bracket', '<sip:bob@x.example'],
    ['an unclosed quote', '"Bob <sip:bob@x.example>'],
    ['a URI without scheme', '<bob@x.example>'],
    ['a display name with a comma', 'Bob, Smith <sip:bob@x.example>'],
    ['text after the URI', '<sip:bob@x.example> junk'],
    ['a parameter without name', '<sip:bob@x.example>;=1'],
    ['a repeated tag', '<sip:bob@x.example>;tag=1;tag=2'],
    ['an empty value', ''],
  ])('rejects %s', (_name, text) => {
    expect(statusOf(() => parseNameAddr(text))).toBe(400);
  });

  it('reads a Contact list with commas inside quotes and brackets', () => {
    const list = parseNameAddrList('"Doe, J" <sip:j@a.example;x=1>, <sip:k@b.example>;q=0.5');
    expect(list.map((na) => na.uri)).toEqual(['sip:j@a.example;x=1', 'sip:k@b.example']);
    expect(list[0]?.displayName).toBe('Doe, J');
    expect(list[1]?.params['q']).toBe('0.5');
  });

  it('formats a name-addr that parses back to itself', () => {
    const na = fc.record({
      displayName: fc.option(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }), { nil: undefined }),
      uri: fc.constantFrom('sip:a@x.example', 'sips:b@y.example;transport=tls', 'tel:+15551234567'),
      params: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), fc.option(fc.stringMatching(/^[A-Za-z0-9.]{1,8}$/), { nil: null })),
    });
    fc.assert(
      fc.property(na, (value) => {
        const clean = value.displayName === undefined ? { uri: value.uri, params: value.params } : value;
        expect(parseNameAddr(formatNameAddr(clean))).toEqual(clean);
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseVia', () => {
  it.each([
    ['SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport', [{ transport: 'UDP', host: '192.0.2.1', port: 5060, params: { branch: 'z9hG4bK776', rport: null } }]],
    ['SIP / 2.0 / tcp Proxy.Example ; branch = z9hG4bKx ; received=192.0.2.9', [{ transport: 'TCP', host: 'proxy.example', params: { branch: 'z9hG4bKx', received: '192.0.2.9' } }]],
    ['SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKa;received=2001:db8::8', [{ transport: 'TLS', host: '[2001:db8::9]', port: 5061, params: { branch: 'z9hG4bKa', received: '2001:db8::8' } }]],
    ['SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/WSS b.example:443;branch=z9hG4bK2', [
      { transport: 'UDP', host: 'a.example', params: { branch: 'z9hG4bK1' } },
      { transport: 'WSS', host: 'b.example', port: 443, params: { branch: 'z9hG4bK2' } },
    ]],
    ['SIP/2.0/UDP h.example:5060 ;rport=5062', [{ transport: 'UDP', host: 'h.example', port: 5060, params: { rport: '5062' } }]],
  ])('reads %s', (text, expected) => {
    expect(parseVia(text)).toEqual(expected);
  });

  it.each([
    ['no protocol', '192.0.2.1;branch=z9hG4bK1'],
    ['SIP/1.0', 'SIP/1.0/UDP h.example'],
    ['no space before sent-by', 'SIP/2.0/UDPh.example'],
    ['no host', 'SIP/2.0/UDP ;branch=z9hG4bK1'],
    ['a bad port', 'SIP/2.0/UDP h.example:99999'],
    ['an empty list element', 'SIP/2.0/UDP a.example,,SIP/2.0/UDP b.example'],
    ['garbage after the parameters', 'SIP/2.0/UDP h.example;branch=z9hG4bK1 junk'],
  ])('rejects %s', (_name, text) => {
    expect(statusOf(() => parseVia(text))).toBe(400);
  });

  it('formats a Via that parses back to itself', () => {
    const via = { transport: 'TCP', host: 'bridge.example', port: 5060, params: { branch: 'z9hG4bKq1', rport: null } };
    expect(formatVia(via)).toBe('SIP/2.0/TCP bridge.example:5060;branch=z9hG4bKq1;rport');
    expect(parseVia(formatVia(via))).toEqual([via]);
  });
});
