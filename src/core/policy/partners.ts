/**
 * The federation partner registry (issue 6 item 1): who the bridge federates with, how each
 * partner proves who it is, what it may do and how much of it.
 *
 * ```yaml
 * federation:
 *   mode: closed                 # unknown domains refused; `open` admits them (warned at boot)
 *   partners:
 *     - name: acme               # direct federation: one organisation, its own domains
 *       model: direct
 *       side: sip
 *       domains: [acme.example, "*.acme.example"]
 *       trust: { certificateNames: [sip.acme.example] }
 *       directions: [inbound, outbound]
 *       features: [im, presence]
 *       limits: { messagesPerSecond: 20, burst: 50 }
 *       nextHop: sips:sip.acme.example:5061
 *     - name: hub                # a clearinghouse routes for a community of member domains
 *       model: clearinghouse
 *       side: sip
 *       domains: [hub.example]
 *       members: [one.example, two.example, acme.example]
 *       trust: { fingerprints: ["AB:CD:…"] }
 * ```
 *
 * Domain matching is exact and case-insensitive; `*.example.com` matches every name below
 * example.com (any depth) but not example.com itself, and an exact entry beats a wildcard.
 * A limited clearinghouse is a clearinghouse and direct partners at once: when both claim a
 * domain, the direct partner wins (acme.example above goes to acme, not through the hub), since
 * a direct agreement is the narrower, deliberate one.
 */
import { z } from 'zod';
import type { Logger } from '../../telemetry/logger.js';
import type { Side } from '../events.js';

// RFC 1035 §2.3.1 labels (digits first allowed, RFC 1123 §2.1), so IPv4 literals pass too.
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const DOMAIN = new RegExp(`^(?:\\*\\.)?${LABEL}(?:\\.${LABEL})*$`);
const MAX_DOMAIN = 253;

const domainPattern = z
  .string()
  .transform(normalizeDomain)
  .refine((d) => d.length <= MAX_DOMAIN && DOMAIN.test(d), 'a domain such as example.com or *.example.com');

// The form Node's X509Certificate.fingerprint256 gives.
const fingerprint = z
  .string()
  .transform((s) => s.trim().toUpperCase())
  .refine((s) => /^(?:[0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(s), 'a SHA-256 fingerprint: 32 hex pairs separated by colons');

export const partnerLimitsSchema = z.strictObject({
  /** Messages per second, refilled continuously, from this partner. */
  messagesPerSecond: z.number().positive().default(20),
  /** Messages at once after a quiet spell. */
  burst: z.number().int().min(1).default(50),
  subscriptionsPerSecond: z.number().positive().default(5),
  /** Subscriptions held open for this partner's watchers, at most. */
  maxSubscriptions: z.number().int().min(0).default(1000),
  /** Concurrent connections from this partner, at most. */
  maxConnections: z.number().int().min(1).default(10),
});

const DEFAULT_LIMITS = partnerLimitsSchema.parse({});

export const partnerSchema = z
  .strictObject({
    /** Names the partner in logs, metrics and rate-limit keys. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ".", "_" or "-", at most 64'),
    model: z.enum(['direct', 'clearinghouse']).default('direct'),
    /** The side the partner's users live on. */
    side: z.enum(['sip', 'xmpp']),
    /** The partner's own domains. */
    domains: z.array(domainPattern).min(1),
    /** Clearinghouse only: the domains it routes for and may assert. */
    members: z.array(domainPattern).optional(),
    /**
     * How its TLS peer proves who it is: certificate names (RFC 5922 §7.1 identities) or
     * SHA-256 fingerprints (pinning). With neither, the partner is not authenticated by
     * certificate, which the registry warns about at boot. Pins hold both ways: a TLS connection
     * the bridge opens to the partner must show a pinned certificate too.
     */
    trust: z
      .strictObject({
        certificateNames: z.array(domainPattern).min(1).optional(),
        fingerprints: z.array(fingerprint).min(1).optional(),
      })
      .default({}),
    directions: z.array(z.enum(['inbound', 'outbound'])).min(1).default(['inbound', 'outbound']),
    features: z.array(z.enum(['im', 'presence'])).min(1).default(['im', 'presence']),
    limits: partnerLimitsSchema.default(DEFAULT_LIMITS),
    /** SIP only: where requests for its domains go, instead of RFC 3263 location. */
    nextHop: z.string().regex(/^sips?:[^\s]+$/i, 'a sip: or sips: URI').optional(),
  })
  .superRefine((p, ctx) => {
    if (p.members !== undefined && p.model !== 'clearinghouse') {
      ctx.addIssue({ code: 'custom', path: ['members'], message: 'only a clearinghouse has members' });
    }
    if (p.nextHop !== undefined && p.side !== 'sip') ctx.addIssue({ code: 'custom', path: ['nextHop'], message: 'only a SIP partner has a next hop' });
    if (p.trust.certificateNames?.some((n) => n.startsWith('*.'))) {
      // RFC 5922 §7.2: SIP domain identities compare whole; wildcard certificates do not match.
      ctx.addIssue({ code: 'custom', path: ['trust', 'certificateNames'], message: 'certificate names are matched exactly, without wildcards' });
    }
  });

export const partnersSchema = z
  .strictObject({
    mode: z.enum(['closed', 'open']).default('closed'),
    partners: z.array(partnerSchema).default([]),
    /** Open mode: limits for each unknown domain, which counts as a partner of its own. */
    openLimits: partnerLimitsSchema.default(DEFAULT_LIMITS),
  })
  .superRefine((config, ctx) => {
    const names = new Set<string>();
    // Two partners of one model claiming one domain on one side would make routing a guess.
    const claims = new Map<string, string>();
    const pins = new Map<string, string>();
    config.partners.forEach((p, i) => {
      if (names.has(p.name)) ctx.addIssue({ code: 'custom', path: ['partners', i, 'name'], message: `"${p.name}" names two partners` });
      names.add(p.name);
      for (const d of new Set([...p.domains, ...(p.members ?? [])])) {
        const key = `${p.side} ${p.model} ${d}`;
        const other = claims.get(key);
        if (other !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['partners', i, 'domains'], message: `${d} is claimed by both ${other} and ${p.name} (${p.model}, ${p.side})` });
        }
        claims.set(key, p.name);
      }
      for (const pin of [...(p.trust.fingerprints ?? []), ...(p.trust.certificateNames ?? [])]) {
        const key = `${p.side} ${pin}`;
        const other = pins.get(key);
        if (other !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['partners', i, 'trust'], message: `${pin} would authenticate both ${other} and ${p.name}` });
        }
        pins.set(key, p.name);
      }
    });
  });

export type PartnersConfig = z.output<typeof partnersSchema>;
export type Partner = z.output<typeof partnerSchema>;
export type PartnerLimits = z.output<typeof partnerLimitsSchema>;
export type Direction = Partner['directions'][number];
export type Feature = Partner['features'][number];

/** What a peer's TLS connection showed: names as RFC 5922 §7.1 finds them, and its fingerprint. */
export interface PeerCertificate {
  readonly certificateIdentities?: readonly string[];
  /** SHA-256, hex pairs with colons (Node's `fingerprint256`). */
  readonly fingerprint?: string;
}

export interface AuthorizeRequest extends PeerCertificate {
  readonly side: Side;
  /** The remote party's domain: the From domain inbound, the target's domain outbound. */
  readonly domain: string;
  /** `inbound`: from the partner into the bridge; `outbound`: from the bridge to the partner. */
  readonly direction: Direction;
  readonly feature: Feature;
}

export type DenyReason = 'unknown-domain' | 'direction' | 'feature' | 'untrusted-certificate';

export type PartnerDecision =
  | {
      readonly allowed: true;
      /** In open mode, for an unknown domain, a partner made up for it (`open:<domain>`, openLimits). */
      readonly partner: Partner;
      readonly rule: string;
    }
  | {
      readonly allowed: false;
      readonly reason: DenyReason;
      /** The config rule that refused it, for the audit log. */
      readonly rule: string;
      readonly partner?: Partner;
    };

type Model = Partner['model'];

export class PartnerRegistry {
  readonly mode: PartnersConfig['mode'];
  readonly partners: readonly Partner[];
  /** `<side> <model>` → domain pattern → partner (own domains and, for clearinghouses, members). */
  private readonly routes = new Map<string, Map<string, Partner>>();
  private readonly openLimits: PartnerLimits;

  /** @param config as parsed by partnersSchema (its checks are what keep lookups unambiguous). */
  constructor(config: PartnersConfig, options: { logger?: Logger } = {}) {
    this.mode = config.mode;
    this.partners = Object.freeze(config.partners.map((p) => deepFreeze(structuredClone(p))));
    this.openLimits = Object.freeze({ ...config.openLimits });
    for (const p of this.partners) {
      const table = this.table(p.side, p.model);
      for (const d of [...p.domains, ...(p.members ?? [])]) table.set(d, p);
      if (p.trust.certificateNames === undefined && p.trust.fingerprints === undefined) {
        options.logger?.warn({ partner: p.name }, 'federation partner is not authenticated by certificate: anyone can claim its domains');
      }
    }
    if (this.mode === 'open') options.logger?.warn('federation mode is open: traffic from and to unknown domains is admitted');
  }

  /**
   * The partner that routes for `domain` on `side`: a direct partner before a clearinghouse,
   * and within each an exact entry before the longest wildcard.
   */
  partnerForDomain(domain: string, side: Side): Partner | undefined {
    const d = normalizeDomain(domain);
    if (!isDomainName(d)) return undefined;
    for (const model of ['direct', 'clearinghouse'] as const) {
      const table = this.routes.get(`${side} ${model}`);
      if (table === undefined) continue;
      const exact = table.get(d);
      if (exact) return exact;
      for (let dot = d.indexOf('.'); dot !== -1; dot = d.indexOf('.', dot + 1)) {
        const wildcard = table.get(`*${d.slice(dot)}`);
        if (wildcard) return wildcard;
      }
    }
    return undefined;
  }

  /** The partner on `side` whose trust the certificate satisfies (direct partners first). */
  partnerForCertificate(side: Side, certificate: PeerCertificate): Partner | undefined {
    const candidates = this.partners.filter((p) => p.side === side);
    return (
      candidates.find((p) => p.model === 'direct' && certificateMatches(p, certificate)) ??
      candidates.find((p) => p.model === 'clearinghouse' && certificateMatches(p, certificate))
    );
  }

  /**
   * May this traffic cross? Checked in order: a partner for the domain, its certificate, the
   * direction, the feature. A presented certificate must match; inbound traffic for a partner
   * with trust configured must present one. Outbound is decided before the connection exists,
   * so its certificate is checked when given (the transport asks again once connected).
   */
  authorize(request: AuthorizeRequest): PartnerDecision {
    const partner = this.partnerForDomain(request.domain, request.side);
    if (partner === undefined) {
      if (this.mode === 'open' && isDomainName(normalizeDomain(request.domain))) {
        return { allowed: true, partner: this.openPartner(request), rule: 'federation.mode=open' };
      }
      return { allowed: false, reason: 'unknown-domain', rule: `federation.mode=${this.mode}` };
    }
    const presented = request.certificateIdentities !== undefined || request.fingerprint !== undefined;
    if (presented ? !certificateMatches(partner, request) : request.direction === 'inbound' && requiresCertificate(partner)) {
      return { allowed: false, reason: 'untrusted-certificate', rule: `partner ${partner.name} trust`, partner };
    }
    if (!partner.directions.includes(request.direction)) {
      return { allowed: false, reason: 'direction', rule: `partner ${partner.name} directions`, partner };
    }
    if (!partner.features.includes(request.feature)) {
      return { allowed: false, reason: 'feature', rule: `partner ${partner.name} features`, partner };
    }
    return { allowed: true, partner, rule: `partner ${partner.name}` };
  }

  private openPartner(request: AuthorizeRequest): Partner {
    const domain = normalizeDomain(request.domain);
    return {
      name: `open:${domain}`,
      model: 'direct',
      side: request.side,
      domains: [domain],
      trust: {},
      directions: ['inbound', 'outbound'],
      features: ['im', 'presence'],
      limits: this.openLimits,
    };
  }

  private table(side: Side, model: Model): Map<string, Partner> {
    const key = `${side} ${model}`;
    let table = this.routes.get(key);
    if (table === undefined) {
      table = new Map();
      this.routes.set(key, table);
    }
    return table;
  }
}

/**
 * Whether `domain` is one `partner` may speak for: its own domains and, for a clearinghouse,
 * its members (exact, or below a `*.` entry).
 */
export function partnerClaims(partner: Partner, domain: string): boolean {
  const d = normalizeDomain(domain);
  if (!isDomainName(d)) return false;
  return [...partner.domains, ...(partner.members ?? [])].some((pattern) => domainMatches(pattern, d));
}

export function normalizeDomain(domain: string): string {
  const d = domain.trim().toLowerCase();
  return d.endsWith('.') ? d.slice(0, -1) : d;
}

/** A name a party can have: a pattern's `*` is configuration, never an identity on the wire. */
function isDomainName(d: string): boolean {
  return d.length <= MAX_DOMAIN && !d.startsWith('*') && DOMAIN.test(d);
}

function domainMatches(pattern: string, domain: string): boolean {
  if (pattern.startsWith('*.')) return domain.length > pattern.length - 1 && domain.endsWith(pattern.slice(1));
  return pattern === domain;
}

function requiresCertificate(partner: Partner): boolean {
  return partner.trust.certificateNames !== undefined || partner.trust.fingerprints !== undefined;
}

/**
 * A pinned fingerprint, or a certificate name: the configured ones, or else (nothing pinned)
 * the partner's own exact domains. RFC 5922 §7.2: names compare whole, so a wildcard
 * certificate identity never matches.
 */
function certificateMatches(partner: Partner, certificate: PeerCertificate): boolean {
  const { certificateNames, fingerprints } = partner.trust;
  if (certificate.fingerprint !== undefined && fingerprints?.includes(certificate.fingerprint.trim().toUpperCase())) return true;
  const names = certificateNames ?? (fingerprints === undefined ? partner.domains.filter((d) => !d.startsWith('*.')) : []);
  return (certificate.certificateIdentities ?? []).some((id) => !id.includes('*') && names.includes(normalizeDomain(id)));
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
