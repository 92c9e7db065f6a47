import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SipRequest } from '../../src/adapters/sip/codec/message.js';
import {
  acceptsPidf,
  eventId,
  eventPackage,
  expiresOf,
  formatSubscriptionState,
  isPidf,
  parseSubscriptionState,
  type SubscriptionStateValue,
} from '../../src/adapters/sip/presence/event-headers.js';

function request(headers: [string, string][]): SipRequest {
  return { kind: 'request', method: 'SUBSCRIBE', uri: 'sip:juliet@xmpp.example.org', headers: headers.map(([name, value]) => ({ name, value })), body: Buffer.alloc(0) };
}

describe('Event (RFC 6665 §8.2.1)', () => {
  it.each([
    ['presence', 'presence', undefined],
    ['presence;id=42', 'presence', '42'],
    ['presence ; id=7 ; other=x', 'presence', '7'],
    ['Presence', 'Presence', undefined], // compared byte by byte: not the presence package
    ['message-summary', 'message-summary', undefined],
  ])('%s → package %s, id %s', (value, pkg, id) => {
    const req = request([['Event', value]]);
    expect(eventPackage(req)).toBe(pkg);
    expect(eventId(req)).toBe(id);
  });

  it('is undefined when there is no Event header', () => {
    expect(eventPackage(request([]))).toBeUndefined();
  });
});

describe('Expires (RFC 3261 §20.19)', () => {
  it.each([
    ['3600', 3600],
    ['0', 0],
    ['99999999999999', 2 ** 32 - 1],
  ])('%s → %d', (value, seconds) => {
    expect(expiresOf(request([['Expires', value]]))).toBe(seconds);
  });

  it.each(['-1', '1.5', 'soon', '', '3600 s'])('%j is refused with 400', (value) => {
    expect(() => expiresOf(request([['Expires', value]]))).toThrow(expect.objectContaining({ status: 400 }));
  });

  it('is undefined when absent', () => {
    expect(expiresOf(request([]))).toBeUndefined();
  });
});

describe('Accept (RFC 3856 §6.5, RFC 6665 §4.1.2.1)', () => {
  it.each([
    [[], true],
    [['application/pidf+xml'], true],
    [['application/xpidf+xml, application/pidf+xml;q=0.5'], true],
    [['application/*'], true],
    [['*/*'], true],
    [['APPLICATION/PIDF+XML'], true],
    [['application/xpidf+xml'], false],
    [['application/pidf+xml;q=0'], false],
    [[''], false], // RFC 3261 §20.1: an empty Accept accepts no body
    [['text/plain', 'application/pidf+xml'], true],
  ] as [string[], boolean][])('%j → %s', (values, ok) => {
    expect(acceptsPidf(request(values.map((v) => ['Accept', v])))).toBe(ok);
  });
});

describe('Subscription-State (RFC 6665 §4.1.3, §4.2.2)', () => {
  it.each([
    ['active;expires=599', { state: 'active', expires: 599 }],
    ['pending', { state: 'pending' }],
    ['Terminated;Reason=Rejected', { state: 'terminated', reason: 'rejected' }],
    ['terminated;reason=probation;retry-after=30', { state: 'terminated', reason: 'probation', retryAfter: 30 }],
    ['terminated ; reason=timeout', { state: 'terminated', reason: 'timeout' }],
    ['active;expires=60;x-other=1', { state: 'active', expires: 60 }],
  ] as [string, SubscriptionStateValue][])('%s → %j', (value, parsed) => {
    expect(parseSubscriptionState(value)).toEqual(parsed);
  });

  it.each([undefined, '', 'maybe', 'active;expires=soon', 'terminated;retry-after=-1'])('%j is not a state', (value) => {
    expect(parseSubscriptionState(value)).toBeUndefined();
  });

  it.each([
    [{ state: 'active', expires: 599.7 }, 'active;expires=599'],
    [{ state: 'pending', expires: -3 }, 'pending;expires=0'],
    [{ state: 'terminated', reason: 'timeout' }, 'terminated;reason=timeout'],
    [{ state: 'terminated', expires: 10 }, 'terminated'], // §4.1.3: no expires on terminated
  ] as [SubscriptionStateValue, string][])('%j is written %s', (value, text) => {
    expect(formatSubscriptionState(value)).toBe(text);
  });

  it('reads back what it writes', () => {
    const states = fc.oneof(
      fc.record({ state: fc.constantFrom('active' as const, 'pending' as const), expires: fc.integer({ min: 0, max: 2 ** 31 }) }),
      fc.record(
        { state: fc.constant('terminated' as const), reason: fc.constantFrom('timeout', 'rejected', 'deactivated', 'noresource'), retryAfter: fc.integer({ min: 0, max: 86_400 }) },
        { requiredKeys: ['state'] },
      ),
    );
    fc.assert(
      fc.property(states, (s) => {
        expect(parseSubscriptionState(formatSubscriptionState(s))).toEqual(s);
      }),
    );
  });
});

describe('Content-Type', () => {
  it.each([
    ['application/pidf+xml', true],
    ['application/pidf+xml; charset=UTF-8', true],
    ['Application/PIDF+XML', true],
    ['application/xpidf+xml', false],
    [undefined, false],
  ])('%s is PIDF: %s', (type, pidf) => {
    expect(isPidf(type)).toBe(pidf);
  });
});
