/**
 * RFC 5922 §7.1 (which names in a certificate are SIP domain identities) and §7.2 (how a
 * domain is compared with them), over Node's PeerCertificate shape.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { certificateIdentities, matchesDomain } from '../../src/adapters/sip/transport/tls.js';

type Cert = Parameters<typeof certificateIdentities>[0];

function cert(subjectaltname: string | undefined, cn?: string | string[]): Cert {
  return { ...(subjectaltname === undefined ? {} : { subjectaltname }), subject: cn === undefined ? {} : { CN: cn } } as Cert;
}

describe('certificateIdentities (RFC 5922 §7.1)', () => {
  it.each([
    ['sip: URI without a user part gives its host', cert('URI:sip:partner.example'), ['partner.example']],
    ['sip: URI host keeps no port or parameters', cert('URI:sip:partner.example:5061;transport=tls'), ['partner.example']],
    ['sip: URI with a user part is not an identity', cert('URI:sip:alice@partner.example, DNS:dns.example'), ['dns.example']],
    ['sips: URI is not an identity', cert('URI:sips:partner.example, DNS:dns.example'), ['dns.example']],
    ['other URI schemes are not identities', cert('URI:https://partner.example/, DNS:dns.example'), ['dns.example']],
    ['DNS names count only when no sip: URI does', cert('DNS:dns.example, URI:sip:partner.example'), ['partner.example']],
    ['several DNS names', cert('DNS:a.example, DNS:b.example'), ['a.example', 'b.example']],
    ['lower case, no trailing dot, no duplicates', cert('DNS:A.Example., DNS:a.example'), ['a.example']],
    ['IP addresses are no SIP domain', cert('IP Address:127.0.0.1, DNS:a.example'), ['a.example']],
    ['a SAN with only an IP: no identity, CN ignored', cert('IP Address:127.0.0.1', 'cn.example'), []],
    ['no SAN: the CN', cert(undefined, 'CN.Example'), ['cn.example']],
    ['no SAN: every CN', cert(undefined, ['a.example', 'b.example']), ['a.example', 'b.example']],
    ['SAN present: CN ignored', cert('DNS:dns.example', 'cn.example'), ['dns.example']],
    ['nothing at all', cert(undefined), []],
    ['a quoted value with a comma is one entry', cert('URI:"sip:a.example;x=1,2", DNS:b.example'), ['a.example']],
    ['a quoted DNS value after another entry', cert('DNS:a.example, DNS:"b,.example"'), ['a.example', 'b,.example']],
    ['a wildcard is kept literally', cert('DNS:*.example.com'), ['*.example.com']],
  ])('%s', (_what, given, expected) => {
    expect(certificateIdentities(given)).toEqual(expected);
  });

  it('property: never throws and every identity is lower case without a trailing dot', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.option(fc.string({ maxLength: 50 }), { nil: undefined }), (san, cn) => {
        const ids = certificateIdentities(cert(san, cn));
        for (const id of ids) {
          expect(id).toBe(id.toLowerCase());
          expect(id.endsWith('.')).toBe(false);
        }
      }),
      { seed: 5922, numRuns: 500 },
    );
  });
});

describe('matchesDomain (RFC 5922 §7.2)', () => {
  it.each([
    [['partner.example'], 'partner.example', true],
    [['partner.example'], 'PARTNER.Example', true],
    [['partner.example'], 'partner.example.', true],
    [['a.example', 'partner.example'], 'partner.example', true],
    [['partner.example'], 'sip.partner.example', false], // no suffix match
    [['sip.partner.example'], 'partner.example', false],
    [['*.partner.example'], 'sip.partner.example', false], // no wildcard
    [['*.partner.example'], '*.partner.example', true], // the asterisk is a literal
    [['.partner.example'], 'sip.partner.example', false],
    [[], 'partner.example', false],
    [['partner.example'], '', false],
    [[''], '', false],
  ])('%j vs %s → %s', (identities, domain, expected) => {
    expect(matchesDomain(identities, domain)).toBe(expected);
  });

  it('property: a domain matches itself in any case, and never a longer name ending in it', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 4 }), label, (labels, extra) => {
        const domain = labels.join('.');
        expect(matchesDomain([domain], domain.toUpperCase())).toBe(true);
        expect(matchesDomain([domain], `${extra}.${domain}`)).toBe(false);
        expect(matchesDomain([`${extra}.${domain}`], domain)).toBe(false);
      }),
      { seed: 5922, numRuns: 300 },
    );
  });
});
