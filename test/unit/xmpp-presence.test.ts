import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AVAILABILITIES,
  type Address,
  type CanonicalEvent,
  type FailureEvent,
  type PresenceEvent,
  type ProbeEvent,
  type SubscriptionAction,
  type SubscriptionEvent,
} from '../../src/core/events.js';
import { AnnouncedPresence } from '../../src/adapters/xmpp/announced-presence.js';
import { fromStanza, toStanza } from '../../src/adapters/xmpp/stanza.js';
import { parseStanza } from '../support/xmpp-client.js';

const ctx = { component: 'sip.xmpp.test', now: 1_700_000_000_000 };
const JULIET = `from='juliet@xmpp.test/balcony' to='alice\\40corp.example@sip.xmpp.test'`;

function inbound(text: string): CanonicalEvent | undefined {
  const got = fromStanza(parseStanza(text), ctx);
  return got.kind === 'presence' ? got.event : undefined;
}

describe('fromStanza: presence', () => {
  it.each([
    ['no show', `<presence ${JULIET}/>`, { availability: 'available', priority: 0 }],
    ['show chat', `<presence ${JULIET}><show>chat</show></presence>`, { availability: 'chat', priority: 0 }],
    ['show away with status', `<presence ${JULIET}><show>away</show><status>at lunch</status></presence>`, { availability: 'away', note: 'at lunch', priority: 0 }],
    ['show xa', `<presence ${JULIET}><show>xa</show></presence>`, { availability: 'xa', priority: 0 }],
    ['show dnd with priority', `<presence ${JULIET}><show>dnd</show><priority>5</priority></presence>`, { availability: 'dnd', priority: 5 }],
    ['unknown show (RFC 6121 §4.7.2.1)', `<presence ${JULIET}><show>sleeping</show></presence>`, { availability: 'available', priority: 0 }],
    ['priority -128', `<presence ${JULIET}><priority>-128</priority></presence>`, { availability: 'available', priority: -128 }],
    ['priority 127', `<presence ${JULIET}><priority>127</priority></presence>`, { availability: 'available', priority: 127 }],
    ['priority 128 (out of range → 0)', `<presence ${JULIET}><priority>128</priority></presence>`, { availability: 'available', priority: 0 }],
    ['priority -129 (out of range → 0)', `<presence ${JULIET}><priority>-129</priority></presence>`, { availability: 'available', priority: 0 }],
    ['priority not a number', `<presence ${JULIET}><priority>high</priority></presence>`, { availability: 'available', priority: 0 }],
    ['priority 1.5', `<presence ${JULIET}><priority>1.5</priority></presence>`, { availability: 'available', priority: 0 }],
    ['huge priority', `<presence ${JULIET}><priority>${'9'.repeat(400)}</priority></presence>`, { availability: 'available', priority: 0 }],
    [
      'statuses in two languages (the unmarked one wins)',
      `<presence ${JULIET}><status xml:lang='cs'>Dvořím se</status><status>Wooing</status></presence>`,
      { availability: 'available', note: 'Wooing', priority: 0 },
    ],
    ['status with markup characters', `<presence ${JULIET}><status>a &lt;b&gt; &amp; 😀</status></presence>`, { availability: 'available', note: 'a <b> & 😀', priority: 0 }],
    ['unavailable', `<presence ${JULIET} type='unavailable'/>`, { availability: 'unavailable' }],
    ['unavailable with status', `<presence ${JULIET} type='unavailable'><status>gone</status></presence>`, { availability: 'unavailable', note: 'gone' }],
  ])('given %s, then a presence event with exact fields', (_what, text, fields) => {
    const e = inbound(text) as PresenceEvent;
    expect(e).toEqual({
      kind: 'presence',
      id: e.id,
      origin: 'xmpp',
      from: { side: 'xmpp', user: 'juliet', domain: 'xmpp.test', resource: 'balcony' },
      to: { side: 'xmpp', user: 'alice\\40corp.example', domain: 'sip.xmpp.test' },
      createdAt: ctx.now,
      dedupeKey: e.dedupeKey,
      ...fields,
    });
    expect(e.dedupeKey).toMatch(/^xmpp:juliet@xmpp\.test\/balcony:presence:/);
  });

  it('given the same presence twice, then the dedupe keys differ (each is a new state)', () => {
    const a = inbound(`<presence ${JULIET} id='p1'/>`);
    const b = inbound(`<presence ${JULIET} id='p1'/>`);
    expect(a?.dedupeKey).not.toBe(b?.dedupeKey);
    expect(a?.originRef).toBe('p1');
  });

  it.each([
    ['subscribe', 'subscribe'],
    ['subscribed', 'approve'],
    ['unsubscribe', 'unsubscribe'],
    ['unsubscribed', 'deny'],
  ] as const)('given type %s, then a subscription event %s', (type, action) => {
    const e = inbound(`<presence from='juliet@xmpp.test' to='alice\\40corp.example@sip.xmpp.test' type='${type}' id='s1'/>`) as SubscriptionEvent;
    expect(e).toEqual({
      kind: 'subscription',
      id: e.id,
      origin: 'xmpp',
      action,
      from: { side: 'xmpp', user: 'juliet', domain: 'xmpp.test' },
      to: { side: 'xmpp', user: 'alice\\40corp.example', domain: 'sip.xmpp.test' },
      originRef: 's1',
      dedupeKey: 'xmpp:juliet@xmpp.test:s1',
      createdAt: ctx.now,
    });
  });

  it('given subscription requests without id, then each has its own dedupe key', () => {
    const key = (): string | undefined => inbound(`<presence from='juliet@xmpp.test' to='bob@sip.xmpp.test' type='subscribe'/>`)?.dedupeKey;
    expect(key()).toMatch(/^xmpp:juliet@xmpp\.test:no-id:/);
    expect(key()).not.toBe(key());
  });

  it('given a probe, then a probe event from the prober to the component user', () => {
    const e = inbound(`<presence from='juliet@xmpp.test' to='bob@sip.xmpp.test' type='probe' id='pr1'/>`) as ProbeEvent;
    expect(e).toMatchObject({
      kind: 'probe',
      origin: 'xmpp',
      from: { side: 'xmpp', user: 'juliet', domain: 'xmpp.test' },
      to: { side: 'xmpp', user: 'bob', domain: 'sip.xmpp.test' },
      originRef: 'pr1',
    });
    expect(e.dedupeKey).toMatch(/^xmpp:juliet@xmpp\.test:probe:/);
  });

  it('given a presence error, then its id, condition and text are read', () => {
    const got = fromStanza(
      parseStanza(
        `<presence type='error' id='x1' from='nobody@xmpp.test' to='bob@sip.xmpp.test'><error type='cancel'>` +
          `<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no such user</text></error></presence>`,
      ),
      ctx,
    );
    expect(got).toEqual({ kind: 'presence-error', id: 'x1', condition: 'item-not-found', text: 'no such user' });
  });

  it.each([
    ['presence to the bare component domain', `<presence from='juliet@xmpp.test/r' to='sip.xmpp.test'/>`],
    ['subscribe to the bare component domain', `<presence from='juliet@xmpp.test' to='sip.xmpp.test' type='subscribe'/>`],
    ['undefined presence type (RFC 6121 §4.7.1)', `<presence from='juliet@xmpp.test/r' to='bob@sip.xmpp.test' type='invisible'/>`],
    ['missing from', `<presence to='bob@sip.xmpp.test'/>`],
    ['malformed to', `<presence from='juliet@xmpp.test/r' to='bob@'/>`],
  ])('given a %s, then it is ignored', (_what, text) => {
    expect(fromStanza(parseStanza(text), ctx).kind).toBe('ignored');
  });
});

describe('toStanza: presence', () => {
  const from: Address = { side: 'xmpp', user: 'alice\\40corp.example', domain: 'sip.xmpp.test' };
  const to: Address = { side: 'xmpp', user: 'juliet', domain: 'xmpp.test' };
  const base = { id: 'ev-1', origin: 'sip' as const, from, to, dedupeKey: 'k', createdAt: 0 };
  const head = `from="alice\\40corp.example@sip.xmpp.test" to="juliet@xmpp.test" id="ev-1"`;

  it.each<[string, Partial<PresenceEvent>, string]>([
    ['available', { availability: 'available' }, `<presence ${head}/>`],
    ['chat', { availability: 'chat' }, `<presence ${head}><show>chat</show></presence>`],
    ['away with note', { availability: 'away', note: 'at lunch & <back>' }, `<presence ${head}><show>away</show><status>at lunch &amp; &lt;back&gt;</status></presence>`],
    ['xa', { availability: 'xa' }, `<presence ${head}><show>xa</show></presence>`],
    ['dnd with priority', { availability: 'dnd', priority: 3 }, `<presence ${head}><show>dnd</show><priority>3</priority></presence>`],
    ['priority out of range is clamped', { availability: 'available', priority: 500 }, `<presence ${head}><priority>127</priority></presence>`],
    ['empty note is left out', { availability: 'available', note: '' }, `<presence ${head}/>`],
    ['unavailable', { availability: 'unavailable', priority: 1 }, `<presence ${head} type="unavailable"/>`],
    ['unavailable with note', { availability: 'unavailable', note: 'logged off' }, `<presence ${head} type="unavailable"><status>logged off</status></presence>`],
  ])('given presence %s, then the stanza is exact', (_what, fields, expected) => {
    expect(toStanza({ ...base, kind: 'presence', availability: 'available', ...fields } as PresenceEvent).toString()).toBe(expected);
  });

  it.each<[SubscriptionAction, string]>([
    ['subscribe', 'subscribe'],
    ['approve', 'subscribed'],
    ['unsubscribe', 'unsubscribe'],
    ['deny', 'unsubscribed'],
    ['cancel', 'unsubscribed'],
  ])('given subscription %s, then a presence of type %s', (action, type) => {
    expect(toStanza({ ...base, kind: 'subscription', action }).toString()).toBe(`<presence ${head} type="${type}"/>`);
  });

  it('given a probe, then a presence of type probe', () => {
    expect(toStanza({ ...base, kind: 'probe' }).toString()).toBe(`<presence ${head} type="probe"/>`);
  });

  it.each(['presence', 'subscription', 'probe'] as const)('given the failure of a %s, then a presence error answering the original id', (refKind) => {
    const failure: FailureEvent = { ...base, kind: 'failure', originRef: 's1', ref: 'x', refKind, condition: 'forbidden', text: 'not visible' };
    expect(toStanza(failure).toString()).toBe(
      `<presence type="error" id="s1" from="alice\\40corp.example@sip.xmpp.test" to="juliet@xmpp.test"><error type="auth">` +
        `<forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">not visible</text></error></presence>`,
    );
  });

  it('round-trips availability, note and priority through the wire form (property)', () => {
    const xmlChar = fc
      .integer({ min: 0x20, max: 0x10ffff })
      .filter((c) => (c < 0xd800 || c > 0xdfff) && c !== 0xfffe && c !== 0xffff)
      .map((c) => String.fromCodePoint(c));
    const back = (e: PresenceEvent): CanonicalEvent | undefined => {
      const swapped = { ...e, from: { ...to, resource: 'r' }, to: from };
      return inbound(toStanza(swapped).toString());
    };
    fc.assert(
      fc.property(
        fc.constantFrom(...AVAILABILITIES),
        fc.array(xmlChar, { maxLength: 20 }),
        fc.integer({ min: -128, max: 127 }),
        (availability, chars, priority) => {
          const note = chars.join('');
          const got = back({ ...base, kind: 'presence', availability, note, priority }) as PresenceEvent;
          return (
            got.availability === availability &&
            (got.note ?? '') === note &&
            got.priority === (availability === 'unavailable' ? undefined : priority)
          );
        },
      ),
    );
  });
});

describe('AnnouncedPresence', () => {
  const alice: Address = { side: 'xmpp', user: 'alice', domain: 'sip.xmpp.test' };
  const juliet: Address = { side: 'xmpp', user: 'juliet', domain: 'xmpp.test' };
  const romeo: Address = { side: 'xmpp', user: 'romeo', domain: 'xmpp.test' };
  const presence = (f: Address, t: Address, availability: PresenceEvent['availability']): PresenceEvent => ({
    kind: 'presence',
    id: 'p',
    origin: 'sip',
    from: f,
    to: t,
    availability,
    dedupeKey: 'k',
    createdAt: 0,
  });

  it('given available then unavailable to one watcher, then nothing is left to withdraw', () => {
    const a = new AnnouncedPresence();
    a.note(presence(alice, juliet, 'away'));
    a.note(presence(alice, romeo, 'available'));
    a.note(presence(alice, juliet, 'unavailable'));
    expect(a.takeAll()).toEqual([{ from: alice, to: romeo }]);
    expect(a.size).toBe(0);
  });

  it('given a subscription ends, then every resource of that presentity is forgotten for that watcher only', () => {
    const a = new AnnouncedPresence();
    a.note(presence({ ...alice, resource: 'desk' }, juliet, 'available'));
    a.note(presence({ ...alice, resource: 'phone' }, { ...juliet, resource: 'r' }, 'dnd'));
    a.note(presence(alice, romeo, 'available'));
    a.forget(alice, juliet);
    expect(a.takeAll()).toEqual([{ from: alice, to: romeo }]);
  });

  it('given more announcements than the bound, then the oldest are forgotten', () => {
    const a = new AnnouncedPresence(3);
    for (let n = 0; n < 10; n++) a.note(presence({ ...alice, user: `u${n}` }, juliet, 'available'));
    expect(a.takeAll().map((x) => x.from.user)).toEqual(['u7', 'u8', 'u9']);
  });
});
