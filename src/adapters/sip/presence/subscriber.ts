/**
 * The subscriber role (RFC 6665 §4.1, RFC 3856, RFC 8048 §5.2 and §6.3): an XMPP user watches a
 * SIP user. The bridge holds one SIP subscription per (watcher, presentity) pair, refreshes it
 * before it expires, subscribes again when the notifier ends it for a reason that allows it,
 * and turns its NOTIFYs into approve/deny and presence events for the XMPP watcher.
 */
import { BridgeError } from '../../../core/errors.js';
import {
  presenceEvent,
  subscriptionEvent,
  type Address,
  type Availability,
  type CanonicalEvent,
  type ProbeEvent,
  type SubscriptionEvent,
} from '../../../core/events.js';
import type { SubscriptionRecord } from '../../../core/state/subscriptions.js';
import { conditionForSipStatus } from '../../../mapping/error-conditions.js';
import { presenceFromPidf } from '../../../mapping/presence-values.js';
import { headerValue, type SipHeader, type SipRequest, type SipResponse } from '../codec/message.js';
import { formatUri } from '../codec/uri.js';
import {
  confirmDialog,
  contactFor,
  inDialogRequest,
  outOfDialogRequest,
  receiveInDialog,
  tagOf,
  uacDialog,
  type DialogState,
  type LocalSide,
} from '../dialog.js';
import { eventPackage, isPidf, parseSubscriptionState, PRESENCE_EVENT, type SubscriptionStateValue } from './event-headers.js';
import { parsePidf, PIDF_CONTENT_TYPE } from '../pidf.js';
import { addressKey, ALLOW_EVENTS, bare, KeyedSerial, type Answer, type PresenceContext } from './context.js';

export interface LastPresence {
  readonly availability: Availability;
  readonly note?: string;
}

/**
 * - `confirming`: a SUBSCRIBE went out and no NOTIFY has come since; the record expires at
 *   Timer N (RFC 6665 §4.1.2.4), after which the subscription counts as failed.
 * - `live`: confirmed; the record expires when the subscription is due for refresh.
 * - `retry`: the subscription ended and a new one is due at the record's expiry.
 */
export type SubscriberPhase = 'confirming' | 'live' | 'retry';

export interface SubscriberData {
  readonly dialog: DialogState;
  /** The XMPP user, by its SIP-side address. */
  readonly watcher: Address;
  readonly presentity: Address;
  readonly phase: SubscriberPhase;
  /** When the SIP subscription ends unless refreshed (epoch ms). */
  readonly endsAt: number;
  /** The presence last passed to the watcher (RFC 3856 §6.8: the newest document is current). */
  readonly last?: LastPresence;
  /** Whether the watcher has been told `approve`. */
  readonly approved: boolean;
  /** New SUBSCRIBEs in a row that did not reach `active`. */
  readonly attempts: number;
}

export type SubscriberRecord = SubscriptionRecord<SubscriberData>;

/** RFC 6665 §4.1.2.2: answers to a refresh after which the subscription is over. */
const ENDING_STATUSES = new Set([404, 405, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604]);

/** RFC 8048 §5.2.2: answers that cancel the XMPP authorization for good. */
const REFUSING_STATUSES = new Set([403, 489, 603]);

/** New SUBSCRIBEs in a row before the bridge gives a subscription up. */
const MAX_ATTEMPTS = 8;
const MAX_BACKOFF_MS = 300_000;
/** A refresh refused for a passing reason is tried again after this (while the subscription lasts). */
const REFRESH_RETRY_MS = 30_000;

export function subscriberId(callId: string, localTag: string): string {
  return `sub:${callId}:${localTag}`;
}

/** RFC 6665 §4.1.2.2 leaves the moment to the subscriber: 10 % of the duration, at least 30 s, before the end. */
export function refreshAt(now: number, endsAt: number): number {
  const duration = Math.max(0, endsAt - now);
  return endsAt - Math.min(Math.max(duration / 10, 30_000), duration / 2);
}

export class PresenceSubscriber {
  private readonly serial = new KeyedSerial();
  /** SUBSCRIBEs sent and not answered yet, so a NOTIFY that overtakes the 2xx finds its subscription. */
  private readonly awaiting = new Map<string, SubscriberData>();

  constructor(private readonly ctx: PresenceContext) {}

  /** The XMPP user asks to see a SIP user (RFC 8048 §5.2.1). Rejects when the SIP side refuses. */
  async onSubscribe(event: SubscriptionEvent): Promise<void> {
    const watcher = bare(event.from);
    const presentity = bare(event.to);
    await this.serial.run(pairKey(watcher, presentity), async () => {
      const existing = await this.pairRecords(watcher, presentity);
      if (existing.length === 0) return this.startNew(watcher, presentity);
      // One SIP subscription per pair: a repeated request is answered from what is known.
      const active = existing.find((r) => r.state === 'active');
      if (active) await this.tell(active, 'approve', active.data.last, `sip-repeat:${event.id}`);
    });
  }

  /** The XMPP user stops watching (RFC 8048 §5.2.3): SUBSCRIBE with Expires: 0 in each dialog. */
  async onUnsubscribe(event: SubscriptionEvent): Promise<void> {
    const watcher = bare(event.from);
    const presentity = bare(event.to);
    await this.serial.run(pairKey(watcher, presentity), async () => {
      const records = await this.pairRecords(watcher, presentity);
      for (const record of records) await this.end(record.id);
      if (records.length > 0) {
        // RFC 8048 §5.2.3 (F21): the gateway SHOULD then tell the XMPP user "unsubscribed".
        await this.emit(subscriptionEvent({ ...this.base(records[0]!, `sip-unsubscribe:${event.id}`), action: 'deny' }));
      }
    });
  }

  /**
   * An XMPP presence probe (RFC 8048 §7.1), answered from the last NOTIFY of an active
   * subscription. An XMPP server probes only contacts its user is subscribed to (RFC 6121
   * §4.3.1), so a probe for a pair without any SIP subscription (the bridge restarted with a
   * memory store) starts one again: presence comes back without the user subscribing anew.
   */
  async onProbe(event: ProbeEvent): Promise<void> {
    const watcher = bare(event.from);
    const presentity = bare(event.to);
    const records = await this.pairRecords(watcher, presentity);
    if (records.length === 0) {
      // A probe has no answer to fail: a refusal is logged, not turned into an error stanza.
      await this.serial
        .run(pairKey(watcher, presentity), async () => {
          if ((await this.pairRecords(watcher, presentity)).length === 0) await this.startNew(watcher, presentity);
        })
        .catch((err: unknown) => this.ctx.log.info({ err, watcher: addressKey(watcher), presentity: addressKey(presentity) }, 'SIP subscription for a probe not started'));
      return;
    }
    const active = records.find((r) => r.state === 'active' && r.data.last);
    if (!active?.data.last) return;
    await this.emit(
      presenceEvent({ ...this.base(active, `sip-probe:${event.id}`), to: event.from, ...presenceFields(active.data.last) }),
    );
  }

  /** An inbound NOTIFY (RFC 6665 §4.1.3). */
  async onNotify(req: SipRequest, answer: Answer): Promise<void> {
    if (eventPackage(req) !== PRESENCE_EVENT) return answer(489, { headers: [ALLOW_EVENTS] });
    // RFC 6665 §4.1.3: NOTIFY requests MUST contain Subscription-State.
    const state = parseSubscriptionState(headerValue(req, 'Subscription-State'));
    if (!state) return answer(400, { reason: 'Missing or Malformed Subscription-State' });
    const callId = headerValue(req, 'Call-ID') ?? '';
    const id = subscriberId(callId, tagOf(req, 'To') ?? '');
    await this.serial.run(id, async () => {
      const stored = await this.ctx.store.get<SubscriberData>(id);
      const early = this.awaiting.get(id);
      const record = stored ?? (early ? this.newRecord(id, early) : undefined);
      // RFC 6665 §4.1.3: a NOTIFY matching no subscription → 481.
      if (!record || record.data.phase === 'retry') return answer(481);
      const remoteTag = record.data.dialog.remoteTag;
      // A second dialog from a forked SUBSCRIBE (RFC 6665 §4.1.4): one per pair is kept, and
      // the 481 makes its notifier drop the other (§4.2.2).
      if (remoteTag !== '' && tagOf(req, 'From') !== remoteTag) return answer(481);
      let dialog: DialogState | 'out-of-order';
      try {
        dialog = remoteTag === '' ? confirmDialog(record.data.dialog, req) : receiveInDialog(record.data.dialog, req);
      } catch {
        return answer(400, { reason: 'Malformed Dialog Headers' });
      }
      if (dialog === 'out-of-order') return answer(500, { reason: 'CSeq Out of Order' });
      const presence = readPresence(req);
      if (presence === 'unsupported') return answer(415, { headers: [{ name: 'Accept', value: PIDF_CONTENT_TYPE }] });
      // A body we cannot read is refused before anything is acted on: 400 is not among the
      // answers that end a subscription (RFC 6665 §4.2.2), so the notifier keeps it and the
      // next NOTIFY is taken as usual; a 200 would claim a state we never saw.
      if (presence === 'malformed') return answer(400, { reason: 'Malformed PIDF' });
      answer(200);
      await this.apply({ ...record, data: { ...record.data, dialog } }, state, presence, req);
    });
  }

  /**
   * The record is due: refresh, subscribe again, or give up (the scheduler took it out). No
   * lock is held across a transaction, so a NOTIFY is never stuck behind our own SUBSCRIBE.
   */
  async onExpired(record: SubscriberRecord): Promise<void> {
    if (record.state === 'terminated') return; // an unsubscribe's leftover
    if (record.data.phase === 'live') return this.refresh(record);
    // Timer N ran out without a NOTIFY (RFC 6665 §4.1.2.2/§4.1.2.4: the subscription failed),
    // or a retry is due.
    await this.again(record, record.data.phase === 'confirming' ? 'no NOTIFY within Timer N' : 'retry due');
  }

  private async apply(record: SubscriberRecord, state: SubscriptionStateValue, presence: LastPresence | undefined, req: SipRequest): Promise<void> {
    const key = `sip:${record.data.dialog.callId}:${headerValue(req, 'CSeq') ?? ''}:${record.data.dialog.remoteTag}`;
    if (record.state === 'terminated') {
      // Our unsubscribe is being confirmed (RFC 6665 §4.4.1: the dialog ends with this NOTIFY).
      if (state.state === 'terminated') await this.ctx.store.delete(record.id);
      return;
    }
    const now = this.ctx.now();
    // RFC 6665 §4.1.3: an expires parameter is the authoritative duration.
    const endsAt = state.expires === undefined ? record.data.endsAt : now + state.expires * 1000;
    if (state.state === 'pending') {
      // RFC 8048 §5.2.1: while pending, nothing goes to the XMPP user.
      await this.put({ ...record, state: 'pending', data: { ...record.data, phase: 'live', endsAt } });
      return;
    }
    let data: SubscriberData = { ...record.data, endsAt };
    if (state.state === 'active') {
      if (!data.approved) await this.tell(record, 'approve', undefined, `${key}:approve`);
      data = { ...data, approved: true, attempts: 0, phase: 'live' };
    }
    if (presence && (record.state === 'active' || state.state === 'active') && !samePresence(presence, data.last)) {
      await this.emit(presenceEvent({ ...this.base(record, `${key}:presence`), ...presenceFields(presence) }));
      data = { ...data, last: presence };
    }
    if (state.state === 'active') {
      await this.put({ ...record, state: 'active', data });
      return;
    }
    this.awaiting.delete(record.id); // tells start() the subscription ended before its 2xx
    await this.ctx.store.delete(record.id);
    const reason = state.reason ?? '';
    if (reason === 'rejected' || reason === 'noresource') {
      // RFC 6665 §4.1.3: no new subscription; the XMPP user is refused (RFC 8048 §5.2.1).
      await this.tell(record, 'deny', undefined, `${key}:deny`);
      return;
    }
    // RFC 6665 §4.1.3: "invariant" says the state will not change: nothing to subscribe for.
    if (reason === 'invariant') return;
    // deactivated, timeout: at once; probation, giveup, unknown: after retry-after if given.
    const delay = state.retryAfter === undefined ? 0 : Math.min(state.retryAfter, 86_400) * 1000;
    await this.scheduleRetry({ ...record, data }, delay);
  }

  /** An in-dialog SUBSCRIBE that keeps the subscription going (RFC 6665 §4.1.2.2). */
  private async refresh(record: SubscriberRecord): Promise<void> {
    const now = this.ctx.now();
    const local = this.ctx.local(record.data.dialog.peer.transport);
    const { request, dialog } = inDialogRequest(record.data.dialog, 'SUBSCRIBE', local, this.subscribeHeaders(record.data.watcher, local, this.ctx.limits.defaultExpires));
    // Stored before sending, so a NOTIFY that arrives during the transaction finds it.
    const confirming: SubscriberRecord = { ...record, expiresAt: now + this.ctx.timerN, data: { ...record.data, dialog, phase: 'confirming' } };
    await this.serial.run(record.id, () => this.put(confirming));
    let res: SipResponse;
    try {
      res = await this.ctx.exchange(request, dialog.peer);
    } catch (err) {
      this.ctx.log.info({ err, subscription: record.id }, 'SUBSCRIBE refresh got no answer: subscribing again');
      await this.ctx.store.delete(record.id);
      return this.again(confirming, 'refresh timed out');
    }
    if (res.status < 300) return this.serial.run(record.id, () => this.confirmed(record.id, res));
    if (REFUSING_STATUSES.has(res.status)) return this.refused(confirming, res.status);
    if (ENDING_STATUSES.has(res.status) || now + REFRESH_RETRY_MS >= record.data.endsAt) {
      await this.ctx.store.delete(record.id);
      return this.again(confirming, `refresh answered ${res.status}`);
    }
    // RFC 6665 §4.1.2.2: other failures leave the subscription valid until its known end.
    await this.serial.run(record.id, () => this.put({ ...record, data: { ...record.data, dialog } }, now + REFRESH_RETRY_MS));
  }

  /**
   * A subscription for a pair that holds none: counted against the XMPP watcher's partner's cap
   * first (issue 6 item 5), its place held until start() has stored the record or failed.
   */
  private async startNew(watcher: Address, presentity: Address): Promise<void> {
    const admission = await this.ctx.partners?.admit('xmpp', watcher);
    try {
      await this.start(watcher, presentity, { attempts: 0, approved: false });
    } finally {
      admission?.release();
    }
  }

  /** The first SUBSCRIBE of a new dialog; resolves on 2xx, rejects with the SIP refusal. */
  private async start(watcher: Address, presentity: Address, carry: Pick<SubscriberData, 'attempts' | 'approved' | 'last'>): Promise<void> {
    const { to, route } = await this.ctx.route(presentity);
    const local = this.ctx.local(to.transport);
    const target = formatUri({ scheme: 'sip', user: presentity.user, host: presentity.domain, params: {} });
    const fromUri = formatUri({ scheme: 'sip', user: watcher.user, host: watcher.domain, params: {} });
    const request = outOfDialogRequest('SUBSCRIBE', target, fromUri, local, route, this.subscribeHeaders(watcher, local, this.ctx.limits.defaultExpires));
    const dialog = uacDialog(request, to);
    const id = subscriberId(dialog.callId, dialog.localTag);
    const fresh: SubscriberData = {
      ...carry,
      dialog,
      watcher,
      presentity,
      phase: 'confirming',
      endsAt: this.ctx.now() + this.ctx.limits.defaultExpires * 1000,
    };
    this.awaiting.set(id, fresh);
    let res: SipResponse;
    let ended: boolean;
    try {
      res = await this.ctx.exchange(request, to);
    } finally {
      // A NOTIFY terminated that overtook the 2xx has taken the entry out already.
      ended = this.awaiting.get(id) !== fresh;
      this.awaiting.delete(id);
    }
    if (res.status < 300) return ended ? undefined : this.serial.run(id, () => this.confirmed(id, res, fresh));
    throw new BridgeError('SIP_SUBSCRIBE_REJECTED', `SUBSCRIBE to ${addressKey(presentity)} rejected: ${res.status} ${res.reason}`, {
      condition: conditionForSipStatus(res.status),
      sipStatus: res.status,
      retryable: false,
    });
  }

  /**
   * A 2xx to a SUBSCRIBE: the duration it grants (RFC 6665 §4.1.2.1: the Expires of the 2xx).
   * A NOTIFY may have come first and made the record already (§4.1.2.4).
   */
  private async confirmed(id: string, res: SipResponse, fresh?: SubscriberData): Promise<void> {
    const now = this.ctx.now();
    const record = (await this.ctx.store.get<SubscriberData>(id)) ?? (fresh ? this.newRecord(id, fresh) : undefined);
    if (!record) return; // ended while the SUBSCRIBE was on its way
    const granted = Number(headerValue(res, 'Expires') ?? this.ctx.limits.defaultExpires);
    const endsAt = now + (Number.isFinite(granted) ? Math.min(granted, this.ctx.limits.maxExpires) : this.ctx.limits.defaultExpires) * 1000;
    const dialog = record.data.dialog.remoteTag === '' ? confirmDialog(record.data.dialog, res) : record.data.dialog;
    await this.put({ ...record, data: { ...record.data, dialog, endsAt } });
  }

  /** RFC 8048 §5.2.2: 403, 489 or 603 cancels the authorization; the XMPP user is told. */
  private async refused(record: SubscriberRecord, status: number): Promise<void> {
    await this.ctx.store.delete(record.id);
    this.ctx.log.info({ subscription: record.id, status }, 'SIP presence subscription refused for good');
    await this.tell(record, 'deny', undefined, `sip:${record.data.dialog.callId}:refused:${record.data.dialog.localSeq}`);
  }

  /** A new SUBSCRIBE in a new dialog for the same pair, or the retry record for one later. */
  private async again(record: SubscriberRecord, why: string): Promise<void> {
    const attempts = record.data.attempts + 1;
    if (attempts > MAX_ATTEMPTS) {
      this.ctx.log.warn({ subscription: record.id, why, attempts }, 'SIP presence subscription given up');
      await this.ctx.store.delete(record.id);
      // Nothing more will come: the watcher must not see a stale "online" forever (issue 4).
      if (record.data.last && record.data.last.availability !== 'unavailable') {
        await this.emit(presenceEvent({ ...this.base(record, `sip-giveup:${record.id}`), availability: 'unavailable' }));
      }
      return;
    }
    const { watcher, presentity, approved, last } = record.data;
    try {
      await this.serial.run(pairKey(watcher, presentity), () =>
        this.start(watcher, presentity, { attempts, approved, ...(last ? { last } : {}) }),
      );
    } catch (err) {
      if (err instanceof BridgeError && err.sipStatus !== undefined && REFUSING_STATUSES.has(err.sipStatus)) {
        return this.refused(record, err.sipStatus);
      }
      this.ctx.log.info({ err, subscription: record.id, attempts }, 'new SUBSCRIBE failed: trying later');
      await this.scheduleRetry({ ...record, data: { ...record.data, attempts } }, backoff(attempts));
    }
  }

  private async scheduleRetry(record: SubscriberRecord, delayMs: number): Promise<void> {
    await this.put({ ...record, state: 'pending', expiresAt: this.ctx.now() + delayMs, data: { ...record.data, phase: 'retry' } });
  }

  /** The bridge stops with a memory store: each SIP subscription is ended (Expires: 0) so presence servers stop notifying. */
  async releaseAll(limit: number): Promise<number> {
    const records = await this.ctx.store.list<SubscriberData>('subscriber', limit);
    await Promise.all(records.map((r) => this.end(r.id)));
    return records.length;
  }

  /** Ends one subscription from our side; the record stays as `terminated` for the final NOTIFY. */
  private async end(id: string): Promise<void> {
    const sending = await this.serial.run(id, async () => {
      const record = await this.ctx.store.get<SubscriberData>(id);
      if (!record) return undefined;
      if (record.data.phase === 'retry' || record.data.dialog.remoteTag === '') {
        await this.ctx.store.delete(id);
        return undefined;
      }
      const local = this.ctx.local(record.data.dialog.peer.transport);
      const next = inDialogRequest(record.data.dialog, 'SUBSCRIBE', local, this.subscribeHeaders(record.data.watcher, local, 0));
      // RFC 6665 §4.4.1: the subscription lasts until the NOTIFY terminated; Timer N bounds the wait.
      await this.put({ ...record, state: 'terminated', expiresAt: this.ctx.now() + this.ctx.timerN, data: { ...record.data, dialog: next.dialog } });
      return next;
    });
    if (!sending) return;
    const { request, dialog } = sending;
    try {
      const res = await this.ctx.exchange(request, dialog.peer);
      if (res.status >= 300) await this.ctx.store.delete(id);
    } catch (err) {
      this.ctx.log.info({ err, subscription: id }, 'unsubscribe got no answer');
      await this.ctx.store.delete(id);
    }
  }

  private subscribeHeaders(watcher: Address, local: LocalSide, expires: number): SipHeader[] {
    return [
      { name: 'Contact', value: contactFor(watcher.user, local) },
      { name: 'Event', value: PRESENCE_EVENT },
      { name: 'Accept', value: PIDF_CONTENT_TYPE },
      { name: 'Expires', value: String(expires) },
      ALLOW_EVENTS,
    ];
  }

  private newRecord(id: string, data: SubscriberData): SubscriberRecord {
    // The watcher is an XMPP user (by its SIP-side address, same domain): its partner's record.
    const partner = this.ctx.partners?.tag('xmpp', data.watcher.domain);
    return {
      id,
      role: 'subscriber',
      watcher: addressKey(data.watcher),
      presentity: addressKey(data.presentity),
      ...(partner === undefined ? {} : { partner }),
      state: 'pending',
      expiresAt: this.ctx.now() + this.ctx.timerN,
      data,
    };
  }

  /**
   * Stores the record and wakes the scheduler. A live subscription is due at its refresh time;
   * the other phases carry their own deadline (Timer N, the retry time, the end of an unsubscribe).
   * `at` overrides both (a refresh to try again sooner).
   */
  private async put(record: SubscriberRecord, at?: number): Promise<void> {
    const live = record.state !== 'terminated' && record.data.phase === 'live';
    const expiresAt = at ?? (live ? refreshAt(this.ctx.now(), record.data.endsAt) : record.expiresAt);
    await this.ctx.store.put({ ...record, expiresAt });
    this.ctx.poke();
  }

  private async pairRecords(watcher: Address, presentity: Address): Promise<SubscriberRecord[]> {
    const presentityKey = addressKey(presentity);
    const records = await this.ctx.store.byWatcher<SubscriberData>(addressKey(watcher), 'subscriber');
    return records.filter((r) => r.presentity === presentityKey && r.state !== 'terminated');
  }

  private async tell(record: SubscriberRecord, action: 'approve' | 'deny', last: LastPresence | undefined, dedupeKey: string): Promise<void> {
    await this.emit(subscriptionEvent({ ...this.base(record, dedupeKey), action }));
    if (last) await this.emit(presenceEvent({ ...this.base(record, `${dedupeKey}:presence`), ...presenceFields(last) }));
  }

  /** Events from the SIP presentity to the XMPP watcher. */
  private base(record: SubscriberRecord, dedupeKey: string): { origin: 'sip'; from: Address; to: Address; dedupeKey: string; createdAt: number; originRef: string } {
    return { origin: 'sip', from: record.data.presentity, to: record.data.watcher, dedupeKey, createdAt: this.ctx.now(), originRef: record.data.dialog.callId };
  }

  /** Hands an event to the core; a refusal there is logged, not fatal to the SIP side. */
  private async emit(event: CanonicalEvent): Promise<void> {
    try {
      await this.ctx.hooks.onEvent(event);
    } catch (err) {
      this.ctx.log.info({ err, kind: event.kind, id: event.id }, 'presence event from SIP not taken by the core');
    }
  }
}

function pairKey(watcher: Address, presentity: Address): string {
  return `pair:${addressKey(watcher)}|${addressKey(presentity)}`;
}

/** 0 s for the first new SUBSCRIBE, then doubling from 2 s up to five minutes. */
function backoff(attempts: number): number {
  return attempts <= 1 ? 0 : Math.min(1000 * 2 ** (attempts - 1), MAX_BACKOFF_MS);
}

/**
 * The presence a NOTIFY body says: undefined for no body (RFC 3856 §6.8: the previous document
 * stays current), 'unsupported' for a type we did not ask for, 'malformed' for a bad PIDF.
 */
function readPresence(req: SipRequest): LastPresence | undefined | 'unsupported' | 'malformed' {
  if (req.body.length === 0) return undefined;
  if (!isPidf(headerValue(req, 'Content-Type'))) return 'unsupported';
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(req.body);
    const { availability, note } = presenceFromPidf(parsePidf(text));
    return note === undefined ? { availability } : { availability, note };
  } catch {
    return 'malformed';
  }
}

function samePresence(a: LastPresence, b: LastPresence | undefined): boolean {
  return b !== undefined && a.availability === b.availability && a.note === b.note;
}

function presenceFields(p: LastPresence): { availability: Availability; note?: string } {
  return p.note === undefined ? { availability: p.availability } : { availability: p.availability, note: p.note };
}
