import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BridgeError } from '../../src/core/errors.js';
import { escapeNode, unescapeNode } from '../../src/mapping/jid-escape.js';

// XEP-0106 §6.1 examples (localparts only; the XEP's table shows NBSP for display, the escaped
// column is what counts: a plain space), plus the IMPS/IRC/LDAP/mail examples of §6.
const XEP_EXAMPLES: readonly [string, string][] = [
  ['space cadet', 'space\\20cadet'],
  ['call me "ishmael"', 'call\\20me\\20\\22ishmael\\22'],
  ['at&t guy', 'at\\26t\\20guy'],
  ["d'artagnan", 'd\\27artagnan'],
  ['/.fanboy', '\\2f.fanboy'],
  ['::foo::', '\\3a\\3afoo\\3a\\3a'],
  ['<foo>', '\\3cfoo\\3e'],
  ['user@host', 'user\\40host'],
  ['c:\\net', 'c\\3a\\net'],
  ['c:\\\\net', 'c\\3a\\\\net'],
  ['c:\\cool stuff', 'c\\3a\\cool\\20stuff'],
  ['c:\\5commas', 'c\\3a\\5c5commas'],
  ["here's_a_wild_&_/cr%zy/_address", 'here\\27s_a_wild_\\26_\\2fcr%zy\\2f_address'],
  ['\\3and\\2is\\5cool', '\\5c3and\\2is\\5c5cool'],
  ['somenick!user"&\'/:<>\\3address', 'somenick!user\\22\\26\\27\\2f\\3a\\3c\\3e\\5c3address'],
  ['treville@musketeers.lit', 'treville\\40musketeers.lit'],
];

// Each character of the XEP-0106 §4.2 table alone, between letters (a lone leading/trailing
// space is refused, see below).
const EACH_CHARACTER: readonly [string, string][] = [
  ['a b', 'a\\20b'],
  ['a"b', 'a\\22b'],
  ['a&b', 'a\\26b'],
  ["a'b", 'a\\27b'],
  ['a/b', 'a\\2fb'],
  ['a:b', 'a\\3ab'],
  ['a<b', 'a\\3cb'],
  ['a>b', 'a\\3eb'],
  ['a@b', 'a\\40b'],
  ['a\\5cb', 'a\\5c5cb'],
];

describe('XEP-0106 escapeNode / unescapeNode', () => {
  it.each([...XEP_EXAMPLES, ...EACH_CHARACTER])('escapes %j to %j', (raw, escaped) => {
    expect(escapeNode(raw)).toBe(escaped);
  });

  it.each([...XEP_EXAMPLES, ...EACH_CHARACTER])('unescapes back to %j from %j', (raw, escaped) => {
    expect(unescapeNode(escaped)).toBe(raw);
  });

  // XEP-0106 §5.2: partial sequences and sequences for other characters are left alone.
  it.each(['\\2plus\\2is\\4', 'foo\\bar', 'foob\\41r', 'a\\2Fb', 'a\\5Cb', 'trailing\\', 'x\\4', 'x\\'])(
    'leaves %j unchanged both ways',
    (s) => {
      expect(escapeNode(s)).toBe(s);
      expect(unescapeNode(s)).toBe(s);
    },
  );

  it.each(['tsch\u00fcss', '\u5f20\u4f1f', '\u{1F600}smile', 'f\u00fc@b\u00e4r'])('keeps non-ASCII %j as is', (s) => {
    expect(unescapeNode(escapeNode(s))).toBe(s);
    expect(escapeNode(s)).toBe(s.replace('@', '\\40'));
  });

  it.each([' alice', 'alice ', ' ', '  two  '])('refuses %j: \\20 may not start or end a localpart', (s) => {
    expect(() => escapeNode(s)).toThrow(BridgeError);
    try {
      escapeNode(s);
    } catch (err) {
      expect((err as BridgeError).code).toBe('JID_MALFORMED');
      expect((err as BridgeError).condition).toBe('jid-malformed');
    }
  });

  it('escapes the empty string to the empty string', () => {
    expect(escapeNode('')).toBe('');
  });

  it('unescapes a \\20 at the edges of a wire localpart (unescaping is total)', () => {
    expect(unescapeNode('\\20x\\20')).toBe(' x ');
  });

  it('round-trips any string without a space at either end', () => {
    const odd = fc.constantFrom(' ', '"', '&', "'", '/', ':', '<', '>', '@', '\\', '5', 'c', '2', 'f', '\u00fc', '\u{1F600}');
    const text = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 30 }),
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc.array(odd, { maxLength: 30 }).map((cs) => cs.join('')),
    );
    fc.assert(
      fc.property(text, (s) => {
        fc.pre(!s.startsWith(' ') && !s.endsWith(' '));
        expect(unescapeNode(escapeNode(s))).toBe(s);
      }),
      { numRuns: 1000 },
    );
  });

  it('produces no character RFC 7622 disallows in a localpart', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (s) => {
        fc.pre(!s.startsWith(' ') && !s.endsWith(' '));
        expect(escapeNode(s)).not.toMatch(/["&'/:<>@ ]/);
      }),
      { numRuns: 1000 },
    );
  });

  it('gives the canonical wire form: unescaping then escaping its output gives it back', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (s) => {
        fc.pre(!s.startsWith(' ') && !s.endsWith(' '));
        const wire = escapeNode(s);
        expect(escapeNode(unescapeNode(wire))).toBe(wire);
      }),
      { numRuns: 1000 },
    );
  });
});
