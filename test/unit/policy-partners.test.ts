import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PartnerRegistry, partnerClaims, partnersSchema, type AuthorizeRequest } from '../../src/core/policy/partners.js';
import { createLogger } from '../../src/telemetry/logger.js';

const FP_ACME = Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0').slice(-2)).join(':').toUpperCase();
const FP_HUB = Array.from({ length: 32 }, () => 'AB').join(':');
const FP_OTHER = Array.from({ length: 32 }, () => '01').join(':');

/** A limited clearinghouse: the hub routes for three member domains, acme federates directly. */
const config = {
  mode: 'closed',
  partners: [
    {
      name: 'acme',
      side: 'sip',
      domains: ['Acme.Example', '*.acme.example'],
      trust: { certificateNames: ['sip.acme.example'], fingerprints: [FP_ACME.toLowerCase()] },
      directions: ['inbound', 'outbound'],
      features: ['im', 'presence'],
      nextHop: 'sips:sip.acme.example:5061',
    },
    {
      name: 'hub',
      model: 'clearinghouse',
      side: 'sip',
      domains: ['hub.example'],
      members: ['one.example', 'two.example', 'acme.example', '*.community.example'],
      trust: { fingerprints: [FP_HUB] },
      features: ['im'],
    },
    { name: 'inbound-only', side: 'xmpp', domains: ['jabber.example'], directions: ['inbound'] },
    { name: 'plain', side: 'sip', domains: ['plain.example', 'deep.acme.example'] },
  ],
};

const registry = () => new PartnerRegistry(partnersSchema.parse(config));

describe('partnersSchema', () => {
  it('fills defaults: closed, direct, both directions and features, limits', () => {
    const parsed = partnersSchema.parse({ partners: [{ name: 'p', side: 'sip', domains: ['p.example'] }] });
    expect(parsed.mode).toBe('closed');
    expect(parsed.partners[0]).toMatchObject({
      model: 'direct',
      trust: {},
      directions: ['inbound', 'outbound'],
      features: ['im', 'presence'],
      limits: { messagesPerSecond: 20, burst: 50, subscriptionsPerSecond: 5, maxSubscriptions: 1000, maxConnections: 10 },
    });
    expect(partnersSchema.parse({})).toMatchObject({ mode: 'closed', partners: [] });
  });

  it('normalises domains and fingerprints', () => {
    const parsed = partnersSchema.parse(config);
    expect(parsed.partners[0]?.domains).toEqual(['acme.example', '*.acme.example']);
    expect(parsed.partners[0]?.trust.fingerprints).toEqual([FP_ACME]);
  });

  const partner = { name: 'p', side: 'sip', domains: ['p.example'] };
  it.each([
    ['an empty domain list', { partners: [{ ...partner, domains: [] }] }, 'partners.0.domains'],
    ['a domain with a space', { partners: [{ ...partner, domains: ['p .example'] }] }, 'partners.0.domains.0'],
    ['a wildcard in the middle', { partners: [{ ...partner, domains: ['a.*.example'] }] }, 'partners.0.domains.0'],
    ['a bare wildcard', { partners: [{ ...partner, domains: ['*'] }] }, 'partners.0.domains.0'],
    ['a bad fingerprint', { partners: [{ ...partner, trust: { fingerprints: ['AB:CD'] } }] }, 'partners.0.trust.fingerprints.0'],
    ['a wildcard certificate name', { partners: [{ ...partner, trust: { certificateNames: ['*.p.example'] } }] }, 'partners.0.trust.certificateNames'],
    ['members on a direct partner', { partners: [{ ...partner, members: ['m.example'] }] }, 'partners.0.members'],
    ['a next hop for XMPP', { partners: [{ ...partner, side: 'xmpp', nextHop: 'sip:x.example' }] }, 'partners.0.nextHop'],
    ['a next hop that is not a SIP URI', { partners: [{ ...partner, nextHop: 'http://x.example' }] }, 'partners.0.nextHop'],
    ['no directions', { partners: [{ ...partner, directions: [] }] }, 'partners.0.directions'],
    ['an unknown feature', { partners: [{ ...partner, features: ['voice'] }] }, 'partners.0.features.0'],
    ['an unknown key', { partners: [{ ...partner, password: 'x' }] }, 'partners.0'],
    ['a bad mode', { mode: 'permissive' }, 'mode'],
    ['a zero rate', { partners: [{ ...partner, limits: { messagesPerSecond: 0 } }] }, 'partners.0.limits.messagesPerSecond'],
    ['two partners of one name', { partners: [partner, { ...partner, domains: ['q.example'] }] }, 'partners.1.name'],
    ['one domain in two direct partners', { partners: [partner, { ...partner, name: 'q', domains: ['P.example.'] }] }, 'partners.1.domains'],
    [
      'one member in two clearinghouses',
      {
        partners: [
          { ...partner, model: 'clearinghouse', members: ['m.example'] },
          { ...partner, name: 'q', domains: ['q.example'], model: 'clearinghouse', members: ['m.example'] },
        ],
      },
      'partners.1.domains',
    ],
    [
      'one fingerprint for two partners',
      { partners: [{ ...partner, trust: { fingerprints: [FP_OTHER] } }, { ...partner, name: 'q', domains: ['q.example'], trust: { fingerprints: [FP_OTHER] } }] },
      'partners.1.trust',
    ],
  ])('refuses %s, naming %s', (_what, input, path) => {
    const result = partnersSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(path);
  });

  it('accepts one domain in a direct partner and a clearinghouse (a limited clearinghouse)', () => {
    expect(partnersSchema.safeParse(config).success).toBe(true);
  });

  it('accepts one domain on both sides', () => {
    const both = { partners: [{ name: 'a', side: 'sip', domains: ['x.example'] }, { name: 'b', side: 'xmpp', domains: ['x.example'] }] };
    expect(partnersSchema.safeParse(both).success).toBe(true);
  });
});

describe('PartnerRegistry.partnerForDomain', () => {
  it.each([
    ['acme.example', 'sip', 'acme', 'a direct partner wins over a clearinghouse member'],
    ['ACME.example.', 'sip', 'acme', 'case and a trailing dot do not matter'],
    ['chat.acme.example', 'sip', 'acme', 'below a direct wildcard'],
    ['a.b.acme.example', 'sip', 'acme', 'a wildcard matches any depth'],
    ['deep.acme.example', 'sip', 'plain', 'an exact entry beats a wildcard'],
    ['one.example', 'sip', 'hub', 'a clearinghouse member'],
    ['hub.example', 'sip', 'hub', "a clearinghouse's own domain"],
    ['x.community.example', 'sip', 'hub', 'below a member wildcard'],
    ['community.example', 'sip', undefined, 'a wildcard does not match its own base'],
    ['evilacme.example', 'sip', undefined, 'a suffix that is not a label boundary'],
    ['acme.example.evil', 'sip', undefined, 'a longer name'],
    ['jabber.example', 'xmpp', 'inbound-only', 'an XMPP partner'],
    ['jabber.example', 'sip', undefined, 'the other side'],
    ['acme.example', 'xmpp', undefined, 'a SIP partner on the XMPP side'],
    ['unknown.example', 'sip', undefined, 'unknown'],
    ['', 'sip', undefined, 'empty'],
    ['*.acme.example', 'sip', undefined, 'a pattern is not a name'],
    ['.', 'sip', undefined, 'a dot'],
    [`${'a.'.repeat(200)}acme.example`, 'sip', undefined, 'longer than a domain can be'],
  ] as const)('%s on %s → %s (%s)', (domain, side, name, _why) => {
    expect(registry().partnerForDomain(domain, side)?.name).toBe(name);
  });

  it('never throws on any string', () => {
    const r = registry();
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.constantFrom('sip', 'xmpp' as const), (domain, side) => {
        const found = r.partnerForDomain(domain, side);
        if (found !== undefined) expect(partnerClaims(found, domain)).toBe(true);
      }),
      { numRuns: 500, seed: 6 },
    );
  });

  it('finds, for any name below a claimed domain, a partner that claims it', () => {
    const r = registry();
    const label = fc.stringMatching(/^[a-z0-9]{1,10}$/);
    fc.assert(
      fc.property(fc.array(label, { maxLength: 3 }), fc.constantFrom('acme.example', 'community.example', 'hub.example', 'nowhere.example'), (labels, base) => {
        const domain = [...labels, base].join('.');
        const found = r.partnerForDomain(domain, 'sip');
        const claimants = r.partners.filter((p) => p.side === 'sip' && partnerClaims(p, domain));
        expect(found === undefined).toBe(claimants.length === 0);
        if (found && claimants.some((p) => p.model === 'direct')) expect(found.model).toBe('direct');
      }),
      { numRuns: 300, seed: 6 },
    );
  });
});

describe('PartnerRegistry.authorize', () => {
  const base: AuthorizeRequest = { side: 'sip', domain: 'acme.example', direction: 'inbound', feature: 'im', certificateIdentities: ['sip.acme.example'] };

  it.each([
    ['the right certificate name', {}, { allowed: true, name: 'acme' }],
    ['the pinned fingerprint alone', { certificateIdentities: undefined, fingerprint: FP_ACME.toLowerCase() }, { allowed: true, name: 'acme' }],
    ['one right name among others', { certificateIdentities: ['other.example', 'SIP.ACME.EXAMPLE'] }, { allowed: true, name: 'acme' }],
    ['a wrong certificate name', { certificateIdentities: ['sip.evil.example'] }, { reason: 'untrusted-certificate', rule: 'partner acme trust' }],
    ['a wildcard certificate', { certificateIdentities: ['*.acme.example'] }, { reason: 'untrusted-certificate' }],
    ['a wrong fingerprint', { certificateIdentities: undefined, fingerprint: FP_OTHER }, { reason: 'untrusted-certificate' }],
    ["the clearinghouse's certificate for acme's domain", { certificateIdentities: undefined, fingerprint: FP_HUB }, { reason: 'untrusted-certificate' }],
    ['no certificate inbound', { certificateIdentities: undefined }, { reason: 'untrusted-certificate' }],
    ['no certificate outbound (checked once connected)', { certificateIdentities: undefined, direction: 'outbound' }, { allowed: true, name: 'acme' }],
    ['a member domain with the hub fingerprint', { domain: 'two.example', certificateIdentities: undefined, fingerprint: FP_HUB }, { allowed: true, name: 'hub' }],
    ['presence through a hub that carries IM only', { domain: 'two.example', certificateIdentities: undefined, fingerprint: FP_HUB, feature: 'presence' }, { reason: 'feature', rule: 'partner hub features' }],
    ['an unknown domain', { domain: 'evil.example' }, { reason: 'unknown-domain', rule: 'federation.mode=closed' }],
    ['outbound to an inbound-only partner', { side: 'xmpp', domain: 'jabber.example', direction: 'outbound', certificateIdentities: undefined }, { reason: 'direction', rule: 'partner inbound-only directions' }],
    ['inbound from an inbound-only partner', { side: 'xmpp', domain: 'jabber.example', certificateIdentities: undefined }, { allowed: true, name: 'inbound-only' }],
    ['a partner without trust, no certificate', { domain: 'plain.example', certificateIdentities: undefined }, { allowed: true, name: 'plain' }],
    ['a partner without trust, a certificate for its domain', { domain: 'plain.example', certificateIdentities: ['plain.example'] }, { allowed: true, name: 'plain' }],
    ['a partner without trust, a certificate for another domain', { domain: 'plain.example', certificateIdentities: ['acme.example'] }, { reason: 'untrusted-certificate' }],
  ] as const)('%s', (_what, change, expected) => {
    const decision = registry().authorize({ ...base, ...change });
    if ('allowed' in expected) {
      expect(decision.allowed).toBe(true);
      expect(decision.allowed && decision.partner.name).toBe(expected.name);
    } else {
      expect(decision).toMatchObject({ allowed: false, ...expected });
    }
  });

  it('checks the certificate before the direction and feature, so a spoofer is logged as one', () => {
    const decision = registry().authorize({ ...base, domain: 'two.example', feature: 'presence', certificateIdentities: ['sip.evil.example'] });
    expect(decision).toMatchObject({ allowed: false, reason: 'untrusted-certificate' });
  });

  it('in open mode admits an unknown domain as a partner of its own, with the open limits', () => {
    const open = new PartnerRegistry(partnersSchema.parse({ ...config, mode: 'open', openLimits: { messagesPerSecond: 1, burst: 2 } }));
    const decision = open.authorize({ side: 'xmpp', domain: 'Stranger.Example', direction: 'inbound', feature: 'presence' });
    expect(decision).toMatchObject({ allowed: true, rule: 'federation.mode=open', partner: { name: 'open:stranger.example', limits: { messagesPerSecond: 1, burst: 2 } } });
  });

  it('in open mode still refuses what is not a domain, and still applies known partners\' rules', () => {
    const open = new PartnerRegistry(partnersSchema.parse({ ...config, mode: 'open' }));
    expect(open.authorize({ side: 'sip', domain: 'not a domain', direction: 'inbound', feature: 'im' })).toMatchObject({ reason: 'unknown-domain', rule: 'federation.mode=open' });
    expect(open.authorize({ side: 'sip', domain: '*.x.example', direction: 'inbound', feature: 'im' })).toMatchObject({ reason: 'unknown-domain' });
    expect(open.authorize({ ...base, certificateIdentities: ['sip.evil.example'] })).toMatchObject({ reason: 'untrusted-certificate' });
  });

  it('warns at boot about open mode and about partners nobody authenticates', () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (l: string) => lines.push(l) } as unknown as NodeJS.WritableStream });
    new PartnerRegistry(partnersSchema.parse({ ...config, mode: 'open' }), { logger });
    const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string; partner?: string }).filter((l) => l.level === 40);
    expect(warnings.map((w) => w.partner ?? w.msg)).toEqual(['inbound-only', 'plain', 'federation mode is open: traffic from and to unknown domains is admitted']);
  });

  it('gives out partners nobody can change', () => {
    const partner = registry().partnerForDomain('acme.example', 'sip')!;
    expect(() => (partner.domains as string[]).push('evil.example')).toThrow(TypeError);
    expect(Object.isFrozen(partner.limits)).toBe(true);
  });
});

describe('PartnerRegistry.partnerForCertificate', () => {
  it.each([
    [{ certificateIdentities: ['sip.acme.example'] }, 'acme'],
    [{ fingerprint: FP_HUB }, 'hub'],
    [{ fingerprint: FP_ACME }, 'acme'],
    [{ certificateIdentities: ['plain.example'] }, 'plain'],
    [{ certificateIdentities: ['hub.example'] }, undefined],
    [{ certificateIdentities: ['evil.example'], fingerprint: FP_OTHER }, undefined],
    [{}, undefined],
  ])('%j → %s', (certificate, name) => {
    expect(registry().partnerForCertificate('sip', certificate)?.name).toBe(name);
  });
});

describe('partnerClaims', () => {
  it.each([
    ['hub', 'one.example', true],
    ['hub', 'hub.example', true],
    ['hub', 'y.community.example', true],
    ['hub', 'three.example', false],
    ['acme', 'x.acme.example', true],
    ['acme', 'one.example', false],
    ['acme', '*.acme.example', false],
  ])('%s claims %s: %s', (name, domain, claims) => {
    const partner = registry().partners.find((p) => p.name === name)!;
    expect(partnerClaims(partner, domain)).toBe(claims);
  });
});
