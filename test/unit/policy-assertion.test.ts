import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/core/errors.js';
import { checkAssertedIdentity, spoofedIdentityError, type AssertedIdentity } from '../../src/core/policy/assertion.js';
import { PartnerRegistry, partnersSchema } from '../../src/core/policy/partners.js';

const registry = new PartnerRegistry(
  partnersSchema.parse({
    partners: [
      { name: 'acme', side: 'sip', domains: ['acme.example', '*.acme.example'] },
      { name: 'hub', model: 'clearinghouse', side: 'sip', domains: ['hub.example'], members: ['one.example', 'two.example'] },
    ],
  }),
);
const partner = (name: string) => ({ partner: registry.partners.find((p) => p.name === name)! });

describe('checkAssertedIdentity', () => {
  it.each([
    ['From its own domain', { fromDomain: 'acme.example', authenticated: partner('acme') }, undefined],
    ['From below its wildcard, in capitals', { fromDomain: 'Chat.ACME.example.', authenticated: partner('acme') }, undefined],
    ['a PAI of its own', { fromDomain: 'acme.example', assertedDomains: ['x.acme.example'], authenticated: partner('acme') }, undefined],
    ['a clearinghouse member', { fromDomain: 'one.example', assertedDomains: ['two.example'], authenticated: partner('hub') }, undefined],
    ["a clearinghouse's own domain", { fromDomain: 'hub.example', authenticated: partner('hub') }, undefined],
    ['local traffic no partner stands behind', { fromDomain: 'corp.example', authenticated: undefined, localDomains: ['Corp.Example'] }, undefined],
    ["another partner's domain in From", { fromDomain: 'one.example', authenticated: partner('acme') }, 'From domain one.example is not one partner acme may assert'],
    ["another partner's domain in PAI", { fromDomain: 'acme.example', assertedDomains: ['one.example'], authenticated: partner('acme') }, 'P-Asserted-Identity domain one.example is not one partner acme may assert'],
    ['a domain the hub does not route for', { fromDomain: 'three.example', authenticated: partner('hub') }, 'From domain three.example is not one partner hub may assert'],
    ['the base of a wildcard it does not own', { fromDomain: 'evilacme.example', authenticated: partner('acme') }, 'From domain evilacme.example is not one partner acme may assert'],
    ['a local domain from a partner', { fromDomain: 'corp.example', authenticated: partner('acme'), localDomains: ['corp.example'] }, 'From domain corp.example is not one partner acme may assert'],
    ['a partner domain with no partner behind it', { fromDomain: 'acme.example', authenticated: undefined, localDomains: ['corp.example'] }, 'From domain acme.example is not local and no partner authenticated it'],
    ['no local domains and no partner', { fromDomain: 'corp.example', authenticated: undefined }, 'From domain corp.example is not local and no partner authenticated it'],
    ['an empty From domain', { fromDomain: '', authenticated: partner('acme') }, 'From has no domain'],
    ['an empty PAI domain', { fromDomain: 'acme.example', assertedDomains: [' '], authenticated: partner('acme') }, 'P-Asserted-Identity has no domain'],
  ] as [string, AssertedIdentity, string | undefined][])('%s', (_what, identity, reason) => {
    const result = checkAssertedIdentity(identity);
    if (reason === undefined) expect(result).toEqual({ spoofed: false });
    else expect(result).toMatchObject({ spoofed: true, reason });
  });

  it('keeps control characters and length out of the reason, which may reach a SIP reason phrase', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: 'binary' }), (domain) => {
        const result = checkAssertedIdentity({ fromDomain: domain, authenticated: partner('acme') });
        if (result.spoofed) {
          expect(result.reason).toMatch(/^[\x20-\x7e]*$/);
          expect(result.reason.length).toBeLessThanOrEqual(140);
        }
      }),
      { numRuns: 500, seed: 6 },
    );
    const injected = checkAssertedIdentity({ fromDomain: 'evil.example\r\nVia: x', authenticated: partner('acme') });
    expect(injected).toMatchObject({ spoofed: true, reason: 'From domain evil.example??via:?x is not one partner acme may assert' });
  });
});

describe('spoofedIdentityError', () => {
  it('is a final 403 / forbidden', () => {
    const err = spoofedIdentityError('From domain one.example is not one partner acme may assert');
    expect(err).toBeInstanceOf(BridgeError);
    expect(err).toMatchObject({ code: 'SPOOFED_IDENTITY', condition: 'forbidden', sipStatus: 403, retryable: false });
    expect(err.message).toBe('spoofed identity refused: From domain one.example is not one partner acme may assert');
  });
});
