import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isE164, parseSipAor } from '../../src/mapping/identity.js';
import { IdentityTable } from '../../src/mapping/identity/static.js';
import { refusal } from '../support/refusal.js';

const at = (i: number) => `mapping.identities[${i}]`;

describe('IdentityTable (static source) lookups', () => {
  const table = new IdentityTable(
    [
      { e164: '+15551234567', sip: 'sip:alice@corp.example' },
      { e164: '+442071234567', sip: 'sips:Bob.Smith@UK.Corp.Example' },
      { e164: '+4930123456', sip: "sip:o%27malley@corp.example" },
    ],
    at,
  );

  it('finds the person a number belongs to', () => {
    expect(table.byNumber('+15551234567')).toEqual({ e164: '+15551234567', sip: 'sip:alice@corp.example' });
  });

  it('answers undefined for a number it does not hold', () => {
    expect(table.byNumber('+15550000000')).toBeUndefined();
  });

  it('finds the number of a SIP address, host case-insensitively and percent-decoded', () => {
    expect(table.bySipAddress('sip:Bob.Smith@uk.CORP.example')?.e164).toBe('+442071234567');
    expect(table.bySipAddress("sip:o'malley@corp.example")?.e164).toBe('+4930123456');
  });

  it('compares the user part case-sensitively (RFC 3261 §19.1.4)', () => {
    expect(table.bySipAddress('sip:bob.smith@uk.corp.example')).toBeUndefined();
  });

  it('counts its entries', () => {
    expect(table.size).toBe(3);
  });
});

describe('IdentityTable (static source) validation', () => {
  it.each([
    [[{ e164: '15551234567', sip: 'sip:a@b.example' }], 'mapping.identities[0]', 'e164'],
    [[{ e164: '+05551234567', sip: 'sip:a@b.example' }], 'mapping.identities[0]', 'e164'],
    [[{ e164: '+1234567890123456', sip: 'sip:a@b.example' }], 'mapping.identities[0]', 'e164'],
    [[{ e164: '+1', sip: 'sip:a@b.example' }], 'mapping.identities[0]', 'e164'],
    [[{ e164: '+15551234567', sip: 'tel:+15551234567' }], 'mapping.identities[0]', 'sip'],
    [[{ e164: '+15551234567', sip: 'sip:corp.example' }], 'mapping.identities[0]', 'sip'],
    [[{ e164: '+15551234567', sip: 'sip:a@b.example;transport=tcp' }], 'mapping.identities[0]', 'sip'],
    [[{ e164: '+15551234567', sip: 'sip:a@b.example:5060' }], 'mapping.identities[0]', 'sip'],
    [[{ e164: '+15551234567', sip: 'sip:a%ZZ@b.example' }], 'mapping.identities[0]', 'sip'],
    [[{ e164: '+15551234567', sip: 'sip:a@bad_host' }], 'mapping.identities[0]', 'sip'],
  ])('refuses %j naming %s and its %s', (entries, where, key) => {
    const err = refusal(() => new IdentityTable(entries, at));
    expect(err.code).toBe('IDENTITY_INVALID');
    expect(err.message).toContain(where);
    expect(err.message).toContain(key);
  });

  it('refuses a number listed twice, in any spelling, naming the row', () => {
    const err = refusal(
      () =>
        new IdentityTable(
          [
            { e164: '+15551234567', sip: 'sip:alice@corp.example' },
            { e164: '+15557654321', sip: 'sip:carol@corp.example' },
            { e164: '+1 555 123 4567', sip: 'sip:bob@corp.example' },
          ],
          at,
        ),
    );
    expect(err.message).toContain('mapping.identities[2]');
    expect(err.message).toContain('+15551234567');
  });

  it('refuses one SIP address under two numbers (the reverse lookup would be a guess), host case-insensitively', () => {
    const err = refusal(
      () =>
        new IdentityTable(
          [
            { e164: '+15551234567', sip: 'sip:alice@corp.example' },
            { e164: '+15557654321', sip: 'sip:alice@CORP.example' },
          ],
          at,
        ),
    );
    expect(err.message).toContain('mapping.identities[1]');
  });

  it('accepts one user name on two hosts and two user names differing only in case', () => {
    const table = new IdentityTable(
      [
        { e164: '+15551234567', sip: 'sip:alice@corp.example' },
        { e164: '+15551234568', sip: 'sip:alice@other.example' },
        { e164: '+15551234569', sip: 'sip:Alice@corp.example' },
      ],
      at,
    );
    expect(table.size).toBe(3);
  });
});

describe('E.164 and SIP address syntax', () => {
  it('accepts every + number of 2 to 15 digits that does not start with 0', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.stringMatching(/^[0-9]{1,14}$/), (first, rest) => {
        expect(isE164(`+${first}${rest}`)).toBe(true);
      }),
    );
  });

  it('refuses numbers without +, with a leading 0, or longer than 15 digits', () => {
    expect(isE164('15551234567')).toBe(false);
    expect(isE164('+0551234567')).toBe(false);
    expect(isE164('+1234567890123456')).toBe(false);
  });

  it('parses sips: like sip: (an Address has no scheme)', () => {
    expect(parseSipAor('sips:alice@corp.example')).toEqual(parseSipAor('sip:alice@corp.example'));
  });
});
