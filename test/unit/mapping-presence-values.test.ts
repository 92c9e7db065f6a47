import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Availability } from '../../src/core/events.js';
import {
  ACTIVITY_AVAILABILITY,
  type Activity,
  pidfFromPresence,
  pidfPriority,
  presenceFromPidf,
  type PidfDocument,
  type PidfTuple,
  type ResourcePresence,
  type Show,
  tupleId,
  xmppPriority,
} from '../../src/mapping/presence-values.js';

const ENTITY = 'pres:juliet@example.com';

const doc = (tuples: PidfTuple[], more: Partial<PidfDocument> = {}): PidfDocument => ({
  entity: ENTITY,
  tuples,
  notes: [],
  activities: [],
  ...more,
});
const open = (id: string, more: Partial<PidfTuple> = {}): PidfTuple => ({ id, basic: 'open', ...more });
const closed = (id: string, more: Partial<PidfTuple> = {}): PidfTuple => ({ id, basic: 'closed', ...more });

/** xs:ID is an NCName; the ASCII subset is all the bridge writes. */
const NCNAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;

describe('RFC 8048 §6.2 Table 1: XMPP → SIP, one resource', () => {
  // One row per table row that PIDF carries (From/To/xml:lang/id are headers or unmapped).
  const rows: { row: string; resource: ResourcePresence; expected: Partial<PidfTuple>; notes?: string[]; activities?: string[] }[] = [
    { row: 'resource → tuple id (note 2: "ID-" prefix)', resource: { resource: 'yn0cl4bnw0yr3vym', availability: 'available' }, expected: { id: 'ID-yn0cl4bnw0yr3vym', basic: 'open' } },
    { row: 'no type → basic open (note 4)', resource: { resource: 'r', availability: 'available' }, expected: { basic: 'open' } },
    { row: 'type unavailable → basic closed (notes 4, 5)', resource: { resource: 'r', availability: 'unavailable' }, expected: { basic: 'closed' } },
    { row: 'priority 0 → 0 (note 6)', resource: { resource: 'r', availability: 'available', priority: 0 }, expected: { priority: 0, contact: ENTITY } },
    { row: 'priority 127 → 1 (note 6)', resource: { resource: 'r', availability: 'available', priority: 127 }, expected: { priority: 1, contact: ENTITY } },
    { row: 'priority 1 → 0.008 (note 6)', resource: { resource: 'r', availability: 'available', priority: 1 }, expected: { priority: 0.008 } },
    { row: 'negative priority MUST NOT be mapped (note 6)', resource: { resource: 'r', availability: 'available', priority: -1 }, expected: { priority: undefined, contact: undefined } },
    { row: '<status/> → <note/>', resource: { resource: 'r', availability: 'available', note: 'in the garden' }, expected: { note: 'in the garden' }, notes: ['in the garden'] },
    { row: '<show>away</show> → show (note 7) + RPID away', resource: { resource: 'r', availability: 'away' }, expected: { show: 'away' }, activities: ['away'] },
    { row: '<show>xa</show> → show + RPID away', resource: { resource: 'r', availability: 'xa' }, expected: { show: 'xa' }, activities: ['away'] },
    { row: '<show>dnd</show> → show + RPID busy', resource: { resource: 'r', availability: 'dnd' }, expected: { show: 'dnd' }, activities: ['busy'] },
    { row: '<show>chat</show> → show, no RPID activity', resource: { resource: 'r', availability: 'chat' }, expected: { show: 'chat' }, activities: [] },
    { row: 'no <show/> → no show, no activity', resource: { resource: 'r', availability: 'available' }, expected: { show: undefined }, activities: [] },
  ];
  it.each(rows)('$row', ({ resource, expected, notes, activities }) => {
    const pidf = pidfFromPresence(ENTITY, [resource]);
    expect(pidf.entity).toBe(ENTITY);
    expect(pidf.tuples).toHaveLength(1);
    const entries = Object.entries(expected);
    expect(pidf.tuples[0]).toMatchObject(Object.fromEntries(entries.filter(([, v]) => v !== undefined)));
    for (const [key] of entries.filter(([, v]) => v === undefined)) expect(pidf.tuples[0]).not.toHaveProperty(key);
    if (notes !== undefined) expect(pidf.notes).toEqual(notes);
    if (activities !== undefined) expect(pidf.activities).toEqual(activities);
  });
});

describe('RFC 8048 §6.3 Table 2: SIP → XMPP', () => {
  const rows: { row: string; pidf: PidfDocument; expected: { availability: Availability; note?: string; priority?: number } }[] = [
    { row: 'basic open → available (note 1)', pidf: doc([open('a')]), expected: { availability: 'available' } },
    { row: 'basic closed → unavailable (note 1)', pidf: doc([closed('a')]), expected: { availability: 'unavailable' } },
    { row: 'tuple priority 0.5 → <priority/> 64 (note 2)', pidf: doc([open('a', { contact: 'sip:a@x', priority: 0.5 })]), expected: { availability: 'available', priority: 64 } },
    { row: 'tuple priority 1 → <priority/> 127 (note 2)', pidf: doc([open('a', { contact: 'sip:a@x', priority: 1 })]), expected: { availability: 'available', priority: 127 } },
    { row: '<note/> → <status/>', pidf: doc([open('a', { note: 'lunch' })]), expected: { availability: 'available', note: 'lunch' } },
    { row: '<show/> → <show/> (note 3)', pidf: doc([open('a', { show: 'xa' })]), expected: { availability: 'xa' } },
  ];
  it.each(rows)('$row', ({ pidf, expected }) => {
    expect(presenceFromPidf(pidf)).toEqual(expected);
  });
});

describe('RFC 4480 §3.2 activities → availability of an open tuple', () => {
  // Written out, not derived from ACTIVITY_AVAILABILITY, so a change to the table shows here.
  const rows: [Activity, Availability][] = [
    ['appointment', 'dnd'],
    ['away', 'away'],
    ['breakfast', 'away'],
    ['busy', 'dnd'],
    ['dinner', 'away'],
    ['holiday', 'xa'],
    ['in-transit', 'away'],
    ['looking-for-work', 'available'],
    ['meal', 'away'],
    ['meeting', 'dnd'],
    ['on-the-phone', 'dnd'],
    ['performance', 'dnd'],
    ['permanent-absence', 'xa'],
    ['playing', 'away'],
    ['presentation', 'dnd'],
    ['shopping', 'away'],
    ['sleeping', 'xa'],
    ['spectator', 'away'],
    ['steering', 'dnd'],
    ['travel', 'away'],
    ['tv', 'away'],
    ['unknown', 'available'],
    ['vacation', 'xa'],
    ['working', 'available'],
    ['worship', 'away'],
    ['other', 'available'],
  ];
  it('has one row per activity of the schema', () => {
    expect(rows.map(([a]) => a).sort()).toEqual(Object.keys(ACTIVITY_AVAILABILITY).sort());
  });
  it.each(rows)('%s → %s', (activity, availability) => {
    expect(presenceFromPidf(doc([open('a')], { activities: [activity] })).availability).toBe(availability);
  });
  it('does not make a closed document available', () => {
    expect(presenceFromPidf(doc([closed('a')], { activities: ['busy'] })).availability).toBe('unavailable');
  });
  it('ignores activities it does not know', () => {
    expect(presenceFromPidf(doc([open('a')], { activities: ['juggling', 'lunch'] })).availability).toBe('available');
  });
  it('takes the activity that discourages contact most when several apply', () => {
    expect(presenceFromPidf(doc([open('a')], { activities: ['travel', 'meal', 'on-the-phone'] })).availability).toBe('dnd');
    expect(presenceFromPidf(doc([open('a')], { activities: ['meal', 'vacation'] })).availability).toBe('xa');
  });
  it('prefers the XMPP show of the best open tuple over the activities', () => {
    expect(presenceFromPidf(doc([open('a', { show: 'chat' })], { activities: ['busy'] })).availability).toBe('chat');
  });
});

describe('SIP → XMPP with several tuples', () => {
  it('is available when any tuple is open', () => {
    expect(presenceFromPidf(doc([closed('a'), open('b'), closed('c')])).availability).toBe('available');
  });
  it('is unavailable without tuples', () => {
    expect(presenceFromPidf(doc([], { notes: ['gone'] }))).toEqual({ availability: 'unavailable', note: 'gone' });
  });
  it('takes show and priority from the open tuple with the highest contact priority', () => {
    const pidf = doc([
      open('low', { contact: 'sip:x', priority: 0.2, show: 'away' }),
      closed('off', { contact: 'sip:x', priority: 1, show: 'dnd' }),
      open('high', { contact: 'sip:x', priority: 0.9, show: 'chat' }),
    ]);
    expect(presenceFromPidf(pidf)).toEqual({ availability: 'chat', priority: 114 });
  });
  it('takes the first open tuple in document order when priorities tie', () => {
    expect(presenceFromPidf(doc([open('a', { show: 'xa' }), open('b', { show: 'dnd' })])).availability).toBe('xa');
  });
  it('takes the note of the person or presence first, then of the best open tuple', () => {
    const tuples = [closed('c', { note: 'closed note' }), open('o', { note: 'open note' })];
    expect(presenceFromPidf(doc(tuples, { notes: ['person note'] })).note).toBe('person note');
    expect(presenceFromPidf(doc(tuples)).note).toBe('open note');
    expect(presenceFromPidf(doc([closed('c', { note: 'gone home' })])).note).toBe('gone home');
  });
});

describe('XMPP → SIP aggregation of several resources', () => {
  it('writes one open tuple per available resource, highest priority first', () => {
    const pidf = pidfFromPresence(ENTITY, [
      { resource: 'phone', availability: 'away', priority: 0, note: 'on the road' },
      { resource: 'laptop', availability: 'dnd', priority: 5, note: 'writing' },
      { resource: 'old', availability: 'unavailable', priority: 50 },
    ]);
    expect(pidf.tuples.map((t) => [t.id, t.basic, t.show])).toEqual([
      ['ID-laptop', 'open', 'dnd'],
      ['ID-phone', 'open', 'away'],
    ]);
    expect(pidf.activities).toEqual(['busy']);
    expect(pidf.notes).toEqual(['writing']);
  });
  it('orders equal priorities by resource name', () => {
    const pidf = pidfFromPresence(ENTITY, [
      { resource: 'b', availability: 'available' },
      { resource: 'a', availability: 'away', priority: 0 },
    ]);
    expect(pidf.tuples.map((t) => t.id)).toEqual(['ID-a', 'ID-b']);
    expect(pidf.activities).toEqual(['away']);
  });
  it('writes one closed tuple when no resource is available', () => {
    const pidf = pidfFromPresence(ENTITY, [
      { resource: 'b', availability: 'unavailable', note: 'bye' },
      { resource: 'a', availability: 'unavailable' },
    ]);
    expect(pidf.tuples).toEqual([{ id: 'ID-a', basic: 'closed', note: 'bye' }]);
    expect(pidf.notes).toEqual(['bye']);
    expect(pidf.activities).toEqual([]);
  });
  it('writes one closed tuple for no resources at all', () => {
    expect(pidfFromPresence(ENTITY, [])).toEqual({ entity: ENTITY, tuples: [{ id: 'ID', basic: 'closed' }], notes: [], activities: [] });
  });
  it('reads back as the top resource (XMPP → SIP → XMPP)', () => {
    const resources = fc.record({
      resource: fc.string({ maxLength: 10 }),
      availability: fc.constantFrom<Availability>('available', 'chat', 'away', 'xa', 'dnd', 'unavailable'),
      priority: fc.integer({ min: 0, max: 127 }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(resources, { selector: (r) => r.resource, maxLength: 6 }), (list) => {
        const back = presenceFromPidf(pidfFromPresence(ENTITY, list));
        const top = [...list]
          .filter((r) => r.availability !== 'unavailable')
          .sort((a, b) => b.priority - a.priority || (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0))[0];
        expect(back.availability).toBe(top?.availability ?? 'unavailable');
        if (top !== undefined) expect(back.priority).toBe(top.priority);
      }),
    );
  });
});

describe('priority scale (RFC 8048 §6.2 note 6)', () => {
  it('maps 0..127 to distinct values in 0..1 with three decimals, and back', () => {
    const mapped = Array.from({ length: 128 }, (_, p) => pidfPriority(p)!);
    expect(new Set(mapped).size).toBe(128);
    for (const [p, q] of mapped.entries()) {
      expect(q).toBeGreaterThanOrEqual(0);
      expect(q).toBeLessThanOrEqual(1);
      expect(Math.round(q * 1000)).toBeCloseTo(q * 1000, 9);
      expect(xmppPriority(q)).toBe(p);
    }
  });
  it.each([-128, -1, Number.NaN])('does not map %s', (p) => {
    expect(pidfPriority(p)).toBeUndefined();
  });
  it.each([-0.1, 1.5, Number.NaN])('reads no XMPP priority from PIDF %s', (q) => {
    expect(xmppPriority(q)).toBeUndefined();
  });
});

describe('tupleId', () => {
  it('is a valid, stable xs:ID for any resource, distinct for distinct resources', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 80 }), (a, b) => {
        expect(tupleId(a)).toMatch(NCNAME);
        expect(tupleId(a)).toBe(tupleId(a));
        if (a !== b) expect(tupleId(a)).not.toBe(tupleId(b));
      }),
    );
  });
  it.each([
    ['yn0cl4bnw0yr3vym', 'ID-yn0cl4bnw0yr3vym'],
    ['1234', 'ID-1234'],
    ['Conversations.x7Y_', 'ID-Conversations.x7Y_'],
  ])('keeps the plain resource %s readable as %s', (resource, id) => {
    expect(tupleId(resource)).toBe(id);
  });
  it('hashes resources with other characters, keeping a readable part', () => {
    expect(tupleId('Gajim on höme/pc')).toMatch(/^IH-Gajim_on_h_me_pc\.[0-9a-f]{12}$/);
  });
});

describe('show values', () => {
  it.each<[Show, Availability]>([
    ['away', 'away'],
    ['chat', 'chat'],
    ['dnd', 'dnd'],
    ['xa', 'xa'],
  ])('show %s survives XMPP → PIDF → XMPP as %s', (show, availability) => {
    expect(presenceFromPidf(pidfFromPresence(ENTITY, [{ resource: 'r', availability: show }])).availability).toBe(availability);
  });
});
