import fc from 'fast-check';
import { getCountries, getCountryCallingCode } from 'libphonenumber-js';
import { describe, expect, it } from 'vitest';
import { E164Normalizer, isE164Form, normalizeE164, type E164Number } from '../../src/mapping/e164.js';
import { refusal } from '../support/refusal.js';

describe('normalizeE164 accepts every spelling of a number', () => {
  const cases: Array<[string, string | undefined, E164Number]> = [
    ['+15551234567', undefined, { e164: '+15551234567' }],
    ['+1 (555) 123-4567', undefined, { e164: '+15551234567' }],
    ['  +1.555.123.4567  ', undefined, { e164: '+15551234567' }],
    ['(555) 123-4567', 'US', { e164: '+15551234567' }],
    ['555-123-4567', 'US', { e164: '+15551234567' }],
    ['020 7946 0958', 'GB', { e164: '+442079460958' }],
    ['00 44 20 7946 0958', 'GB', { e164: '+442079460958' }],
    ['+44 20 7946 0958 ext. 123', undefined, { e164: '+442079460958', extension: '123' }],
    ['+44 20 7946 0958 x7', undefined, { e164: '+442079460958', extension: '7' }],
    ['030 123456', 'DE', { e164: '+4930123456' }],
    ['tel:+15551234567', undefined, { e164: '+15551234567' }],
    ['TEL:+1-555-123-4567', undefined, { e164: '+15551234567' }],
    ['tel:+1-555-123-4567;ext=12', undefined, { e164: '+15551234567', extension: '12' }],
    ['tel:+1(555)123.4567;ext=1-2', undefined, { e164: '+15551234567', extension: '12' }],
    ['tel:123-4567;phone-context=+1-555', undefined, { e164: '+15551234567' }],
    ['tel:+15551234567;isub=1411', undefined, { e164: '+15551234567' }],
    ['sip:+15551234567@trunk.example;user=phone', undefined, { e164: '+15551234567' }],
    ['sips:+1-555-123-4567;ext=9@trunk.example;user=phone', undefined, { e164: '+15551234567', extension: '9' }],
    ['sip:+442079460958@trunk.example', undefined, { e164: '+442079460958' }],
    ['sip:5551234567;phone-context=+1@trunk.example;user=phone', undefined, { e164: '+15551234567' }],
  ];
  it.each(cases)('%s (region %s)', (input, defaultRegion, expected) => {
    expect(normalizeE164(input, { defaultRegion })).toEqual(expected);
  });
});

describe('normalizeE164 refuses what is not a number, saying why', () => {
  const cases: Array<[string, string | undefined, RegExp]> = [
    ['', undefined, /not a telephone number/],
    ['alice', undefined, /only digits/],
    ['1-800-FLOWERS', 'US', /only digits/],
    ['call +15551234567', undefined, /only digits/],
    ['5551234567', undefined, /no country code and no default region/],
    ['+999 1234', undefined, /no country calling code that exists/],
    ['+1 555 123', undefined, /not a length its numbering plan allows/],
    ['+1555123456789012', undefined, /not a length|longer than E\.164/],
    ['tel:5551234', undefined, /without the phone-context/],
    ['tel:5551234;phone-context=corp.example', undefined, /local to the domain "corp\.example"/],
    ['tel:+1-555-abc', undefined, /not a global number/],
    ['tel:+15551234567;ext=abc', undefined, /extension that is not digits/],
    ['tel:+15551234567;ext=1;ext=2', undefined, /repeats the parameter ext/],
    ['sip:alice@corp.example', undefined, /no "\+" and the URI no ;user=phone/],
    ['sip:corp.example', undefined, /no user part/],
    ['sip:%ZZ@corp.example;user=phone', undefined, /broken %-escape/],
    ['+'.padEnd(300, '1'), undefined, /longer than 256 characters/],
  ];
  it.each(cases)('%s', (input, defaultRegion, expected) => {
    const e = refusal(() => normalizeE164(input, { defaultRegion }));
    expect(e.code).toBe('NUMBER_INVALID');
    expect(e.condition).toBe('jid-malformed');
    expect(e.message).toMatch(expected);
  });
});

/** Numbers libphonenumber deems possible: a real country code and a national number of a length its plan allows. */
const possibleNumber = fc
  .tuple(fc.constantFrom(...getCountries()), fc.stringMatching(/^[1-9][0-9]{3,13}$/))
  .map(([country, national]) => `+${getCountryCallingCode(country)}${national}`)
  .filter((n) => {
    try {
      return isE164Form(n) && normalizeE164(n).e164 === n;
    } catch {
      return false;
    }
  });

const separator = fc.constantFrom(' ', '-', '.', '(', ')', '');

describe('normalizeE164 properties', () => {
  it('is idempotent on whatever it accepts', () => {
    fc.assert(
      fc.property(fc.oneof(possibleNumber, fc.stringMatching(/^\+?[0-9 ()-]{1,20}$/)), fc.constantFrom(undefined, 'US', 'GB', 'DE'), (input, region) => {
        let once: string;
        try {
          once = normalizeE164(input, { defaultRegion: region }).e164;
        } catch {
          return;
        }
        expect(normalizeE164(once, { defaultRegion: region }).e164).toBe(once);
      }),
    );
  });

  it('leaves a possible number in + form as it is, whatever the default region', () => {
    fc.assert(
      fc.property(possibleNumber, fc.constantFrom(undefined, 'US', 'FR', 'JP'), (n, region) => {
        expect(normalizeE164(n, { defaultRegion: region })).toEqual({ e164: n });
      }),
    );
  });

  it('gives the same number whatever visual separators are put between the digits', () => {
    fc.assert(
      fc.property(possibleNumber, fc.array(separator, { minLength: 15, maxLength: 15 }), (n, seps) => {
        const spelled = `+${[...n.slice(1)].map((d, i) => `${d}${seps[i] ?? ''}`).join('')}`;
        expect(normalizeE164(spelled).e164).toBe(n);
        expect(normalizeE164(`tel:${spelled.replace(/ /g, '')}`).e164).toBe(n);
      }),
    );
  });
});

describe('E164Normalizer', () => {
  it('answers as normalizeE164 does, with its default region', () => {
    const numbers = new E164Normalizer({ defaultRegion: 'GB' });
    expect(numbers.normalize('020 7946 0958')).toEqual({ e164: '+442079460958' });
    expect(numbers.normalize('020 7946 0958')).toEqual({ e164: '+442079460958' });
  });

  it('refuses what normalizeE164 refuses, every time', () => {
    const numbers = new E164Normalizer();
    expect(() => numbers.normalize('alice')).toThrow(/not a telephone number/);
    expect(() => numbers.normalize('alice')).toThrow(/not a telephone number/);
  });

  it('agrees with normalizeE164 on any sequence of inputs, however small its memo', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('+15551234567', '(555) 123-4567', '+44 20 7946 0958', '555', 'x', '+1 555 123 4568'), { maxLength: 30 }), (inputs) => {
        const numbers = new E164Normalizer({ defaultRegion: 'US' }, 2);
        for (const input of inputs) {
          let expected: unknown;
          try {
            expected = normalizeE164(input, { defaultRegion: 'US' });
          } catch (err) {
            expected = (err as Error).message;
          }
          let actual: unknown;
          try {
            actual = numbers.normalize(input);
          } catch (err) {
            actual = (err as Error).message;
          }
          expect(actual).toEqual(expected);
        }
      }),
    );
  });
});
