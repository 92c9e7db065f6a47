/**
 * Issue 6 item 5: a federation partner's watchers hold at most `limits.maxSubscriptions`
 * subscriptions through the bridge at once, so a flooding partner fills its own share of the
 * subscription store and not everyone's. The count is the store's (`countByPartner`), so with a
 * Redis store it is one count across every SIP edge.
 *
 * Only a request that starts a subscription is counted against the cap; a refresh, or a new
 * dialog for a (watcher, presentity) pair that already holds one, keeps what the partner has and
 * is never refused. The roles ask here before they store a new record, and tag the record with
 * the partner so it is counted from then on.
 *
 * Check and store are two steps: requests admitted in this process and not stored yet count
 * too, but two SIP edges admitting at once may together pass the cap by what each had in
 * flight. The cap bounds a flood; it is not an exact quota.
 */
import { AuditLog } from '../../../core/audit.js';
import { BridgeError } from '../../../core/errors.js';
import type { Address, Side } from '../../../core/events.js';
import type { SubscriptionStore } from '../../../core/state/subscriptions.js';
import type { Logger } from '../../../telemetry/logger.js';
import { addressKey } from './context.js';

/** The partner whose users live at `domain` on `side`, and its cap; undefined for our own users. */
export type PartnerOf = (side: Side, domain: string) => { readonly name: string; readonly maxSubscriptions: number } | undefined;

/** A new subscription let in: its record's partner tag, and the place it held until stored. */
export interface Admission {
  readonly partner?: string;
  /** Call once the record is stored, or was not after all. */
  release(): void;
}

const NO_PARTNER: Admission = { release: () => undefined };

export class PartnerSubscriptions {
  /** Admitted in this process and not yet stored, per partner. */
  private readonly pending = new Map<string, number>();
  private readonly audit: AuditLog;

  constructor(
    private readonly store: SubscriptionStore,
    private readonly partnerOf: PartnerOf,
    logger: Logger,
    audit?: AuditLog,
  ) {
    this.audit = audit ?? new AuditLog(logger);
  }

  /** The partner tag for a record whose watcher lives at `domain` on `side`. */
  tag(side: Side, domain: string): string | undefined {
    return this.partnerOf(side, domain)?.name;
  }

  /**
   * Lets a new subscription of `watcher` (whose users live on `side`) in, or refuses it.
   * @throws BridgeError `PARTNER_SUBSCRIPTIONS_FULL` (resource-constraint; SIP 503, RFC 3261
   *   §21.5.4) when the partner holds its cap already.
   */
  async admit(side: Side, watcher: Address): Promise<Admission> {
    const partner = this.partnerOf(side, watcher.domain);
    if (partner === undefined) return NO_PARTNER;
    const held = await this.store.countByPartner(partner.name);
    // Read after the await: admissions that ran meanwhile have raised it.
    const pending = this.pending.get(partner.name) ?? 0;
    if (held + pending >= partner.maxSubscriptions) {
      const rule = `partner ${partner.name} limits.maxSubscriptions`;
      this.audit.deny({
        rule: 'partner-subscriptions',
        who: `${partner.name} ${addressKey(watcher)}`,
        what: 'subscription',
        reason: `${rule}: ${held + pending} of ${partner.maxSubscriptions} held`,
        details: { partner: partner.name },
      });
      throw new BridgeError('PARTNER_SUBSCRIPTIONS_FULL', `partner ${partner.name} holds ${partner.maxSubscriptions} subscriptions, its limit (${rule})`, {
        condition: 'resource-constraint',
        sipStatus: 503,
        // Not retried by the queue: a place frees only when one of the partner's subscriptions ends.
        retryable: false,
      });
    }
    this.pending.set(partner.name, pending + 1);
    let released = false;
    return {
      partner: partner.name,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.pending.get(partner.name) ?? 1) - 1;
        if (left > 0) this.pending.set(partner.name, left);
        else this.pending.delete(partner.name);
      },
    };
  }
}
