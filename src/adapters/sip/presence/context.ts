/**
 * What the two presence roles of the SIP adapter (PresenceNotifier, PresenceSubscriber) share:
 * the adapter's services they call, their limits, and small helpers.
 */
import type { AdapterHooks } from '../../../core/adapter.js';
import { BridgeError } from '../../../core/errors.js';
import type { Address } from '../../../core/events.js';
import type { SubscriptionStore } from '../../../core/state/subscriptions.js';
import { sipStatusForCondition } from '../../../mapping/error-conditions.js';
import type { Logger } from '../../../telemetry/logger.js';
import type { SipHeader, SipRequest, SipResponse } from '../codec/message.js';
import type { LocalSide } from '../dialog.js';
import type { Destination, TransportKind } from '../transport/transport.js';
import type { PartnerSubscriptions } from './partner-cap.js';

/** Subscription durations in seconds (RFC 3856 §6.4: one hour by default). */
export interface PresenceLimits {
  readonly defaultExpires: number;
  readonly minExpires: number;
  readonly maxExpires: number;
}

export const DEFAULT_PRESENCE_LIMITS: PresenceLimits = { defaultExpires: 3600, minExpires: 60, maxExpires: 86_400 };

export interface PresenceContext {
  readonly store: SubscriptionStore;
  readonly hooks: AdapterHooks;
  readonly log: Logger;
  readonly limits: PresenceLimits;
  /** 64·T1 in ms: Timer F, and Timer N of RFC 6665 §4.1.2.4. */
  readonly timerN: number;
  now(): number;
  /** Our Via sent-by for a transport. */
  local(transport: TransportKind): LocalSide;
  /** Where a request to `target` goes outside a dialog (outbound proxy, else its host). */
  route(target: Address): Promise<{ to: Destination; route?: string }>;
  /** One client transaction: its final response, or a BridgeError when none came. */
  exchange(request: SipRequest, to: Destination): Promise<SipResponse>;
  /** Tells the expiry scheduler a record was put that may expire before the one it waits for. */
  poke(): void;
  /** Federation partners' subscription caps (issue 6 item 5); without it nothing is capped or tagged. */
  readonly partners?: PartnerSubscriptions;
}

/** An answer to the request being handled, built by the adapter's one response builder. */
export type Answer = (status: number, opts?: { reason?: string; toTag?: string; headers?: SipHeader[] }) => void;

export const ALLOW_EVENTS: SipHeader = { name: 'Allow-Events', value: 'presence' };

/** A SIP-side address as the store keys it: `user@domain`, domain in lower case. */
export function addressKey(a: Address): string {
  return `${a.user}@${a.domain.toLowerCase()}`;
}

/** The bare address (no resource), as events name a presentity or watcher. */
export function bare(a: Address): Address {
  return { side: a.side, user: a.user, domain: a.domain, ...(a.telephone ? { telephone: a.telephone } : {}) };
}

/** The final status for an error from the core: its own SIP status, else RFC 7247 §7.1. */
export function statusFor(err: unknown): number {
  if (!(err instanceof BridgeError)) return 500;
  const status = err.sipStatus ?? sipStatusForCondition(err.condition);
  return status >= 300 && status <= 699 ? status : 500;
}

/**
 * Runs work one at a time per key (one subscription dialog): a record is read, changed and
 * written back, and its NOTIFYs leave in CSeq order, without a lock across dialogs. A key's
 * entry goes once its queue is empty.
 */
export class KeyedSerial {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  get size(): number {
    return this.tails.size;
  }
}
