/**
 * The router: identity mapping (src/mapping) for every inbound event, then the queue towards
 * the other side. Failures are already addressed in their receiver's terms and go straight back.
 */
import type { AddressTranslator } from '../mapping/address.js';
import type { Logger } from '../telemetry/logger.js';
import { DedupeWindow } from './dedupe.js';
import { formatAddress, type Address, type CanonicalEvent, type Side } from './events.js';
import type { Queue } from './queue/queue.js';

/** The queue each side's adapter consumes. */
export const QUEUE_FOR: Readonly<Record<Side, string>> = { sip: 'to-sip', xmpp: 'to-xmpp' };

export interface RouterOptions {
  translator: AddressTranslator;
  queue: Queue;
  logger: Logger;
  now?: () => number;
  /** How long a dedupe key is remembered; SIP's longest transaction (64·T1) is well inside it. */
  dedupeTtlMs?: number;
  dedupeMaxEntries?: number;
}

export class Router {
  private readonly now: () => number;
  private readonly seen: DedupeWindow;

  constructor(private readonly options: RouterOptions) {
    this.now = options.now ?? Date.now;
    this.seen = new DedupeWindow({ ttlMs: options.dedupeTtlMs ?? 10 * 60_000, maxEntries: options.dedupeMaxEntries ?? 100_000 });
  }

  /**
   * Routes one inbound event. Resolves once it is queued; rejects with a BridgeError when it
   * cannot be mapped (the adapter answers the sender at once).
   */
  async route(event: CanonicalEvent): Promise<void> {
    const now = this.now();
    if (event.kind === 'failure') {
      await this.enqueue(event);
      return;
    }
    if (this.seen.has(event.dedupeKey, now)) {
      this.options.logger.info({ event: event.id, dedupeKey: event.dedupeKey }, 'repeated message absorbed');
      return;
    }
    const routed = { ...event, ...this.translate(event), source: { from: event.from, to: event.to } };
    await this.enqueue(routed);
    this.seen.add(event.dedupeKey, now);
    this.options.logger.info(
      { event: event.id, kind: event.kind, from: formatAddress(routed.from), to: formatAddress(routed.to) },
      'event routed',
    );
  }

  private translate(event: CanonicalEvent): { from: Address; to: Address } {
    const t = this.options.translator;
    return event.origin === 'xmpp'
      ? { from: t.xmppSenderToSip(event.from), to: t.xmppRecipientToSip(event.to) }
      : { from: t.sipSenderToXmpp(event.from), to: t.sipRecipientToXmpp(event.to) };
  }

  private async enqueue(event: CanonicalEvent): Promise<void> {
    await this.options.queue.enqueue(QUEUE_FOR[event.to.side], event, {
      jobId: event.id,
      // One conversation is one lane: its messages arrive in order (STYLE.md habit 10).
      orderingKey: conversationKey(event.from, event.to),
    });
  }
}

function conversationKey(a: Address, b: Address): string {
  const x = `${a.user}@${a.domain}`;
  const y = `${b.user}@${b.domain}`;
  return x < y ? `${x}|${y}` : `${y}|${x}`;
}
