/**
 * Federation policy in the router (issue 6 items 1, 5, 6): who may send through the bridge and
 * to whom, by partner registry, per-partner rate limits, and the operator's own number ranges.
 *
 * - A sender or target in one of our own domains (`mapping.xmppDomains`, `mapping.sipDomains`)
 *   needs no partner. Any other domain must be a partner on that side that allows the direction
 *   (inbound for senders, outbound for targets) and the feature (IM for messages, presence for
 *   subscriptions, presence and probes); in `open` mode an unknown domain counts as a partner of
 *   its own, loudly (PartnerRegistry warns at start).
 * - Each partner's inbound messages and subscription requests draw on its own token bucket, so a
 *   flooding partner is refused (503 / resource-constraint, with Retry-After) without slowing the
 *   others.
 * - Withdrawals (unsubscribe, deny, cancel) and failures always pass: refusing them would only
 *   keep presence flowing that someone wanted stopped.
 *
 * The certificate checks (mutual TLS, identity assertion against the authenticated partner) sit
 * in the SIP transport and adapter, where the peer certificate is known. So do the two caps on
 * what a partner holds at once (issue 6 item 5), which this class only looks up: connections
 * (`connectionQuota`, counted by the SIP TLS listener) and subscriptions (`watcherPartner`,
 * counted in the subscription store by the SIP presence roles, which alone know whether a
 * request starts a subscription or keeps one going).
 */
import { BridgeError } from '../errors.js';
import type { Address, CanonicalEvent, Side } from '../events.js';
import { checkAssertedIdentity, spoofedIdentityError } from './assertion.js';
import { normalizeDomain, type Partner, type PartnerRegistry, type PeerCertificate } from './partners.js';
import { MemoryRateLimiter, rateLimitedError, type RateLimiter } from './rate-limit.js';

export interface FederationPolicyOptions {
  readonly registry: PartnerRegistry;
  /** Domains of the operator's own users, per side. */
  readonly local: { readonly sip: readonly string[]; readonly xmpp: readonly string[] };
  /**
   * Makes the token bucket store for one partner and kind from its rate and burst; default in
   * memory (one process). Scaled out, the app gives Redis-backed ones, shared by every router.
   */
  readonly limiterFor?: (bucket: { ratePerSecond: number; burst: number; maxKeys: number }, kind: 'message' | 'subscription') => RateLimiter;
}

/** The partner a remote watcher belongs to, and how many subscriptions it may hold at once. */
export interface WatcherPartner {
  readonly name: string;
  readonly maxSubscriptions: number;
}

/** How many connections a TLS peer may hold open at once, counted under `key` (its partner). */
export interface ConnectionQuota {
  readonly key: string;
  readonly limit: number;
  /** The config rule, for the audit line of a refusal. */
  readonly rule: string;
}

/** Partners made up for unknown domains in open mode share one bounded limiter per kind. */
const MAX_OPEN_PARTNERS = 10_000;

export class FederationPolicy {
  private readonly local: { readonly sip: ReadonlySet<string>; readonly xmpp: ReadonlySet<string> };
  private readonly limiters = new Map<string, RateLimiter>();

  constructor(private readonly options: FederationPolicyOptions) {
    this.local = { sip: new Set(options.local.sip.map(normalizeDomain)), xmpp: new Set(options.local.xmpp.map(normalizeDomain)) };
  }

  /**
   * Checks an inbound event (`inbound`, as it arrived) and where it is going (`routed.to`).
   * @throws BridgeError: `FEDERATION_DENIED` (forbidden / 403), `FEDERATION_UNKNOWN_TARGET`
   *   (remote-server-not-found / 404), or a RateLimitedError (resource-constraint / 503).
   */
  async check(inbound: CanonicalEvent, routed: { readonly to: Address }): Promise<void> {
    const feature = featureOf(inbound);
    if (feature === undefined) return;
    const sender = inbound.from;
    const certificate = inbound.peer === undefined ? {} : { certificateIdentities: inbound.peer.certificateIdentities };
    if (this.isLocal(sender)) {
      // Issue 6 item 3: a partner's authenticated connection may not speak for our own users.
      const partner = inbound.peer === undefined ? undefined : this.options.registry.partnerForCertificate(sender.side, certificate);
      if (partner !== undefined) throw spoofedIdentityError(`partner ${partner.name} sent as ${sender.domain}, one of our own domains`);
    } else {
      const decision = this.options.registry.authorize({ side: sender.side, domain: sender.domain, direction: 'inbound', feature, ...certificate });
      if (!decision.allowed) {
        if (decision.reason === 'untrusted-certificate') throw spoofedIdentityError(`${sender.domain} is not proved by the peer's certificate`);
        throw new BridgeError('FEDERATION_DENIED', `${sender.domain} may not send ${feature} here (${decision.reason}, rule ${decision.rule})`, {
          condition: 'forbidden',
          sipStatus: 403,
          retryable: false,
        });
      }
      if (inbound.assertedDomains !== undefined && inbound.assertedDomains.length > 0) {
        const assertion = checkAssertedIdentity({ fromDomain: sender.domain, assertedDomains: inbound.assertedDomains, authenticated: { partner: decision.partner } });
        if (assertion.spoofed) throw spoofedIdentityError(assertion.reason);
      }
      await this.spend(decision.partner, inbound);
    }
    const target = routed.to;
    if (!this.isLocal(target)) {
      const decision = this.options.registry.authorize({ side: target.side, domain: target.domain, direction: 'outbound', feature });
      if (!decision.allowed) {
        const unknown = decision.reason === 'unknown-domain';
        throw new BridgeError(
          unknown ? 'FEDERATION_UNKNOWN_TARGET' : 'FEDERATION_DENIED',
          `${target.domain} is ${unknown ? 'not a federation partner' : `not open to ${feature} (${decision.reason})`}`,
          unknown ? { condition: 'remote-server-not-found', sipStatus: 404, retryable: false } : { condition: 'forbidden', sipStatus: 403, retryable: false },
        );
      }
    }
  }

  /**
   * The partner whose users live at `domain` on `side`, with its subscription cap: undefined for
   * the operator's own domains and, in closed mode, for unknown ones (their requests are refused
   * anyway). In open mode an unknown domain is a partner of its own (`open:<domain>`).
   */
  watcherPartner(side: Side, domain: string): WatcherPartner | undefined {
    if (this.local[side].has(normalizeDomain(domain))) return undefined;
    // authorize() finds the partner the way check() does; a refusal for another reason (a
    // direction, a feature, no certificate) still names it.
    const partner = this.options.registry.authorize({ side, domain, direction: 'inbound', feature: 'presence' }).partner;
    return partner === undefined ? undefined : { name: partner.name, maxSubscriptions: partner.limits.maxSubscriptions };
  }

  /**
   * The SIP partner a TLS peer's certificate authenticates (RFC 5922 §7.1 identities, or a
   * pinned SHA-256 fingerprint), with its connection cap; undefined for any other peer.
   */
  connectionQuota(peer: PeerCertificate): ConnectionQuota | undefined {
    const partner = this.options.registry.partnerForCertificate('sip', peer);
    if (partner === undefined) return undefined;
    return { key: partner.name, limit: partner.limits.maxConnections, rule: `partner ${partner.name} limits.maxConnections` };
  }

  /** The two caps as SipAdapter options (`transport.admitConnection`, `partnerOf`). */
  sipAdapterCaps(): {
    transport: { admitConnection: (peer: PeerCertificate) => ConnectionQuota | undefined };
    partnerOf: (side: Side, domain: string) => WatcherPartner | undefined;
  } {
    return { transport: { admitConnection: (peer) => this.connectionQuota(peer) }, partnerOf: (side, domain) => this.watcherPartner(side, domain) };
  }

  /** Closes the bucket stores (Redis connections). */
  async close(): Promise<void> {
    await Promise.all([...this.limiters.values()].map((l) => l.close()));
    this.limiters.clear();
  }

  private isLocal(a: Address): boolean {
    return this.local[a.side].has(normalizeDomain(a.domain));
  }

  /** A message or a subscription request takes a token from its partner's bucket. */
  private async spend(partner: Partner, event: CanonicalEvent): Promise<void> {
    const kind = event.kind === 'message' ? 'message' : event.kind === 'subscription' && event.action === 'subscribe' ? 'subscription' : undefined;
    if (kind === undefined) return;
    const decision = await this.limiter(partner, kind).take(partner.name);
    if (!decision.allowed) throw rateLimitedError(decision.retryAfterMs, `${kind}s from partner ${partner.name}`, partner.name);
  }

  private limiter(partner: Partner, kind: 'message' | 'subscription'): RateLimiter {
    const open = partner.name.startsWith('open:');
    const key = `${kind} ${open ? 'open' : partner.name}`;
    let limiter = this.limiters.get(key);
    if (limiter === undefined) {
      const { limits } = partner;
      const bucket = {
        ratePerSecond: kind === 'message' ? limits.messagesPerSecond : limits.subscriptionsPerSecond,
        burst: kind === 'message' ? limits.burst : Math.max(1, Math.ceil(limits.subscriptionsPerSecond)),
        maxKeys: open ? MAX_OPEN_PARTNERS : 1,
      };
      limiter = this.options.limiterFor?.(bucket, kind) ?? new MemoryRateLimiter(bucket);
      this.limiters.set(key, limiter);
    }
    return limiter;
  }
}

function featureOf(event: CanonicalEvent): 'im' | 'presence' | undefined {
  switch (event.kind) {
    case 'message':
      return 'im';
    case 'presence':
    case 'probe':
      return 'presence';
    case 'subscription':
      return event.action === 'subscribe' || event.action === 'approve' ? 'presence' : undefined;
    default:
      return undefined;
  }
}
