import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LocalpartError, prepareLocalpart } from '../../src/mapping/precis.js';

describe('prepareLocalpart: PRECIS UsernameCaseMapped (RFC 8265 §3.3, RFC 7622 §3.3)', () => {
  it.each([
    ['juliet', 'juliet', 'already prepared'],
    ['Juliet', 'juliet', 'case mapping to lower case (§3.3.2 step 2)'],
    ['ＪＵＬＩＥＴ', 'juliet', 'fullwidth letters width-mapped then lower-cased (§3.3.2 step 1)'],
    ['ｶ', 'カ', 'halfwidth katakana width-mapped'],
    ['Σίσυφος', 'σίσυφος', 'Greek lower-cased'],
    ['e\u0301', '\u00e9', 'NFC composes e + combining acute (§3.3.2 step 3)'],
    ['+15551234567', '+15551234567', 'a number keeps its +'],
    ['alice\\40corp.example', 'alice\\40corp.example', 'XEP-0106 escapes are ASCII and stay'],
    ['\u05d0\u05d1\u05d2', '\u05d0\u05d1\u05d2', 'Hebrew letters only: a right-to-left label'],
    ['\u0627\u0644\u06f1', '\u0627\u0644\u06f1', 'Arabic letters ending with a digit'],
    ['张伟', '张伟', 'Han'],
  ])('%s → %s (%s)', (input, expected) => {
    expect(prepareLocalpart(input)).toBe(expected);
  });

  it.each([
    ['', /empty/, 'empty'],
    ['a b', /U\+0020/, 'space'],
    ['a\u3000b', /U\+0020/, 'ideographic space width-maps to a space'],
    ['\u00a0x', /U\+00A0/, 'no-break space'],
    ['a\u0007', /U\+0007/, 'control character'],
    ['a\u200db', /U\+200D/, 'zero-width joiner (default ignorable)'],
    ['\ufb01x', /U\+FB01.*compatibility/, 'ﬁ ligature has a compatibility equivalent'],
    ['x\u00b2', /U\+00B2/, 'superscript two'],
    ['\u2163', /U\+2173|U\+2163/, 'roman numeral (Nl) is disallowed'],
    ['a\u2665', /U\+2665/, 'a symbol outside ASCII'],
    ['\ue000', /U\+E000/, 'private use'],
    ['abc\u05d0', /Bidi Rule/, 'left-to-right start with a Hebrew letter inside'],
    ['\u05d0abc', /Bidi Rule/, 'right-to-left start with Latin letters inside'],
    ['1\u05d0', /Bidi Rule/, 'a right-to-left label starting with a digit'],
    ['\u0627\u0661\u06f1', /Bidi Rule/, 'Arabic-Indic and European digits mixed'],
  ])('refuses %j: %s (%s)', (input, reason) => {
    expect(() => prepareLocalpart(input)).toThrow(LocalpartError);
    expect(() => prepareLocalpart(input)).toThrow(reason);
  });

  it('is idempotent: a prepared localpart prepares to itself', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 16 }), (s) => {
        let once: string;
        try {
          once = prepareLocalpart(s);
        } catch (err) {
          expect(err).toBeInstanceOf(LocalpartError);
          return;
        }
        expect(prepareLocalpart(once)).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });

  it('maps two spellings that differ only by case or width to one localpart', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9]{1,12}$/), (s) => {
        const fullwidthUpper = [...s.toUpperCase()].map((c) => String.fromCodePoint((c.codePointAt(0) ?? 0) + 0xfee0)).join('');
        expect(prepareLocalpart(fullwidthUpper)).toBe(prepareLocalpart(s));
      }),
    );
  });
});
