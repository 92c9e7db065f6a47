/**
 * Subscription state (issue 4): every presence subscription the bridge takes part in, on
 * either side, as plain JSON records, so a Redis backend (issue 5) can hold the same thing.
 *
 * - `notifier`: a SIP watcher subscribed to an XMPP user through us (RFC 6665 notifier role);
 *   `data` holds the SIP dialog we NOTIFY in.
 * - `subscriber`: an XMPP user watches a SIP user; we hold the SIP subscription (RFC 6665
 *   subscriber role) and refresh it; `data` holds that dialog and the last presence received.
 *
 * Expiry is by time, not by timer: `takeExpired(now)` removes and returns what is due, so one
 * scheduler (see ./expiry.ts) serves any number of subscriptions, and a Redis backend can do
 * the same with a sorted set.
 */
import { BridgeError } from '../errors.js';

export type SubscriptionRole = 'notifier' | 'subscriber';

/** RFC 6665 §4.1.3 Subscription-State values as the bridge tracks them. */
export type SubscriptionState = 'pending' | 'active' | 'terminated';

export interface SubscriptionRecord<D = unknown> {
  /** Unique key, e.g. the SIP dialog id (Call-ID + tags). */
  readonly id: string;
  readonly role: SubscriptionRole;
  /** Watcher in canonical `user@domain` form of its own side (e.g. `alice@corp.example`). */
  readonly watcher: string;
  /** Presentity in canonical `user@domain` form of its own side. */
  readonly presentity: string;
  readonly state: SubscriptionState;
  /** Epoch milliseconds at which the subscription ends unless refreshed. */
  readonly expiresAt: number;
  /**
   * The federation partner whose watcher holds it (issue 6 item 5): what `countByPartner`
   * counts against the partner's `limits.maxSubscriptions`. Absent for the operator's own users.
   */
  readonly partner?: string;
  /** Protocol data (dialog state, last presence), JSON-serialisable. */
  readonly data: D;
}

export interface SubscriptionStore {
  /** Inserts or replaces the record with this id (its expiry is rescheduled). */
  put<D>(record: SubscriptionRecord<D>): Promise<void>;
  get<D>(id: string): Promise<SubscriptionRecord<D> | undefined>;
  /** True when a record was removed. */
  delete(id: string): Promise<boolean>;
  /** Records of one presentity (optionally of one role), in no particular order. */
  byPresentity<D>(presentity: string, role?: SubscriptionRole): Promise<SubscriptionRecord<D>[]>;
  /** Records of one watcher (optionally of one role). */
  byWatcher<D>(watcher: string, role?: SubscriptionRole): Promise<SubscriptionRecord<D>[]>;
  /** Every record of a role, at most `limit` (for re-probing after a reconnect). */
  list<D>(role: SubscriptionRole, limit: number): Promise<SubscriptionRecord<D>[]>;
  /** Removes and returns up to `limit` records with `expiresAt <= now`, earliest first. */
  takeExpired<D>(now: number, limit: number): Promise<SubscriptionRecord<D>[]>;
  /** Earliest `expiresAt` held, or undefined when empty (the scheduler sleeps until then). */
  nextExpiry(): Promise<number | undefined>;
  /** Number of records, for metrics and bounds. */
  size(): Promise<number>;
  /** Number of records tagged with this partner (every process's, for a shared store). */
  countByPartner(partner: string): Promise<number>;
  close(): Promise<void>;
}

const ROLES: readonly string[] = ['notifier', 'subscriber'];
const STATES: readonly string[] = ['pending', 'active', 'terminated'];

/**
 * JSON text of a record, refusing what JSON or an expiry order cannot hold (a non-finite expiry
 * would break a heap or sorted set and turn into null on the way out). Every backend stores
 * through this, so all refuse the same records.
 * @throws BridgeError `STATE_INVALID_RECORD`.
 */
export function serialiseRecord(record: SubscriptionRecord<unknown>): string {
  const name = JSON.stringify(String(record.id).slice(0, 100));
  const invalid = (why: string, cause?: unknown) =>
    new BridgeError('STATE_INVALID_RECORD', `subscription record ${name}: ${why}`, { condition: 'internal-server-error', retryable: false, cause });
  if (typeof record.id !== 'string' || record.id === '') throw invalid('id must be a non-empty string');
  if (!ROLES.includes(record.role)) throw invalid(`unknown role ${String(record.role)}`);
  if (!STATES.includes(record.state)) throw invalid(`unknown state ${String(record.state)}`);
  if (typeof record.watcher !== 'string' || typeof record.presentity !== 'string') throw invalid('watcher and presentity must be strings');
  if (record.partner !== undefined && (typeof record.partner !== 'string' || record.partner === '')) throw invalid('partner must be a non-empty string when given');
  if (!Number.isFinite(record.expiresAt)) throw invalid(`expiresAt ${String(record.expiresAt)} is not a finite number`);
  try {
    return JSON.stringify(record);
  } catch (err) {
    throw invalid('data is not JSON-serialisable', err);
  }
}
