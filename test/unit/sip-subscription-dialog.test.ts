import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { headerValue, headerValues, type SipRequest, type SipResponse } from '../../src/adapters/sip/codec/message.js';
import {
  confirmDialog,
  DialogError,
  inDialogRequest,
  receiveInDialog,
  uacDialog,
  uasDialog,
  type LocalSide,
} from '../../src/adapters/sip/dialog.js';
import { withResource } from '../../src/adapters/sip/presence/notifier.js';
import { refreshAt } from '../../src/adapters/sip/presence/subscriber.js';
import { presenceEvent, type Availability } from '../../src/core/events.js';
import type { ResourcePresence } from '../../src/mapping/presence-values.js';

const PEER = { transport: 'udp' as const, host: '192.0.2.10', port: 5060 };
const LOCAL: LocalSide = { transport: 'udp', sentBy: { host: '127.0.0.1', port: 5070 } };

function request(method: string, headers: [string, string][], uri = 'sip:juliet@xmpp.example.org'): SipRequest {
  return { kind: 'request', method, uri, headers: headers.map(([name, value]) => ({ name, value })), body: Buffer.alloc(0) };
}

function response(status: number, headers: [string, string][]): SipResponse {
  return { kind: 'response', status, reason: 'OK', headers: headers.map(([name, value]) => ({ name, value })), body: Buffer.alloc(0) };
}

const SUBSCRIBE = request('SUBSCRIBE', [
  ['Via', 'SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1'],
  ['Record-Route', '<sip:p1.example.com;lr>, <sip:p2.example.com;lr>'],
  ['Record-Route', '<sip:p3.example.com;lr>'],
  ['From', '<sip:alice@corp.example>;tag=a1'],
  ['To', '<sip:juliet@xmpp.example.org>'],
  ['Call-ID', 'c1@192.0.2.10'],
  ['CSeq', '7 SUBSCRIBE'],
  ['Contact', '<sip:alice@198.51.100.4:5062>'],
]);

describe('uasDialog (RFC 3261 §12.1.1)', () => {
  it('takes the route set in order, the Contact as remote target and the SUBSCRIBE CSeq', () => {
    expect(uasDialog(SUBSCRIBE, 'local1', PEER)).toEqual({
      callId: 'c1@192.0.2.10',
      localTag: 'local1',
      remoteTag: 'a1',
      localUri: 'sip:juliet@xmpp.example.org',
      remoteUri: 'sip:alice@corp.example',
      remoteTarget: 'sip:alice@198.51.100.4:5062',
      routeSet: ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>', '<sip:p3.example.com;lr>'],
      localSeq: 0,
      remoteSeq: 7,
      peer: PEER,
    });
  });

  it.each([
    ['From', '<sip:alice@corp.example>'],
    ['From', 'not a name-addr <'],
    ['Call-ID', ''],
  ])('refuses a request whose %s is %j', (name, value) => {
    const headers = SUBSCRIBE.headers.map((h) => (h.name === name ? { name, value } : h));
    expect(() => uasDialog({ ...SUBSCRIBE, headers }, 't', PEER)).toThrow(DialogError);
  });
});

describe('inDialogRequest (RFC 3261 §12.2.1.1)', () => {
  it('with loose routes: Request-URI is the remote target, Route the route set, CSeq one up', () => {
    const dialog = uasDialog(SUBSCRIBE, 'local1', PEER);
    const first = inDialogRequest(dialog, 'NOTIFY', LOCAL, [{ name: 'Event', value: 'presence' }]);
    const second = inDialogRequest(first.dialog, 'NOTIFY', LOCAL, []);

    expect(first.request.uri).toBe('sip:alice@198.51.100.4:5062');
    expect(headerValues(first.request, 'Route')).toEqual(dialog.routeSet);
    expect(headerValue(first.request, 'From')).toBe('<sip:juliet@xmpp.example.org>;tag=local1');
    expect(headerValue(first.request, 'To')).toBe('<sip:alice@corp.example>;tag=a1');
    expect(headerValue(first.request, 'CSeq')).toBe('1 NOTIFY');
    expect(headerValue(first.request, 'Event')).toBe('presence');
    expect(headerValue(second.request, 'CSeq')).toBe('2 NOTIFY');
    expect(headerValue(first.request, 'Via')).not.toBe(headerValue(second.request, 'Via')); // a new branch each
  });

  it('with a strict first route: Request-URI is that route (method dropped), the remote target goes last in Route', () => {
    const dialog = { ...uasDialog(SUBSCRIBE, 'l', PEER), routeSet: ['<sip:strict.example.com;method=NOTIFY;maddr=192.0.2.1>', '<sip:p2.example.com;lr>'] };
    const { request: req } = inDialogRequest(dialog, 'NOTIFY', LOCAL, []);

    expect(req.uri).toBe('sip:strict.example.com;maddr=192.0.2.1');
    expect(headerValues(req, 'Route')).toEqual(['<sip:p2.example.com;lr>', '<sip:alice@198.51.100.4:5062>']);
  });

  it('without a remote tag yet, To has no tag', () => {
    const out = request('SUBSCRIBE', [
      ['From', '<sip:juliet@xmpp.example.org>;tag=j1'],
      ['To', '<sip:bob@presence.example.org>'],
      ['Call-ID', 'c2'],
      ['CSeq', '1 SUBSCRIBE'],
    ], 'sip:bob@presence.example.org');
    const { request: refresh } = inDialogRequest(uacDialog(out, PEER), 'SUBSCRIBE', LOCAL, []);
    expect(headerValue(refresh, 'To')).toBe('<sip:bob@presence.example.org>');
    expect(headerValue(refresh, 'CSeq')).toBe('2 SUBSCRIBE');
  });
});

describe('confirmDialog: the subscriber learns the dialog (RFC 3261 §12.1.2, RFC 6665 §4.4.1)', () => {
  const out = request('SUBSCRIBE', [
    ['From', '<sip:juliet@xmpp.example.org>;tag=j1'],
    ['To', '<sip:bob@presence.example.org>'],
    ['Call-ID', 'c3'],
    ['CSeq', '1 SUBSCRIBE'],
  ], 'sip:bob@presence.example.org');
  const initial = uacDialog(out, PEER);
  const ok = response(200, [
    ['To', '<sip:bob@presence.example.org>;tag=b1'],
    ['Record-Route', '<sip:p1;lr>, <sip:p2;lr>'],
    ['Contact', '<sip:bob@203.0.113.5>'],
  ]);
  const notify = request('NOTIFY', [
    ['From', '<sip:bob@presence.example.org>;tag=b2'],
    ['Record-Route', '<sip:p1;lr>, <sip:p2;lr>'],
    ['Contact', '<sip:bob@203.0.113.6>'],
    ['CSeq', '4 NOTIFY'],
  ]);

  it('from a 2xx: Record-Route reversed, remote tag from To', () => {
    expect(confirmDialog(initial, ok)).toMatchObject({ remoteTag: 'b1', routeSet: ['<sip:p2;lr>', '<sip:p1;lr>'], remoteTarget: 'sip:bob@203.0.113.5' });
  });

  it('from a NOTIFY first: Record-Route in order, remote tag from From, its CSeq remembered', () => {
    expect(confirmDialog(initial, notify)).toMatchObject({ remoteTag: 'b2', routeSet: ['<sip:p1;lr>', '<sip:p2;lr>'], remoteSeq: 4 });
  });

  it('a later answer keeps the remote tag and route set the first one fixed', () => {
    const fixed = confirmDialog(confirmDialog(initial, notify), ok);
    expect(fixed).toMatchObject({ remoteTag: 'b2', routeSet: ['<sip:p1;lr>', '<sip:p2;lr>'], remoteTarget: 'sip:bob@203.0.113.5' });
  });
});

describe('receiveInDialog (RFC 3261 §12.2.2)', () => {
  const dialog = uasDialog(SUBSCRIBE, 'l', PEER); // remote CSeq 7

  it.each([
    [8, 8],
    [7, 7], // a retransmission-like equal CSeq is not out of order
    [100, 100],
  ])('CSeq %d is taken (remote CSeq becomes %d) and the Contact refreshes the target', (seq, remoteSeq) => {
    const refresh = request('SUBSCRIBE', [['CSeq', `${seq} SUBSCRIBE`], ['Contact', '<sip:alice@198.51.100.9>']]);
    expect(receiveInDialog(dialog, refresh)).toMatchObject({ remoteSeq, remoteTarget: 'sip:alice@198.51.100.9' });
  });

  it('a lower CSeq is out of order', () => {
    expect(receiveInDialog(dialog, request('SUBSCRIBE', [['CSeq', '6 SUBSCRIBE']]))).toBe('out-of-order');
  });
});

describe('refreshAt (RFC 6665 §4.1.2.2: the subscriber picks the moment)', () => {
  it.each([
    [3600, 3240], // 10 % before the end
    [600, 540],
    [200, 170], // at least 30 s before
    [40, 20], // never before half the duration
    [4, 2],
  ])('a %d s subscription is refreshed after %d s', (seconds, after) => {
    expect(refreshAt(0, seconds * 1000)).toBe(after * 1000);
  });

  it('falls between now and the end, never before half the duration', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 1, max: 2 ** 32 }), (now, duration) => {
        const at = refreshAt(now, now + duration);
        expect(at).toBeGreaterThanOrEqual(now + duration / 2);
        expect(at).toBeLessThan(now + duration);
      }),
    );
  });
});

describe('withResource: the XMPP user\'s resources after one presence change', () => {
  const change = (availability: Availability, resource?: string, note?: string): ReturnType<typeof presenceEvent> =>
    presenceEvent({
      origin: 'xmpp',
      from: { side: 'sip', user: 'juliet', domain: 'xmpp.example.org', ...(resource === undefined ? {} : { resource }) },
      to: { side: 'sip', user: 'alice', domain: 'corp.example' },
      availability,
      ...(note === undefined ? {} : { note }),
      dedupeKey: 'k',
      createdAt: 0,
    });
  const phone: ResourcePresence = { resource: 'phone', availability: 'away' };
  const desk: ResourcePresence = { resource: 'desk', availability: 'available' };

  it.each([
    ['a new resource joins the others', [phone], change('dnd', 'desk'), [{ resource: 'desk', availability: 'dnd' }, phone]],
    ['a known resource is replaced', [phone, desk], change('xa', 'phone'), [{ resource: 'phone', availability: 'xa' }, desk]],
    ['a resource leaving stays only as the latest word', [phone, desk], change('unavailable', 'phone', 'bye'), [{ resource: 'phone', availability: 'unavailable', note: 'bye' }, desk]],
    ['an older unavailable entry goes', [{ resource: 'old', availability: 'unavailable' }, desk], change('away', 'phone'), [{ resource: 'phone', availability: 'away' }, desk]],
    ['a bare unavailable ends every resource', [phone, desk], change('unavailable', undefined, 'gone'), [{ availability: 'unavailable', note: 'gone' }]],
  ] as [string, ResourcePresence[], ReturnType<typeof presenceEvent>, ResourcePresence[]][])('%s', (_name, before, event, after) => {
    expect(withResource(before, event)).toEqual(after);
  });

  it('keeps at most 16 resources whatever arrives', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom<Availability>('available', 'away', 'unavailable'), fc.string({ maxLength: 4 })), { maxLength: 200 }), (changes) => {
        let resources: ResourcePresence[] = [];
        for (const [availability, resource] of changes) resources = withResource(resources, change(availability, resource));
        expect(resources.length).toBeLessThanOrEqual(16);
      }),
    );
  });
});
