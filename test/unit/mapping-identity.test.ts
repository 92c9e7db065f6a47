import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BridgeError } from '../../src/core/errors.js';
import { StaticIdentityTable, isE164, parseSipAor } from '../../src/mapping/identity.js';

function refusal(f: () => unknown): BridgeError {
  try {
    f();
  } catch (err) {
    if (err instanceof BridgeError) return err;
    throw err;
  }
  throw new Error('expected a BridgeError, nothing was thrown');
}

describe('StaticIdentityTable lookups', () => {
  const table = new StaticIdentityTable([
    { e164: '+15551234567', sip: 'sip:alice@corp.example' },
    { e164: '+442071234567', sip: 'sips:Bob.Smith@UK.Corp.Example' },
    { e164: '+4930123', sip: 'sip:o%27malley@corp.example' },
  ]);

  it('finds the SIP address of a number', () => {
    expect(table.sipForE164('+15551234567')).toEqual({ side: 'sip', user: 'alice', domain: 'corp.example' });
  });

  it('lower-cases the host and percent-decodes the user of the configured address', () => {
    expect(table.sipForE164('+442071234567')).toEqual({ side: 'sip', user: 'Bob.Smith', domain: 'uk.corp.example' });
    expect(table.sipForE164('+4930123')).toEqual({ side: 'sip', user: "o'malley", domain: 'corp.example' });
  });

  it('answers undefined for a number it does not hold', () => {
    expect(table.sipForE164('+15550000000')).toBeUndefined();
  });

  it('finds the number of a SIP address, host case-insensitively', () => {
    expect(table.e164ForSip({ side: 'sip', user: 'Bob.Smith', domain: 'uk.CORP.example' })).toBe('+442071234567');
  });

  it('compares the user part case-sensitively (RFC 3261 §19.1.4)', () => {
    expect(table.e164ForSip({ side: 'sip', user: 'bob.smith', domain: 'uk.corp.example' })).toBeUndefined();
  });

  it('counts its entries', () => {
    expect(table.size).toBe(3);
  });
});

describe('StaticIdentityTable validation', () => {
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
    const err = refusal(() => new StaticIdentityTable(entries));
    expect(err.code).toBe('IDENTITY_INVALID');
    expect(err.message).toContain(where);
    expect(err.message).toContain(key);
  });

  it('refuses a number listed twice, naming both entries', () => {
    const err = refusal(
      () =>
        new StaticIdentityTable([
          { e164: '+15551234567', sip: 'sip:alice@corp.example' },
          { e164: '+15557654321', sip: 'sip:carol@corp.example' },
          { e164: '+15551234567', sip: 'sip:bob@corp.example' },
        ]),
    );
    expect(err.code).toBe('IDENTITY_INVALID');
    expect(err.message).toContain('mapping.identities[2]');
    expect(err.message).toContain('mapping.identities[0]');
    expect(err.message).toContain('+15551234567');
  });

  it('refuses one SIP address for two numbers, host compared case-insensitively', () => {
    const err = refusal(
      () =>
        new StaticIdentityTable([
          { e164: '+15551234567', sip: 'sip:alice@corp.example' },
          { e164: '+15557654321', sip: 'sip:alice@CORP.example' },
        ]),
    );
    expect(err.message).toContain('mapping.identities[1]');
    expect(err.message).toContain('mapping.identities[0]');
  });

  it('accepts one user name on two hosts and two user names differing only in case', () => {
    const table = new StaticIdentityTable([
      { e164: '+15551234567', sip: 'sip:alice@corp.example' },
      { e164: '+15551234568', sip: 'sip:alice@other.example' },
      { e164: '+15551234569', sip: 'sip:Alice@corp.example' },
    ]);
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
