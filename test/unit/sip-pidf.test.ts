import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Availability } from '../../src/core/events.js';
import { buildPidf, cleanText, MAX_PIDF_BYTES, MAX_TUPLES, parsePidf } from '../../src/adapters/sip/pidf.js';
import {
  ACTIVITY_AVAILABILITY,
  pidfFromPresence,
  presenceFromPidf,
  type PidfDocument,
  type PidfTuple,
  SHOWS,
} from '../../src/mapping/presence-values.js';
import { refusal } from '../support/refusal.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/pidf/${name}`, import.meta.url), 'utf8');

const PRESENCE_OPEN = `xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@example.com"`;
const tupleXml = (id: string, basic = 'open'): string => `<tuple id="${id}"><status><basic>${basic}</basic></status></tuple>`;

describe('parsePidf on real-world bodies', () => {
  const rows: {
    file: string;
    entity: string;
    tuples: Partial<PidfTuple>[];
    notes: string[];
    activities: string[];
    presence: { availability: Availability; note?: string; priority?: number };
  }[] = [
    {
      file: 'kamailio-presence-xml.xml',
      entity: 'sip:alice@example.net',
      tuples: [
        { id: '0x7f2c3a1b8e40', basic: 'open', contact: 'sip:alice@192.0.2.10:5060;transport=udp', priority: 0.8, timestamp: '2026-11-23T11:00:00Z' },
        { id: 'a1b2c3', basic: 'closed', note: 'desk phone unplugged' },
      ],
      notes: ['On the phone'],
      activities: ['on-the-phone'],
      presence: { availability: 'dnd', note: 'On the phone', priority: 102 },
    },
    {
      file: 'kamailio-offline.xml',
      entity: 'sip:bob@example.net',
      tuples: [{ id: 'e3a1f58e8f4c9b0f', basic: 'closed' }],
      notes: [],
      activities: [],
      presence: { availability: 'unavailable' },
    },
    {
      file: 'lync-like.xml',
      entity: 'sip:carol@contoso.com',
      tuples: [{ id: 't1', basic: 'open', contact: 'sip:carol@contoso.com', priority: 1 }],
      notes: ['In a meeting & presenting'],
      activities: ['busy', 'meeting'],
      presence: { availability: 'dnd', note: 'In a meeting & presenting', priority: 127 },
    },
    {
      file: 'jitsi.xml',
      entity: 'sip:dave@example.org',
      tuples: [{ id: 't2847', basic: 'open', contact: 'sip:dave@example.org', note: 'Away' }],
      notes: [],
      activities: ['away'],
      presence: { availability: 'away', note: 'Away' },
    },
    {
      file: 'bria.xml',
      entity: 'sip:eve@example.com',
      tuples: [{ id: 'cp1', basic: 'open', note: 'Back at 3 <maybe>' }],
      notes: [],
      activities: ['other', 'meal'],
      presence: { availability: 'away', note: 'Back at 3 <maybe>' },
    },
    {
      // Pre-RFC 4480 draft namespaces: not RPID, ignored; the basic status and note remain.
      file: 'xlite-old-rpid.xml',
      entity: 'sip:frank@example.com',
      tuples: [{ id: 't54bb0569', basic: 'open' }],
      notes: ['Idle'],
      activities: [],
      presence: { availability: 'available', note: 'Idle' },
    },
    {
      file: 'rfc8048-example19.xml',
      entity: 'pres:juliet@example.com',
      tuples: [{ id: 'ID-yn0cl4bnw0yr3vym', basic: 'open', show: 'away' }],
      notes: [],
      activities: [],
      presence: { availability: 'away' },
    },
    {
      file: 'rfc8048-example20.xml',
      entity: 'pres:romeo@example.net',
      tuples: [{ id: 'ID-dr4hcr0st3lup4c', basic: 'closed' }],
      notes: [],
      activities: [],
      presence: { availability: 'unavailable' },
    },
  ];
  it.each(rows)('$file', ({ file, entity, tuples, notes, activities, presence }) => {
    const doc = parsePidf(fixture(file));
    expect(doc.entity).toBe(entity);
    expect(doc.tuples).toEqual(tuples);
    expect(doc.notes).toEqual(notes);
    expect(doc.activities).toEqual(activities);
    expect(presenceFromPidf(doc)).toEqual(presence);
  });
});

describe('parsePidf namespaces', () => {
  it('reads any prefix, including a prefixed PIDF namespace and RPID inside a tuple status', () => {
    const body =
      `<x:presence xmlns:x="urn:ietf:params:xml:ns:pidf" xmlns:q="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@b">` +
      `<x:tuple id="t"><x:status><x:basic>open</x:basic><q:activities><q:sleeping/></q:activities></x:status></x:tuple>` +
      `</x:presence>`;
    expect(parsePidf(body)).toEqual({ entity: 'sip:a@b', tuples: [{ id: 't', basic: 'open' }], notes: [], activities: ['sleeping'] });
  });
  it('does not take an element of another namespace for a PIDF one', () => {
    const body = `<presence ${PRESENCE_OPEN}><tuple xmlns="urn:example:other" id="x"><status><basic>open</basic></status></tuple>${tupleXml('t', 'closed')}</presence>`;
    expect(parsePidf(body).tuples).toEqual([{ id: 't', basic: 'closed' }]);
  });
  it('skips a tuple without <basic> (RFC 3863 §4.1.4: optional) but keeps its RPID', () => {
    const body = `<presence ${PRESENCE_OPEN} xmlns:r="urn:ietf:params:xml:ns:pidf:rpid"><tuple id="t"><status><r:activities><r:busy/></r:activities></status></tuple></presence>`;
    expect(parsePidf(body)).toMatchObject({ tuples: [], activities: ['busy'] });
  });
  it('accepts a byte order mark, comments and processing instructions', () => {
    const body = `\uFEFF<?xml version="1.0"?><!-- from a phone --><presence ${PRESENCE_OPEN}><?pi x?>${tupleXml('t')}<!-- end --></presence>\n`;
    expect(parsePidf(body).tuples).toEqual([{ id: 't', basic: 'open' }]);
  });
  it('ignores a contact priority that is not a qvalue', () => {
    const body = `<presence ${PRESENCE_OPEN}><tuple id="t"><status><basic>open</basic></status><contact priority="high">sip:a@b</contact></tuple></presence>`;
    expect(parsePidf(body).tuples).toEqual([{ id: 't', basic: 'open', contact: 'sip:a@b' }]);
  });
});

describe('parsePidf refuses what is not a PIDF document', () => {
  const many = Array.from({ length: MAX_TUPLES + 1 }, (_, i) => tupleXml(`t${i}`)).join('');
  const rows: [string, string][] = [
    ['empty body', ''],
    ['not XML', 'basic: open'],
    ['unclosed root', `<presence ${PRESENCE_OPEN}>${tupleXml('t')}`],
    ['mismatched end tag', `<presence ${PRESENCE_OPEN}><tuple id="t"><status><basic>open</basic></state></tuple></presence>`],
    ['two roots', `<presence ${PRESENCE_OPEN}/><presence ${PRESENCE_OPEN}/>`],
    ['text outside the root', `junk<presence ${PRESENCE_OPEN}/>`],
    ['DOCTYPE', `<!DOCTYPE presence><presence ${PRESENCE_OPEN}/>`],
    ['entity declaration (billion laughs)', `<!DOCTYPE p [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><presence ${PRESENCE_OPEN}><note>&b;</note></presence>`],
    ['external entity (XXE)', `<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><presence ${PRESENCE_OPEN}><note>&x;</note></presence>`],
    ['undefined entity', `<presence ${PRESENCE_OPEN}><note>&nbsp;</note></presence>`],
    ['forbidden character reference', `<presence ${PRESENCE_OPEN}><note>&#0;</note></presence>`],
    ['undefined entity in an attribute', `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="&who;"/>`],
    ['unbound prefix', `<presence ${PRESENCE_OPEN}><r:activities/></presence>`],
    ['wrong root', `<presence xmlns="urn:ietf:params:xml:ns:cpim-pidf" entity="sip:a@b"/>`],
    ['root without namespace', `<presence entity="sip:a@b"/>`],
    ['XMPP presence', `<presence xmlns="jabber:client" from="a@b"/>`],
    ['no entity', `<presence xmlns="urn:ietf:params:xml:ns:pidf"/>`],
    ['tuple without id', `<presence ${PRESENCE_OPEN}><tuple><status><basic>open</basic></status></tuple></presence>`],
    ['tuple without status', `<presence ${PRESENCE_OPEN}><tuple id="t"/></presence>`],
    ['basic neither open nor closed', `<presence ${PRESENCE_OPEN}>${tupleXml('t', 'maybe')}</presence>`],
    [`more than ${MAX_TUPLES} tuples`, `<presence ${PRESENCE_OPEN}>${many}</presence>`],
    ['over 64 KiB', `<presence ${PRESENCE_OPEN}><note>${'x'.repeat(MAX_PIDF_BYTES)}</note></presence>`],
    ['nested too deep', `<presence ${PRESENCE_OPEN}>${'<x:a xmlns:x="urn:x">'.repeat(40)}${'</x:a>'.repeat(40)}</presence>`],
  ];
  it.each(rows)('%s', (_, body) => {
    const err = refusal(() => parsePidf(body));
    expect(err.code).toBe('PIDF_INVALID');
    expect(err.condition).toBe('bad-request');
    expect(err.sipStatus).toBe(400);
  });
  it('accepts exactly the tuple limit', () => {
    const body = `<presence ${PRESENCE_OPEN}>${many.slice(0, -tupleXml(`t${MAX_TUPLES}`).length)}</presence>`;
    expect(parsePidf(body).tuples).toHaveLength(MAX_TUPLES);
  });
  it('throws only BridgeErrors on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (junk) => {
        for (const body of [junk, `<presence ${PRESENCE_OPEN}>${junk}</presence>`]) {
          try {
            parsePidf(body);
          } catch (err) {
            expect(refusal(() => {
              throw err;
            }).code).toBe('PIDF_INVALID');
          }
        }
      }),
    );
  });
});

describe('buildPidf', () => {
  it('writes RFC 8048 example 19 shaped XML with an RPID person', () => {
    const xml = buildPidf(pidfFromPresence('pres:juliet@example.com', [{ resource: 'yn0cl4bnw0yr3vym', availability: 'away', note: 'out' }]));
    expect(xml).toContain(`<presence xmlns="urn:ietf:params:xml:ns:pidf"`);
    expect(xml).toContain(`entity="pres:juliet@example.com"`);
    expect(xml).toContain(`<tuple id="ID-yn0cl4bnw0yr3vym"><status><basic>open</basic><show xmlns="jabber:client">away</show></status><note>out</note></tuple>`);
    expect(xml).toContain(`<dm:person id="p">\n<rpid:activities><rpid:away/></rpid:activities>\n<dm:note>out</dm:note>\n</dm:person>`);
  });
  it('writes no person element without activities or notes', () => {
    expect(buildPidf(pidfFromPresence('sip:a@b', []))).not.toContain('person');
  });
  it('escapes markup in text and attributes', () => {
    const xml = buildPidf({ entity: 'sip:"a"&<b>@c', tuples: [{ id: 't', basic: 'open', note: `</note><x>&"'` }], notes: [], activities: [] });
    expect(xml).toContain('entity="sip:&quot;a&quot;&amp;&lt;b&gt;@c"');
    expect(xml).toContain(`<note>&lt;/note&gt;&lt;x&gt;&amp;"'</note>`);
  });
  it('drops characters XML cannot carry and activities RPID does not define', () => {
    const doc = parsePidf(buildPidf({ entity: 'sip:a@b', tuples: [], notes: ['a\u0000b\u001b\uD800c'], activities: ['busy', 'x"/><evil', 'lunch'] }));
    expect(doc.notes).toEqual(['abc']);
    expect(doc.activities).toEqual(['busy']);
  });
});

describe('parsePidf(buildPidf(d)) round-trips', () => {
  const note = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.constantFrom('<&"\'>', ']]>', 'a\r\nb', '  spaced  ', 'Zoë 東京 🎉'));
  const present = (s: string): string | undefined => (cleanText(s) === '' ? undefined : s);
  const tuple = fc
    .record({
      id: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9._-]{0,15}$/),
      basic: fc.constantFrom<'open' | 'closed'>('open', 'closed'),
      note: fc.option(note, { nil: undefined }),
      contactPriority: fc.option(fc.record({ contact: note, priority: fc.integer({ min: 0, max: 1000 }) }), { nil: undefined }),
      timestamp: fc.option(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), { nil: undefined }),
      show: fc.option(fc.constantFrom(...SHOWS), { nil: undefined }),
    })
    .map(({ contactPriority, ...t }): PidfTuple => {
      const contact = contactPriority === undefined ? undefined : present(contactPriority.contact);
      const n = t.note === undefined ? undefined : present(t.note);
      return Object.fromEntries(
        Object.entries({ ...t, note: n, contact, priority: contact === undefined ? undefined : contactPriority!.priority / 1000 }).filter(([, v]) => v !== undefined),
      ) as unknown as PidfTuple;
    });
  const document = fc.record({
    entity: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).filter((e) => cleanText(e) !== ''),
    tuples: fc.uniqueArray(tuple, { selector: (t) => t.id, maxLength: 5 }),
    notes: fc.array(note, { maxLength: 3 }),
    activities: fc.uniqueArray(fc.constantFrom(...Object.keys(ACTIVITY_AVAILABILITY)), { maxLength: 4 }),
  });
  /** The document as the other side can see it: text normalised the way XML carries it. */
  const carried = (d: PidfDocument): PidfDocument => ({
    entity: cleanText(d.entity),
    tuples: d.tuples.map((t) => ({
      ...t,
      ...(t.note === undefined ? {} : { note: cleanText(t.note) }),
      ...(t.contact === undefined ? {} : { contact: cleanText(t.contact) }),
    })),
    notes: d.notes.map(cleanText).filter((n) => n !== ''),
    activities: d.activities,
  });
  it('for arbitrary documents, notes with markup characters and non-ASCII included', () => {
    fc.assert(
      fc.property(document, (d) => {
        expect(parsePidf(buildPidf(d))).toEqual(carried(d));
      }),
      { numRuns: 300 },
    );
  });
});
