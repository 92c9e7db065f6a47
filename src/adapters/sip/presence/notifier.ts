/**
 * The notifier role (RFC 6665 §4.2, RFC 3856, RFC 8048 §5.3 and §6.2): a SIP watcher subscribes
 * to an XMPP user through the bridge. The SUBSCRIBE becomes an XMPP subscription request (and a
 * probe); the XMPP user's answer and presence become NOTIFYs in the subscription's dialog.
 */
import { BridgeError } from '../../../core/errors.js';
import { presenceEvent, probeEvent, subscriptionEvent, type Address, type PresenceEvent, type SubscriptionEvent } from '../../../core/events.js';
import { randomToken } from '../../../core/ids.js';
import type { SubscriptionRecord, SubscriptionState } from '../../../core/state/subscriptions.js';
import { Coalescer } from '../../../core/coalesce.js';
import { pidfFromPresence, type ResourcePresence } from '../../../mapping/presence-values.js';
import { headerValue, type SipHeader, type SipRequest } from '../codec/message.js';
import { parseNameAddr } from '../codec/uri.js';
import { contactFor, DialogError, inDialogRequest, receiveInDialog, tagOf, uasDialog, type DialogState } from '../dialog.js';
import { acceptsPidf, eventPackage, expiresOf, formatSubscriptionState, PRESENCE_EVENT, type SubscriptionStateValue } from './event-headers.js';
import { senderAddress } from '../page-mode.js';
import { buildPidf, PIDF_CONTENT_TYPE } from '../pidf.js';
import { peerFacts } from '../peer-facts.js';
import { addressKey, ALLOW_EVENTS, bare, KeyedSerial, statusFor, type Answer, type PresenceContext } from './context.js';
import type { Admission } from './partner-cap.js';
import type { ReceivedFrom } from '../transport/transport.js';

/** What a notifier record holds besides the dialog. */
export interface NotifierData {
  readonly dialog: DialogState;
  /** The SIP watcher. */
  readonly watcher: Address;
  /** The XMPP user, by the SIP address the watcher subscribed to. */
  readonly presentity: Address;
  /** The presentity's resources as last told (empty until something is known). */
  readonly resources: readonly ResourcePresence[];
  /** Body of the last NOTIFY that carried presence, so a repeat is not sent (issue 4 §6). */
  readonly lastBody?: string;
}

export type NotifierRecord = SubscriptionRecord<NotifierData>;

/** RFC 6665 §4.2.2: NOTIFY answers after which the subscription MUST be removed. */
const REMOVING_STATUSES = new Set([404, 405, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604]);

/** Resources remembered per presentity; an XMPP user with more devices than this is unusual. */
const MAX_RESOURCES = 16;

/** Notifier record ids, from the dialog id (Call-ID and both tags). */
export function notifierId(callId: string, localTag: string, remoteTag: string): string {
  return `ntf:${callId}:${localTag}:${remoteTag}`;
}

export class PresenceNotifier {
  private readonly serial = new KeyedSerial();
  private readonly coalescer: Coalescer<string>;

  constructor(private readonly ctx: PresenceContext) {
    this.coalescer = new Coalescer<string>({
      // A burst of presence changes for one dialog becomes one NOTIFY with the latest state.
      send: (id, body) => this.locked(id, (sends) => this.notifyPresence(id, body, sends)),
      equals: (a, b) => a === b,
      maxKeys: 100_000,
      onError: (id, err) => this.ctx.log.warn({ err, subscription: id }, 'presence NOTIFY failed'),
    });
  }

  /** Waits for coalesced NOTIFYs still on their way (adapter shutdown). */
  idle(): Promise<void> {
    return this.coalescer.idle();
  }

  /** An inbound SUBSCRIBE (RFC 6665 §4.2.1). */
  async onSubscribe(req: SipRequest, from: ReceivedFrom, answer: Answer): Promise<void> {
    // RFC 6665 §4.2.1.1 (and §4.2.3: no Event at all is not PINT here either) → 489.
    if (eventPackage(req) !== PRESENCE_EVENT) return answer(489, { headers: [ALLOW_EVENTS] });
    let expires: number | undefined;
    try {
      expires = expiresOf(req);
    } catch {
      return answer(400, { reason: 'Malformed Expires' });
    }
    if (!acceptsPidf(req)) return answer(406, { headers: [{ name: 'Accept', value: PIDF_CONTENT_TYPE }] });
    const toTag = tagOf(req, 'To');
    if (toTag !== undefined) return this.onRefresh(req, toTag, expires, answer);
    if (expires === 0) return this.onFetch(req, from, answer);
    const granted = this.grant(expires);
    if (granted === 'too-brief') return answer(423, { headers: [{ name: 'Min-Expires', value: String(this.ctx.limits.minExpires) }] });
    return this.onNew(req, from, granted, answer);
  }

  /** A presence change of an XMPP user for one SIP watcher (RFC 8048 §6.2). */
  async onPresence(event: PresenceEvent): Promise<void> {
    for (const record of await this.pairRecords(event.from, event.to)) {
      await this.serial.run(record.id, async () => {
        const current = await this.ctx.store.get<NotifierData>(record.id);
        if (!current) return;
        const resources = withResource(current.data.resources, event);
        await this.ctx.store.put({ ...current, data: { ...current.data, resources } });
        if (current.state === 'active') this.coalescer.offer(record.id, this.body(current.data.dialog, resources));
      });
    }
  }

  /** The XMPP user's answer: approve → active (RFC 8048 §5.3.1), deny or cancel → terminated;rejected. */
  async onAuthorization(event: SubscriptionEvent): Promise<void> {
    for (const record of await this.pairRecords(event.from, event.to)) {
      await this.locked(record.id, async (sends) => {
        const current = await this.ctx.store.get<NotifierData>(record.id);
        if (!current) return;
        if (event.action === 'approve') {
          if (current.state !== 'pending') return;
          const active: NotifierRecord = { ...current, state: 'active' };
          await this.ctx.store.put(active);
          await this.notify(sends, active, this.stateValue(active), this.currentBody(active));
          return;
        }
        // RFC 8048 §5.3.1 (Example 16) and RFC 6665 §4.2.1.3: a refusal, or an authorization
        // taken back later, ends the subscription with reason "rejected".
        await this.remove(current.id);
        await this.notify(sends, current, { state: 'terminated', reason: 'rejected' });
      });
    }
  }

  /**
   * The bridge stops and its subscriptions die with it (a memory store): every watcher is told
   * `terminated;reason=probation;retry-after=30` (RFC 6665 §4.1.3), so it subscribes again once
   * the bridge is back instead of showing the last state until its next refresh.
   */
  async releaseAll(limit: number): Promise<number> {
    const records = await this.ctx.store.list<NotifierData>('notifier', limit);
    await Promise.all(
      records.map((record) =>
        this.locked(record.id, async (sends) => {
          await this.remove(record.id);
          await this.notify(sends, record, { state: 'terminated', reason: 'probation', retryAfter: 30 });
        }),
      ),
    );
    return records.length;
  }

  /** The expiry scheduler took this record out: its time is up (RFC 6665 §4.2.1.4). */
  async onExpired(record: NotifierRecord): Promise<void> {
    await this.locked(record.id, async (sends) => {
      this.coalescer.forget(record.id);
      await this.notify(sends, record, { state: 'terminated', reason: 'timeout' });
      await this.watcherGone(record);
    });
  }

  private async onNew(req: SipRequest, from: ReceivedFrom, expires: number, answer: Answer): Promise<void> {
    const localTag = randomToken(12);
    let dialog: DialogState;
    let watcher: Address;
    let presentity: Address;
    try {
      dialog = uasDialog(req, localTag, { transport: from.transport, ...from.remote });
      presentity = senderAddress(req.uri, '');
      watcher = senderAddress(parseNameAddr(headerValue(req, 'From') ?? '').uri, presentity.domain);
    } catch (err) {
      return answer(400, { reason: err instanceof DialogError ? 'Malformed Dialog Headers' : 'Malformed Address' });
    }
    const id = notifierId(dialog.callId, localTag, dialog.remoteTag);
    const pair = await this.pairRecords(presentity, watcher);
    // An authorization the XMPP user already gave covers a new dialog from the same watcher
    // (RFC 8048 §5.1: authorizations are long-lived, dialogs are not).
    const authorized = pair.find((r) => r.state === 'active');
    const partner = this.ctx.partners?.tag('sip', watcher.domain);
    const record: NotifierRecord = {
      id,
      role: 'notifier',
      watcher: addressKey(watcher),
      presentity: addressKey(presentity),
      ...(partner === undefined ? {} : { partner }),
      state: authorized ? 'active' : 'pending',
      expiresAt: this.ctx.now() + expires * 1000,
      data: { dialog, watcher, presentity, resources: authorized?.data.resources ?? [] },
    };
    await this.locked(id, async (sends) => {
      let admission: Admission | undefined;
      try {
        // Issue 6 item 5: a new subscription counts against its partner's cap (503 past it);
        // another dialog of a pair already subscribed keeps what the pair has.
        if (pair.length === 0) admission = await this.ctx.partners?.admit('sip', watcher);
        await this.ctx.store.put(record); // refused when the store is full (503)
        admission?.release();
        this.ctx.poke();
        const cseq = dialog.remoteSeq;
        const base = { origin: 'sip' as const, from: watcher, to: presentity, createdAt: this.ctx.now(), originRef: dialog.callId, ...peerFacts(req, from) };
        if (!authorized) {
          // An XMPP server that already authorized the watcher answers the subscribe with
          // `subscribed` and current presence itself (RFC 6121 §3.1.3). No probe here: to a
          // watcher not yet subscribed, Prosody answers a probe with `unsubscribed`
          // (RFC 6121 §4.3.2), which would read as a refusal before the user has decided.
          await this.ctx.hooks.onEvent(
            subscriptionEvent({ ...base, action: 'subscribe', dedupeKey: `sip:${dialog.callId}:${cseq}:${dialog.remoteTag}` }),
          );
        } else {
          // Authorized already (another dialog of this watcher): the probe fetches current presence.
          void this.ctx.hooks
            .onEvent(probeEvent({ ...base, dedupeKey: `sip:${dialog.callId}:${cseq}:${dialog.remoteTag}:probe` }))
            .catch((err: unknown) => this.ctx.log.debug({ err, subscription: id }, 'probe for a new watcher not taken'));
        }
      } catch (err) {
        admission?.release();
        await this.ctx.store.delete(id);
        const status = statusFor(err);
        this.ctx.log.info({ err, subscription: id, status }, 'SUBSCRIBE not accepted');
        return answer(status, status === 503 ? { headers: [{ name: 'Retry-After', value: '30' }] } : {});
      }
      answer(200, { toTag: localTag, headers: this.okHeaders(record, expires) });
      // RFC 6665 §4.2.1.2: a NOTIFY goes at once, whether or not the subscription is authorized yet.
      await this.notify(sends, record, this.stateValue(record), this.currentBody(record));
    });
  }

  private async onRefresh(req: SipRequest, localTag: string, expires: number | undefined, answer: Answer): Promise<void> {
    const callId = headerValue(req, 'Call-ID') ?? '';
    const id = notifierId(callId, localTag, tagOf(req, 'From') ?? '');
    await this.locked(id, async (sends) => {
      const record = await this.ctx.store.get<NotifierData>(id);
      // RFC 6665 §4.1.2.2 and RFC 3261 §12.2.2: no such subscription → 481.
      if (!record) return answer(481);
      let dialog: DialogState | 'out-of-order';
      try {
        dialog = receiveInDialog(record.data.dialog, req);
      } catch {
        return answer(400, { reason: 'Malformed CSeq' });
      }
      if (dialog === 'out-of-order') return answer(500, { reason: 'CSeq Out of Order' });
      const refreshed: NotifierRecord = { ...record, data: { ...record.data, dialog } };
      if (expires === 0) {
        // RFC 8048 §5.3.3: the watcher ends its dialog: NOTIFY closed PIDF with
        // terminated;reason=timeout, and unavailable presence to the XMPP user.
        await this.remove(id);
        answer(200, { headers: [{ name: 'Expires', value: '0' }, ALLOW_EVENTS] });
        await this.notify(sends, refreshed, { state: 'terminated', reason: 'timeout' }, this.body(dialog, []));
        await this.watcherGone(refreshed);
        return;
      }
      const granted = this.grant(expires);
      if (granted === 'too-brief') return answer(423, { headers: [{ name: 'Min-Expires', value: String(this.ctx.limits.minExpires) }] });
      const renewed: NotifierRecord = { ...refreshed, expiresAt: this.ctx.now() + granted * 1000 };
      await this.ctx.store.put(renewed);
      answer(200, { headers: this.okHeaders(renewed, granted) });
      // RFC 6665 §4.2.1.2: a refresh is confirmed by a NOTIFY with the current state.
      await this.notify(sends, renewed, this.stateValue(renewed), this.currentBody(renewed));
    });
  }

  /**
   * A new SUBSCRIBE with Expires: 0 polls state (RFC 6665 §4.4.3, RFC 8048 §7.2): one NOTIFY
   * terminated;reason=timeout, with presence only when this watcher is already authorized, and
   * a probe to the XMPP side when it is authorized but nothing is known yet (a watcher not
   * subscribed gets no probe, see onNew). Nothing is stored.
   */
  private async onFetch(req: SipRequest, from: ReceivedFrom, answer: Answer): Promise<void> {
    const localTag = randomToken(12);
    let dialog: DialogState;
    let watcher: Address;
    let presentity: Address;
    try {
      dialog = uasDialog(req, localTag, { transport: from.transport, ...from.remote });
      presentity = senderAddress(req.uri, '');
      watcher = senderAddress(parseNameAddr(headerValue(req, 'From') ?? '').uri, presentity.domain);
    } catch {
      return answer(400, { reason: 'Malformed Dialog Headers' });
    }
    const active = (await this.pairRecords(presentity, watcher)).filter((r) => r.state === 'active');
    const known = active.find((r) => r.data.resources.length > 0);
    answer(200, { toTag: localTag, headers: [{ name: 'Expires', value: '0' }, ALLOW_EVENTS] });
    const record: NotifierRecord = {
      id: notifierId(dialog.callId, localTag, dialog.remoteTag),
      role: 'notifier',
      watcher: addressKey(watcher),
      presentity: addressKey(presentity),
      state: 'terminated',
      expiresAt: this.ctx.now(),
      data: { dialog, watcher, presentity, resources: [] },
    };
    const sends: Promise<void>[] = [];
    await this.notify(sends, record, { state: 'terminated', reason: 'timeout' }, known ? this.body(dialog, known.data.resources) : undefined);
    await Promise.all(sends);
    if (active.length > 0 && !known) {
      await this.ctx.hooks
        .onEvent(probeEvent({ origin: 'sip', from: watcher, to: presentity, dedupeKey: `sip:${dialog.callId}:${dialog.remoteSeq}:${dialog.remoteTag}:probe`, createdAt: this.ctx.now(), originRef: dialog.callId }))
        .catch((err: unknown) => this.ctx.log.debug({ err }, 'probe for a polling watcher not taken'));
    }
  }

  /** Sends a coalesced presence body if the subscription is still active and it is news. */
  private async notifyPresence(id: string, body: string, sends: Promise<void>[]): Promise<void> {
    const record = await this.ctx.store.get<NotifierData>(id);
    if (!record || record.state !== 'active' || record.data.lastBody === body) return;
    await this.notify(sends, record, this.stateValue(record), body);
  }

  /**
   * Runs `work` under the dialog's lock; the NOTIFYs it starts are awaited after the lock is
   * released, so a watcher slow to answer never holds up changes to its record.
   */
  private async locked(id: string, work: (sends: Promise<void>[]) => Promise<void>): Promise<void> {
    const sends: Promise<void>[] = [];
    await this.serial.run(id, () => work(sends));
    await Promise.all(sends);
  }

  /**
   * Starts one NOTIFY in the record's dialog (RFC 6665 §4.2.2), its outcome pushed on `sends`.
   * The dialog's next CSeq is stored first while the subscription lives, so NOTIFYs leave in
   * CSeq order; the subscriber takes the highest as current (RFC 3856 §6.8).
   */
  private async notify(sends: Promise<void>[], record: NotifierRecord, state: SubscriptionStateValue, body?: string): Promise<void> {
    const local = this.ctx.local(record.data.dialog.peer.transport);
    const headers: SipHeader[] = [
      { name: 'Contact', value: contactFor(record.data.presentity.user, local) },
      { name: 'Event', value: PRESENCE_EVENT },
      { name: 'Subscription-State', value: formatSubscriptionState(state) },
      ...(body === undefined ? [] : [{ name: 'Content-Type', value: PIDF_CONTENT_TYPE }]),
    ];
    const { request, dialog } = inDialogRequest(record.data.dialog, 'NOTIFY', local, headers, Buffer.from(body ?? '', 'utf8'));
    if (state.state !== 'terminated') {
      const live = await this.ctx.store.get<NotifierData>(record.id);
      if (!live) return;
      await this.ctx.store.put({ ...live, data: { ...live.data, dialog, ...(body === undefined ? {} : { lastBody: body }) } });
    }
    sends.push(this.transmit(record, state, request, dialog));
  }

  /** A failure that RFC 6665 §4.2.2 says ends the subscription (Timer F, or one of its statuses) removes it. */
  private async transmit(record: NotifierRecord, state: SubscriptionStateValue, request: SipRequest, dialog: DialogState): Promise<void> {
    let status: number;
    try {
      status = (await this.ctx.exchange(request, dialog.peer)).status;
    } catch (err) {
      const code = err instanceof BridgeError ? err.code : 'INTERNAL';
      this.ctx.log.info({ err, subscription: record.id, code }, 'NOTIFY got no answer: subscription removed');
      if (state.state !== 'terminated') await this.dropAfterFailure(record);
      return;
    }
    if (status >= 300 && REMOVING_STATUSES.has(status) && state.state !== 'terminated') {
      this.ctx.log.info({ subscription: record.id, status }, 'NOTIFY refused: subscription removed');
      await this.dropAfterFailure(record);
    }
  }

  private async dropAfterFailure(record: NotifierRecord): Promise<void> {
    await this.remove(record.id);
    await this.watcherGone(record);
  }

  private async remove(id: string): Promise<void> {
    this.coalescer.forget(id);
    await this.ctx.store.delete(id);
  }

  /**
   * RFC 8048 §5.3.3 step 2: when the watcher's last dialog ends, the XMPP user learns it is
   * unavailable. The authorization itself stays (its note: "remains unchanged").
   */
  private async watcherGone(record: NotifierRecord): Promise<void> {
    const { watcher, presentity, dialog } = record.data;
    if ((await this.pairRecords(presentity, watcher)).length > 0) return;
    const event = presenceEvent({
      origin: 'sip',
      from: watcher,
      to: presentity,
      availability: 'unavailable',
      dedupeKey: `sip:${dialog.callId}:${dialog.localTag}:gone`,
      createdAt: this.ctx.now(),
      originRef: dialog.callId,
    });
    await this.ctx.hooks.onEvent(event).catch((err: unknown) => this.ctx.log.debug({ err }, 'unavailable presence for a gone watcher not taken'));
  }

  /**
   * Live notifier records of one (presentity, watcher) pair, looked up by watcher: a presence
   * change reaches each watcher as its own event, and a popular presentity may have thousands
   * of watchers while one watcher follows few presentities.
   */
  private async pairRecords(presentity: Address, watcher: Address): Promise<NotifierRecord[]> {
    const presentityKey = addressKey(bare(presentity));
    const records = await this.ctx.store.byWatcher<NotifierData>(addressKey(bare(watcher)), 'notifier');
    return records.filter((r) => r.presentity === presentityKey && r.state !== 'terminated');
  }

  /** Expires to grant (RFC 6665 §4.2.1.1): default when absent, clamped to the maximum, 423 below the minimum. */
  private grant(expires: number | undefined): number | 'too-brief' {
    const { defaultExpires, minExpires, maxExpires } = this.ctx.limits;
    if (expires === undefined) return Math.min(defaultExpires, maxExpires);
    // RFC 6665 §4.2.1.1: 423 only if the interval is above zero, below one hour and below our minimum.
    if (expires > 0 && expires < 3600 && expires < minExpires) return 'too-brief';
    return Math.min(expires, maxExpires);
  }

  private okHeaders(record: NotifierRecord, expires: number): SipHeader[] {
    const local = this.ctx.local(record.data.dialog.peer.transport);
    return [
      { name: 'Contact', value: contactFor(record.data.presentity.user, local) },
      { name: 'Expires', value: String(expires) },
      ALLOW_EVENTS,
    ];
  }

  private stateValue(record: NotifierRecord): SubscriptionStateValue {
    const state: Exclude<SubscriptionState, 'terminated'> = record.state === 'active' ? 'active' : 'pending';
    return { state, expires: Math.ceil((record.expiresAt - this.ctx.now()) / 1000) };
  }

  /**
   * The body for the record's current state: presence only once authorized and known. RFC 8048
   * §5.3.2: without meaningful information the NOTIFY MUST be empty (so no fake "closed").
   */
  private currentBody(record: NotifierRecord): string | undefined {
    if (record.state !== 'active' || record.data.resources.length === 0) return undefined;
    return this.body(record.data.dialog, record.data.resources);
  }

  /** The PIDF document, its entity the URI the watcher subscribed to. */
  private body(dialog: DialogState, resources: readonly ResourcePresence[]): string {
    return buildPidf(pidfFromPresence(dialog.localUri, resources));
  }
}

/**
 * The resource list after one presence change: the resource's entry replaced; an unavailable
 * bare presence (no resource) ends them all; resources gone unavailable are dropped except the
 * latest, so its note survives into the closed document.
 */
export function withResource(resources: readonly ResourcePresence[], event: PresenceEvent): ResourcePresence[] {
  const entry: ResourcePresence = {
    availability: event.availability,
    ...(event.from.resource === undefined ? {} : { resource: event.from.resource }),
    ...(event.note === undefined ? {} : { note: event.note }),
    ...(event.priority === undefined ? {} : { priority: event.priority }),
  };
  if (event.from.resource === undefined && event.availability === 'unavailable') return [entry];
  const others = resources.filter((r) => r.resource !== entry.resource && r.availability !== 'unavailable');
  return [entry, ...others].slice(0, MAX_RESOURCES);
}
