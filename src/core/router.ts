/**
 * The router: identity mapping (src/mapping) for every inbound event, then the queue towards
 * the other side. Failures are already addressed in their receiver's terms and go straight back.
 */
import type { AddressTranslator } from '../mapping/address.js';
import { E164Normalizer } from '../mapping/e164.js';
import type { IdentitySource } from '../mapping/identity-source.js';
import { parseSipAor } from '../mapping/identity.js';
import type { Logger } from '../telemetry/logger.js';
import { directionOf, type BridgeMetrics } from '../telemetry/metrics.js';
import type { BridgeTracing } from '../telemetry/tracing.js';
import { AuditLog, type Denial } from './audit.js';
import { MemoryDedupeClaims, type DedupeClaims } from './dedupe.js';
import { BridgeError } from './errors.js';
import { formatAddress, type Address, type CanonicalEvent, type Side } from './events.js';
import type { FederationPolicy } from './policy/federation.js';
import type { NumberRanges } from './policy/number-ranges.js';
import { RateLimitedError } from './policy/rate-limit.js';
import { presentityOf, watcherOf, type PresenceVisibility } from './policy/presence-visibility.js';
import type { Queue } from './queue/queue.js';

/** The queue each side's adapter consumes. */
export const QUEUE_FOR: Readonly<Record<Side, string>> = { sip: 'to-sip', xmpp: 'to-xmpp' };

/** Where edge processes put what they receive when routers run elsewhere (roles, issue 5). */
export const INBOUND_QUEUE = 'inbound';

/**
 * Queues an event (already in its receiver's terms) for the adapter of its `to` side: the job
 * id is the event id, and one conversation is one lane, so its events arrive in order
 * (STYLE.md habit 10).
 */
export async function enqueueForDelivery(queue: Queue, event: CanonicalEvent): Promise<void> {
  await queue.enqueue(QUEUE_FOR[event.to.side], event, { jobId: event.id, orderingKey: conversationKey(event.from, event.to) });
}

export interface RouterOptions {
  translator: AddressTranslator;
  /** Resolves numbers XMPP users write to (`+15551234567@<component>`): the identity chain. */
  identities: IdentitySource;
  /** Region for numbers written without a country code (config `mapping.defaultRegion`). */
  defaultRegion?: string;
  queue: Queue;
  logger: Logger;
  /** Whose presence crosses (config `presence.visible`); without it no presence crosses. */
  visibility?: PresenceVisibility;
  /** Partners, directions, features and rate limits (config `federation`); without it every domain is admitted. */
  federation?: FederationPolicy;
  /** The operator's own numbers (config `mapping.ownNumbers`); numbers outside never resolve. */
  ownNumbers?: NumberRanges;
  /** Counters of routed, refused and withheld events (config `telemetry.metrics`). */
  metrics?: BridgeMetrics;
  /** A span per routed event, its context carried in `event.trace` across the queue. */
  tracing?: BridgeTracing;
  now?: () => number;
  /** Shared dedupe claims (Redis, several routers); default in memory. */
  dedupe?: DedupeClaims;
  /** How long a dedupe key is remembered; SIP's longest transaction (64·T1) is well inside it. */
  dedupeTtlMs?: number;
  dedupeMaxEntries?: number;
  /** Where denials are written; one of its own on `logger` unless given (one per process is best). */
  audit?: AuditLog;
}

/** The closed set of policy-denial labels (metric `sxb_policy_denials_total`, docs/metrics.md). */
const DENIAL_RULES: Readonly<Record<string, string>> = {
  FEDERATION_DENIED: 'federation-denied',
  FEDERATION_UNKNOWN_TARGET: 'unknown-domain',
  SPOOFED_IDENTITY: 'spoofed-identity',
  NUMBER_NOT_OURS: 'number-not-ours',
};

/** How long a dedupe key is remembered by default. */
export const DEDUPE_TTL_MS = 10 * 60_000;

export class Router {
  private readonly now: () => number;
  private readonly seen: DedupeClaims;
  private readonly numbers: E164Normalizer;
  private readonly audit: AuditLog;

  constructor(private readonly options: RouterOptions) {
    this.now = options.now ?? Date.now;
    this.audit = options.audit ?? new AuditLog(options.logger, { now: this.now, onDeny: countDenial(options.metrics) });
    this.numbers = new E164Normalizer(options.defaultRegion === undefined ? {} : { defaultRegion: options.defaultRegion });
    this.seen = options.dedupe ?? new MemoryDedupeClaims({ ttlMs: options.dedupeTtlMs ?? DEDUPE_TTL_MS, maxEntries: options.dedupeMaxEntries ?? 100_000 }, this.now);
  }

  /**
   * Routes one inbound event. Resolves once it is queued; rejects with a BridgeError when it
   * cannot be mapped (the adapter answers the sender at once).
   */
  async route(event: CanonicalEvent): Promise<void> {
    if (event.kind === 'failure') {
      await this.enqueue(event);
      return;
    }
    if (event.kind !== 'message' && this.looped(event)) {
      this.options.logger.warn({ event: event.id, kind: event.kind, from: formatAddress(event.from) }, 'presence from one of our own addresses dropped (loop)');
      return;
    }
    // Claimed before the identity lookup awaits, so a copy arriving meanwhile (a retransmission
    // on a new transaction) is absorbed too; released if this one is not queued after all.
    if (!(await this.seen.claim(event.dedupeKey))) {
      this.options.logger.info({ event: event.id, dedupeKey: event.dedupeKey }, 'repeated message absorbed');
      return;
    }
    const { metrics, tracing } = this.options;
    const direction = directionOf(event.origin);
    const span = tracing?.startSpan(`route ${event.kind}`, { 'bridge.event': event.id, 'bridge.origin': event.origin, 'bridge.origin_ref': event.originRef }, event.trace, 'internal');
    let routed: CanonicalEvent;
    let partner: string | undefined;
    try {
      const carrier = span?.carrier();
      const mapped = await this.translate(event);
      partner = this.partnerOf(event, mapped);
      routed = {
        ...event,
        ...mapped,
        source: { from: event.from, to: event.to },
        ...(carrier === undefined ? {} : { trace: carrier }),
        ...(partner === undefined ? {} : { partner }),
      };
      if (tracing?.enabled === true) span?.span.setAttributes(partiesOf(event, routed));
      await this.options.federation?.check(event, routed);
      if (!this.visible(event, routed)) {
        metrics?.event(direction, event.kind, 'withheld', partner);
        if (tracing?.enabled === true) span?.span.setAttributes({ 'bridge.policy.decision': 'withheld', 'bridge.policy.rule': 'presence-not-visible' });
        span?.end();
        return;
      }
      await this.enqueue(routed);
    } catch (err) {
      await this.seen.release(event.dedupeKey);
      metrics?.event(direction, event.kind, 'refused', partner);
      if (err instanceof BridgeError) {
        if (err instanceof RateLimitedError) metrics?.rateLimited(err.partner ?? 'unknown');
        const rule = err instanceof RateLimitedError ? 'rate-limited' : DENIAL_RULES[err.code];
        if (tracing?.enabled === true) span?.span.setAttributes(refusalOf(err, rule));
        if (rule !== undefined) {
          // DESIGN.md security posture: a refusal by policy (a spoofing attempt above all) is an audit event.
          this.audit.deny({
            rule,
            who: uriOf(event.from),
            what: event.kind,
            reason: err.message,
            event: event.id,
            details: { to: uriOf(event.to), ...(event.peer === undefined ? {} : { peer: event.peer.certificateIdentities }) },
          });
        }
      }
      span?.end(err);
      throw err;
    }
    metrics?.event(direction, event.kind, 'routed', partner);
    span?.span.setAttribute('bridge.policy.decision', 'allowed');
    span?.end();
    this.options.logger.info(
      { event: event.id, kind: event.kind, from: formatAddress(routed.from), to: formatAddress(routed.to) },
      'event routed',
    );
  }

  /** The federation partner at whichever end is not ours (the sender's first), when one is configured. */
  private partnerOf(inbound: CanonicalEvent, routed: { to: Address }): string | undefined {
    const federation = this.options.federation;
    return (federation?.watcherPartner(inbound.from.side, inbound.from.domain) ?? federation?.watcherPartner(routed.to.side, routed.to.domain))?.name;
  }

  /**
   * Presence that names one of the bridge's own addresses as its source went out through us and
   * came back (a SIP proxy routing our NOTIFY's subject back, a server reflecting presence):
   * passing it on again would circle for ever (issue 4 item 6).
   */
  private looped(event: CanonicalEvent): boolean {
    const t = this.options.translator;
    return event.origin === 'xmpp' ? t.isComponentDomain(event.from.domain) : t.servesXmppDomain(event.from.domain);
  }

  /** The visibility policy for events that disclose presence; withheld ones are logged and dropped. */
  private visible(inbound: CanonicalEvent, routed: { from: Address; to: Address }): boolean {
    const presentity = presentityOf(inbound, routed);
    if (presentity === undefined) return true;
    const watcher = watcherOf(inbound, routed);
    const decision = this.options.visibility?.decide(presentity, watcher) ?? { allowed: false, rule: 'default-deny' };
    if (!decision.allowed) {
      this.audit.deny({
        rule: 'presence-not-visible',
        who: watcher === undefined ? 'anyone' : uriOf(watcher),
        what: inbound.kind,
        reason: `presence of ${formatAddress(presentity)} withheld by ${decision.rule}`,
        event: inbound.id,
      });
    }
    return decision.allowed;
  }

  private async translate(event: CanonicalEvent): Promise<{ from: Address; to: Address }> {
    const t = this.options.translator;
    if (event.origin !== 'xmpp') {
      const to = event.to.telephone ? await this.numberToXmpp(event.to.user) : t.sipRecipientToXmpp(event.to);
      return { from: this.sipSender(event.from), to };
    }
    const sender = t.xmppSenderToSip(event.from);
    // Presence keeps the device it came from: the SIP side shows one PIDF tuple per resource.
    const from = event.kind === 'presence' && event.from.resource !== undefined ? { ...sender, resource: event.from.resource } : sender;
    const recipient = t.xmppRecipient(event.to);
    return { from, to: recipient.kind === 'sip' ? recipient.address : await this.resolveNumber(recipient.number, this.options.identities) };
  }

  /** The SIP address of the person a number belongs to, by the identity chain. */
  private async resolveNumber(number: string, identities: IdentitySource): Promise<Address> {
    const { e164 } = this.numbers.normalize(number);
    this.ownNumber(e164);
    const identity = await identities.byNumber(e164);
    if (identity?.sip === undefined) {
      throw new BridgeError('ADDRESS_UNMAPPED', `no SIP address is known for ${e164}`, { condition: 'item-not-found' });
    }
    const address = parseSipAor(identity.sip);
    if (address === undefined) {
      this.options.logger.warn({ e164, sip: identity.sip }, 'identity source gave a SIP address that is not sip:user@host');
      throw new BridgeError('ADDRESS_UNMAPPED', `the SIP address known for ${e164} is not usable`, { condition: 'item-not-found' });
    }
    return address;
  }

  /** Toll-fraud guard (issue 6 item 6): a number outside the operator's ranges is nobody here. */
  private ownNumber(e164: string): void {
    if (this.options.ownNumbers === undefined || this.options.ownNumbers.owns(e164)) return;
    throw new BridgeError('NUMBER_NOT_OURS', `${e164} is not a number of this organisation`, { condition: 'item-not-found', sipStatus: 404 });
  }

  /**
   * How XMPP users see a SIP sender: a number as `+15551234567@<component>`, the JID they write
   * to for numbers, so a reply goes through the identity chain like any message to a number.
   * A number that is not E.164 (an extension, say) keeps its SIP address instead.
   */
  private sipSender(from: Address): Address {
    const t = this.options.translator;
    if (from.telephone) {
      try {
        return t.numberToXmpp(this.numbers.normalize(from.user).e164);
      } catch {
        // falls through to the escaped SIP address
      }
    }
    return t.sipSenderToXmpp(from);
  }

  /** The XMPP user a SIP request for a number (tel: or user=phone) is for, by the identity chain. */
  private async numberToXmpp(number: string): Promise<Address> {
    let e164: string;
    try {
      e164 = this.numbers.normalize(number).e164;
    } catch (err) {
      // RFC 3261 §21.4.22: a Request-URI that does not name a complete number.
      throw new BridgeError('NUMBER_INVALID', err instanceof Error ? err.message : String(err), {
        condition: 'jid-malformed',
        sipStatus: 484,
      });
    }
    this.ownNumber(e164);
    const identity = await this.options.identities.byNumber(e164);
    const jid = identity?.xmpp === undefined ? undefined : this.options.translator.servedXmppUser(identity.xmpp);
    if (jid === undefined) {
      if (identity?.xmpp !== undefined) {
        this.options.logger.warn({ e164, xmpp: identity.xmpp }, 'identity source gave an XMPP address this bridge does not serve');
      }
      throw new BridgeError('ADDRESS_UNMAPPED', `no XMPP user is known for ${e164}`, { condition: 'item-not-found', sipStatus: 404 });
    }
    return jid;
  }

  private enqueue(event: CanonicalEvent): Promise<void> {
    return enqueueForDelivery(this.options.queue, event);
  }
}

/** The policy decision on a refused event: its rule (DENIAL_RULES, or rate-limited with the partner) or else its error code. */
function refusalOf(err: BridgeError, rule: string | undefined): Record<string, string> {
  return {
    'bridge.policy.decision': rule === undefined ? 'refused' : 'denied',
    'bridge.policy.rule': rule ?? err.code,
    ...(err instanceof RateLimitedError && err.partner !== undefined ? { 'bridge.partner': err.partner } : {}),
  };
}

function conversationKey(a: Address, b: Address): string {
  const x = `${a.user}@${a.domain}`;
  const y = `${b.user}@${b.domain}`;
  return x < y ? `${x}|${y}` : `${y}|${x}`;
}

/** An address as the URI its side writes (`sip:…`, `xmpp:…`, RFC 5122), for the audit log. */
function uriOf(a: Address): string {
  return `${a.side}:${formatAddress(a)}`;
}

/**
 * Who the event is between, as span attributes: both domains (sender as it arrived, recipient
 * as mapped) and the federation partner the router matched.
 */
function partiesOf(inbound: CanonicalEvent, routed: CanonicalEvent): Record<string, string> {
  return {
    'bridge.kind': inbound.kind,
    'bridge.from.side': inbound.from.side,
    'bridge.from.domain': inbound.from.domain,
    'bridge.to.side': routed.to.side,
    'bridge.to.domain': routed.to.domain,
    ...(routed.partner === undefined ? {} : { 'bridge.partner': routed.partner }),
  };
}

/**
 * The audit log's hook for `sxb_policy_denials_total`: every denial by rule, except rate-limit
 * refusals, which `sxb_rate_limited_total` counts by partner.
 */
export function countDenial(metrics: BridgeMetrics | undefined): ((denial: Denial) => void) | undefined {
  return metrics === undefined ? undefined : (denial) => (denial.rule === 'rate-limited' ? undefined : metrics.policyDenial(denial.rule));
}
