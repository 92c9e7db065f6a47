/**
 * The XMPP side of the bridge: an external component (XEP-0114). Inbound stanzas become
 * canonical events handed to the core; canonical events become stanzas. Failures are turned
 * into XMPP error stanzas here, at the edge, and nowhere else.
 */
import type { Element } from '@xmpp/xml';
import type { Adapter, AdapterHooks } from '../../core/adapter.js';
import { toBridgeError, type BridgeError } from '../../core/errors.js';
import { failureOf, presenceEvent, probeEvent, subscriptionEvent, type Address, type CanonicalEvent } from '../../core/events.js';
import type { XmppConfig } from '../../config/schema.js';
import type { Logger } from '../../telemetry/logger.js';
import type { BridgeTracing, SpanHandle } from '../../telemetry/tracing.js';
import { AnnouncedPresence, type Announcement } from './announced-presence.js';
import { ComponentConnection } from './connection.js';
import { answerIq } from './iq.js';
import type { PresenceLikeEvent } from './presence.js';
import { SentStanzas } from './sent-stanzas.js';
import { fromStanza, toStanza } from './stanza.js';
import { errorReply } from './stanza-error.js';

/** How long stop() waits for inbound events still being handed to the core. */
const DRAIN_MS = 5_000;
/** At most this many subscriptions are re-probed after a (re)connect. */
const MAX_REPROBES = 10_000;
/** Stanzas written at once when probing or withdrawing presence in bulk. */
const BULK_CONCURRENCY = 8;

export interface WatchedPair {
  /** The SIP watcher's address at the component. */
  readonly watcher: Address;
  /** The XMPP user it watches. */
  readonly presentity: Address;
}

export interface XmppAdapterOptions {
  /**
   * The subscriptions SIP watchers hold on XMPP users. Probed on every (re)connect: a server
   * does not re-send presence to a component that comes back (issue 4 item 2).
   */
  readonly watched?: () => Promise<ReadonlyArray<WatchedPair>>;
  /**
   * An `xmpp receive <stanza>` span per inbound message or presence stanza (the parent of the
   * router's span: its carrier goes in `event.trace`) and an `xmpp write <stanza>` span per
   * event sent. Off (or absent): nothing is made.
   */
  readonly tracing?: BridgeTracing;
}

export class XmppAdapter implements Adapter {
  readonly side = 'xmpp' as const;
  private readonly connection: ComponentConnection;
  private readonly logger: Logger;
  private readonly sent = new SentStanzas();
  private readonly inbound = new Set<Promise<void>>();
  private readonly announced = new AnnouncedPresence();
  /** Bumped on every online/offline change and on stop(): a re-probe run of an older one ends. */
  private generation = 0;
  private stopping = false;
  /** Only when tracing is on: nothing per stanza otherwise. */
  private readonly tracing: BridgeTracing | undefined;

  /** No I/O here: start() connects. */
  constructor(
    private readonly config: XmppConfig,
    private readonly hooks: AdapterHooks,
    logger: Logger,
    private readonly options: XmppAdapterOptions = {},
  ) {
    this.logger = logger.child({ xmppComponent: config.component });
    this.tracing = options.tracing?.enabled === true ? options.tracing : undefined;
    this.connection = new ComponentConnection(
      config,
      {
        onStanza: (stanza) => this.onStanza(stanza),
        onOnline: () => {
          this.hooks.onAvailability?.(true);
          void this.probeWatched(++this.generation);
        },
        onOffline: () => {
          this.generation++;
          this.hooks.onAvailability?.(false);
        },
      },
      this.logger,
    );
  }

  /** Rejects (BridgeError XMPP_COMPONENT_REFUSED) when the server refuses the name or secret. */
  start(): Promise<void> {
    this.stopping = false;
    return this.connection.start();
  }

  /** Drains inbound work, withdraws the presence the component announced, then disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.generation++;
    const drained = Promise.allSettled([...this.inbound]);
    await Promise.race([drained, new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
    await Promise.race([this.withdrawAnnounced(), new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
    await this.connection.stop();
  }

  /**
   * Resolves once the server has processed the stanza (a ping after it answered: see
   * ComponentConnection.sendConfirmed), so a job is acknowledged only for what the server
   * really took. Rejects with a BridgeError: retryable XMPP_OFFLINE while the server is away or
   * when the connection drops before the confirmation; non-retryable when the stanza would
   * make the server close the stream (foreign from, too large, illegal character).
   */
  async send(event: CanonicalEvent): Promise<void> {
    const stanza = toStanza(event);
    const span = this.tracing === undefined ? undefined : this.stanzaSpan('write', stanza, event.trace, 'client');
    // Remembered before writing: the server's error reply may arrive before the write callback.
    if (event.kind === 'message' || (event.kind === 'subscription' && event.action === 'subscribe')) {
      this.sent.remember(event.id, event, Date.now());
    }
    // Noted before writing too: a presence that may have reached the server is withdrawn on stop.
    if (event.kind === 'presence') this.announced.note(event);
    if (event.kind === 'subscription' && (event.action === 'deny' || event.action === 'cancel')) {
      this.announced.forget(event.from, event.to);
    }
    try {
      await this.connection.sendConfirmed(stanza);
      span?.end();
    } catch (err) {
      this.sent.forget(event.id);
      const failure = toBridgeError(err);
      span?.span.setAttribute('xmpp.error_condition', failure.condition);
      span?.end(failure);
      throw failure;
    }
  }

  private onStanza(stanza: Element): void {
    if (stanza.name === 'iq') {
      const reply = answerIq(stanza);
      if (reply !== undefined) this.reply(reply, 'iq reply');
      return;
    }
    const inbound = fromStanza(stanza, { component: this.config.component, now: Date.now() });
    switch (inbound.kind) {
      case 'ignored':
        this.logger.debug({ reason: inbound.reason, id: stanza.attrs['id'] }, 'XMPP stanza ignored');
        return;
      case 'message-error':
        this.onMessageError(inbound.id, inbound.condition, inbound.text);
        return;
      case 'presence-error':
        this.onPresenceError(inbound.id, inbound.condition, inbound.text);
        return;
      case 'presence':
        this.onPresence(stanza, inbound.event);
        return;
      case 'message': {
        const span = this.tracing === undefined ? undefined : this.stanzaSpan('receive', stanza, undefined, 'server');
        const event = traced(inbound.event, span);
        const handled = (async () => {
          try {
            await this.hooks.onEvent(event);
            handedOn(span);
          } catch (err) {
            const failure = toBridgeError(err);
            refused(span, failure);
            this.logger.info({ code: failure.code, condition: failure.condition, id: event.id }, 'inbound XMPP message refused');
            // The core's message is meant for the sender; an internal failure's is not.
            const text = failure.code === 'INTERNAL' ? 'the bridge could not handle this message' : failure.message;
            this.reply(errorReply(stanza, failure.condition, text), 'error reply');
          }
        })();
        this.track(handled);
        return;
      }
    }
  }

  private onPresence(stanza: Element, inbound: PresenceLikeEvent): void {
    if (inbound.kind === 'subscription' && inbound.action === 'unsubscribe') this.announced.forget(inbound.to, inbound.from);
    const span = this.tracing === undefined ? undefined : this.stanzaSpan('receive', stanza, undefined, 'server');
    const event = traced(inbound, span);
    const handled = (async () => {
      try {
        await this.hooks.onEvent(event);
        handedOn(span);
      } catch (err) {
        const failure = toBridgeError(err);
        refused(span, failure);
        this.logger.info({ code: failure.code, condition: failure.condition, kind: event.kind, id: event.id }, 'inbound XMPP presence refused');
        // Only a subscription request waits for an answer (RFC 6121 §3.1.3); an error to
        // presence or a probe would tell the sender nothing it can act on.
        if (event.kind === 'subscription' && event.action === 'subscribe') {
          const text = failure.code === 'INTERNAL' ? 'the bridge could not handle this request' : failure.message;
          this.reply(errorReply(stanza, failure.condition, text), 'error reply');
        }
      }
    })();
    this.track(handled);
  }

  /**
   * An error reply to a presence stanza we sent. RFC 8048 has no flow for it; RFC 6121 §3.1.2
   * has the user's server answer an undeliverable subscription request with an error. For a
   * SIP watcher that is a request that will never be approved, so it becomes a `deny`
   * (NOTIFY terminated;reason=rejected, RFC 8048 §5.3.1), which also does not reveal whether
   * the user exists. Errors to presence and probes change nothing and are only logged.
   */
  private onPresenceError(id: string | undefined, condition: Parameters<typeof failureOf>[1]['condition'], text?: string): void {
    const original = id === undefined ? undefined : this.sent.take(id, Date.now());
    if (original?.kind !== 'subscription') {
      this.logger.debug({ id, condition, text }, 'XMPP presence error for a presence, probe or expired subscription request');
      return;
    }
    this.logger.info({ id, condition, text, ref: original.id }, 'XMPP subscription request bounced; treated as denied');
    const deny = subscriptionEvent({
      origin: 'xmpp',
      from: original.to,
      to: original.from,
      action: 'deny',
      dedupeKey: `xmpp-error:${original.id}`,
      createdAt: Date.now(),
      ...(id === undefined ? {} : { originRef: id }),
    });
    // RFC 6120 §8.3.1 rule 8: an error is never answered with an error, so a refusal is only logged.
    const handled = this.hooks.onEvent(deny).catch((err: unknown) => {
      this.logger.warn({ err: toBridgeError(err).message, ref: original.id }, 'deny event refused by the core');
    });
    this.track(handled);
  }

  /**
   * Probes every watched XMPP user after a (re)connect, a few at a time, until done or until
   * the connection changes again (`generation`).
   */
  private async probeWatched(generation: number): Promise<void> {
    const watched = this.options.watched;
    if (watched === undefined) return;
    let pairs: ReadonlyArray<WatchedPair>;
    try {
      pairs = await watched();
    } catch (err) {
      this.logger.warn({ err: toBridgeError(err).message }, 'could not list watched XMPP users to probe');
      return;
    }
    if (pairs.length > MAX_REPROBES) this.logger.warn({ watched: pairs.length, probed: MAX_REPROBES }, 'too many watched XMPP users; probing the first ones only');
    const current = (): boolean => generation === this.generation && !this.stopping;
    const { sent, failed } = await this.sendBulk(pairs.slice(0, MAX_REPROBES), current, ({ watcher, presentity }) =>
      probeEvent({ origin: 'sip', from: watcher, to: presentity, dedupeKey: `reprobe:${generation}`, createdAt: Date.now() }),
    );
    this.logger.info({ sent, failed, interrupted: !current() }, 'watched XMPP users probed after connect');
  }

  /** RFC 6121 §4.5: unavailable from every component JID still announced as available. */
  private async withdrawAnnounced(): Promise<void> {
    const announcements = this.announced.takeAll();
    if (announcements.length === 0) return;
    if (!this.connection.isOnline) {
      this.logger.warn({ count: announcements.length }, 'XMPP connection down at stop; announced presence not withdrawn');
      return;
    }
    const { sent, failed } = await this.sendBulk(announcements, () => this.connection.isOnline, ({ from, to }: Announcement) =>
      presenceEvent({ origin: 'sip', from, to, availability: 'unavailable', dedupeKey: 'withdraw', createdAt: Date.now() }),
    );
    this.logger.info({ sent, failed }, 'announced presence withdrawn at stop');
  }

  /** Sends one event per item, BULK_CONCURRENCY at a time, while `go()` holds. */
  private async sendBulk<T>(items: readonly T[], go: () => boolean, render: (item: T) => PresenceLikeEvent): Promise<{ sent: number; failed: number }> {
    let next = 0;
    let sent = 0;
    let failed = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length && go() && this.connection.isOnline) {
        const item = items[next++] as T;
        try {
          await this.connection.send(toStanza(render(item)));
          sent++;
        } catch (err) {
          failed++;
          this.logger.debug({ err: toBridgeError(err).message }, 'bulk presence stanza not sent');
        }
      }
    };
    await Promise.all(Array.from({ length: BULK_CONCURRENCY }, worker));
    return { sent, failed };
  }

  /** An error reply to a message we sent: the original's sender learns of it. */
  private onMessageError(id: string | undefined, condition: Parameters<typeof failureOf>[1]['condition'], text?: string): void {
    const original = id === undefined ? undefined : this.sent.take(id, Date.now());
    if (original === undefined) {
      this.logger.debug({ id, condition }, 'XMPP error for an unknown or expired stanza');
      return;
    }
    const failure = failureOf(original, text === undefined ? { condition } : { condition, text }, Date.now());
    // RFC 6120 §8.3.1 rule 8: an error is never answered with an error, so a refusal is only logged.
    const handled = this.hooks.onEvent(failure).catch((err: unknown) => {
      this.logger.warn({ err: toBridgeError(err).message, ref: original.id }, 'failure event refused by the core');
    });
    this.track(handled);
  }

  /** `xmpp receive|write <stanza>`: the stanza's id, type and addresses. */
  private stanzaSpan(what: 'receive' | 'write', stanza: Element, parent: CanonicalEvent['trace'], role: 'server' | 'client'): SpanHandle {
    const attrs = stanza.attrs as Record<string, string | undefined>;
    return (this.tracing as BridgeTracing).startSpan(
      `xmpp ${what} ${stanza.name}`,
      { 'xmpp.stanza': stanza.name, 'xmpp.stanza_id': attrs['id'], 'xmpp.type': attrs['type'], 'xmpp.from': attrs['from'], 'xmpp.to': attrs['to'] },
      parent,
      role,
    );
  }

  private reply(stanza: Element, what: string): void {
    this.connection.send(stanza).catch((err: unknown) => {
      this.logger.warn({ err: toBridgeError(err).message, what }, 'could not send XMPP reply');
    });
  }

  private track(p: Promise<void>): void {
    this.inbound.add(p);
    void p.finally(() => this.inbound.delete(p));
  }
}

/** The event with the receive span's context, so the router's span becomes its child. */
function traced<E extends CanonicalEvent>(event: E, span: SpanHandle | undefined): E {
  const carrier = span?.carrier();
  if (span !== undefined) span.span.setAttribute('bridge.event', event.id);
  return carrier === undefined ? event : { ...event, trace: carrier };
}

function handedOn(span: SpanHandle | undefined): void {
  if (span === undefined) return;
  span.span.setAttribute('bridge.outcome', 'handed-on');
  span.end();
}

/**
 * A refusal by policy or mapping is the sender's error reply, not the bridge failing: the span
 * records the condition, unfailed. An internal error fails it.
 */
function refused(span: SpanHandle | undefined, failure: BridgeError): void {
  if (span === undefined) return;
  span.span.setAttribute('bridge.outcome', 'refused');
  span.span.setAttribute('xmpp.error_condition', failure.condition);
  span.end(failure.code === 'INTERNAL' ? failure : undefined);
}
