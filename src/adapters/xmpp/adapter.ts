/**
 * The XMPP side of the bridge: an external component (XEP-0114). Inbound stanzas become
 * canonical events handed to the core; canonical events become stanzas. Failures are turned
 * into XMPP error stanzas here, at the edge, and nowhere else.
 */
import type { Element } from '@xmpp/xml';
import type { Adapter, AdapterHooks } from '../../core/adapter.js';
import { toBridgeError } from '../../core/errors.js';
import { failureOf, type CanonicalEvent } from '../../core/events.js';
import type { XmppConfig } from '../../config/schema.js';
import type { Logger } from '../../telemetry/logger.js';
import { ComponentConnection } from './connection.js';
import { answerIq } from './iq.js';
import { SentStanzas } from './sent-stanzas.js';
import { fromStanza, toStanza } from './stanza.js';
import { errorReply } from './stanza-error.js';

/** How long stop() waits for inbound events still being handed to the core. */
const DRAIN_MS = 5_000;

export class XmppAdapter implements Adapter {
  readonly side = 'xmpp' as const;
  private readonly connection: ComponentConnection;
  private readonly logger: Logger;
  private readonly sent = new SentStanzas();
  private readonly inbound = new Set<Promise<void>>();

  /** No I/O here: start() connects. */
  constructor(
    private readonly config: XmppConfig,
    private readonly hooks: AdapterHooks,
    logger: Logger,
  ) {
    this.logger = logger.child({ xmppComponent: config.component });
    this.connection = new ComponentConnection(
      config,
      {
        onStanza: (stanza) => this.onStanza(stanza),
        onOnline: () => this.hooks.onAvailability?.(true),
        onOffline: () => this.hooks.onAvailability?.(false),
      },
      this.logger,
    );
  }

  /** Rejects (BridgeError XMPP_COMPONENT_REFUSED) when the server refuses the name or secret. */
  start(): Promise<void> {
    return this.connection.start();
  }

  async stop(): Promise<void> {
    const drained = Promise.allSettled([...this.inbound]);
    await Promise.race([drained, new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
    await this.connection.stop();
  }

  /**
   * Resolves once the stanza is written to the server's socket. Rejects with a BridgeError:
   * retryable XMPP_OFFLINE while the server is away; non-retryable when the stanza would make
   * the server close the stream (foreign from, too large, illegal character).
   */
  async send(event: CanonicalEvent): Promise<void> {
    const stanza = toStanza(event);
    // Remembered before writing: the server's error reply may arrive before the write callback.
    if (event.kind === 'message') this.sent.remember(event.id, event, Date.now());
    try {
      await this.connection.send(stanza);
    } catch (err) {
      this.sent.forget(event.id);
      throw toBridgeError(err);
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
      case 'message': {
        const { event } = inbound;
        const handled = (async () => {
          try {
            await this.hooks.onEvent(event);
          } catch (err) {
            const failure = toBridgeError(err);
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
