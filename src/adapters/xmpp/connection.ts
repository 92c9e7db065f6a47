/**
 * The XEP-0114 component connection: @xmpp/component-core's Component with the stream guard
 * (UTF-8 decoding, hostile XML), our own reconnect with exponential backoff, a XEP-0199 ping
 * that notices a frozen server, a cap on stanzas in flight, and validation of every stanza
 * before it is written.
 */
import { Component } from '@xmpp/component-core';
import xml, { type Element } from '@xmpp/xml';
import { BridgeError } from '../../core/errors.js';
import { randomToken } from '../../core/ids.js';
import type { XmppConfig } from '../../config/schema.js';
import type { Logger } from '../../telemetry/logger.js';
import { installStreamGuard, type GuardedEntity } from './stream-guard.js';
import { validateOutbound } from './validate.js';

export interface ConnectionHandlers {
  onStanza(stanza: Element): void;
  onOnline(): void;
  onOffline(): void;
}

/** How long stop() waits for the server to close the stream after our </stream:stream>. */
const STOP_GRACE_MS = 1000;

/** Stream errors that mean "this name/secret is not accepted", not "try again later". */
const REFUSALS = new Set(['not-authorized', 'host-unknown', 'conflict', 'improper-addressing']);

export function offlineError(detail: string): BridgeError {
  return new BridgeError('XMPP_OFFLINE', `XMPP server connection is down: ${detail}`, {
    condition: 'remote-server-timeout',
    retryable: true,
  });
}

interface Waiter {
  resolve(): void;
  reject(err: BridgeError): void;
}

export class ComponentConnection {
  private entity: Component | undefined;
  private online = false;
  private stopping = false;
  private backoffMs: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempting = false;
  private lastStreamError: { condition: string; text: string } | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pingPending: { id: string; deadline: NodeJS.Timeout } | undefined;
  private inFlight = 0;
  private readonly slotWaiters: Array<(ok: boolean) => void> = [];
  /** The barrier ping in flight, and the writes it confirms once answered. */
  private barrier: { id: string; waiters: Waiter[]; deadline: NodeJS.Timeout } | undefined;
  /** Writes made after the barrier in flight was sent: the next barrier confirms them. */
  private barrierQueue: Waiter[] = [];

  constructor(
    private readonly config: XmppConfig,
    private readonly handlers: ConnectionHandlers,
    private readonly logger: Logger,
  ) {
    this.backoffMs = config.reconnect.initialMs;
  }

  get isOnline(): boolean {
    return this.online;
  }

  /**
   * Connects once. Rejects if the server refuses the component's name or secret (no retry loop
   * runs then); any other failure (server down, timeout) is logged and retried in the
   * background with backoff, the adapter reporting itself unavailable meanwhile.
   */
  async start(): Promise<void> {
    this.stopping = false;
    this.entity = this.createEntity();
    try {
      await this.attempt();
    } catch (err) {
      const refusal = this.refusal();
      if (refusal !== undefined) {
        await this.dropSocket();
        throw new BridgeError(
          'XMPP_COMPONENT_REFUSED',
          `the XMPP server at ${this.config.server.host}:${this.config.server.port} refused the component ` +
            `name or secret for '${this.config.component}' (${refusal}); check xmpp.component and xmpp.secret ` +
            `against the server's Component definition`,
          { condition: 'not-authorized', retryable: false, cause: err },
        );
      }
      this.logger.warn({ err: describe(err) }, 'XMPP server not reachable at start-up; retrying in the background');
      this.handlers.onOffline();
      this.scheduleReconnect();
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.stopPing();
    const entity = this.entity;
    if (entity !== undefined && entity.socket !== null) {
      // RFC 6120 §4.4: send </stream:stream> and give the server a moment to close its side;
      // a server that does not is cut off.
      const closed = entity.stop().catch(() => undefined);
      await Promise.race([closed, new Promise((r) => setTimeout(r, STOP_GRACE_MS).unref())]);
      await this.dropSocket();
    }
    this.markOffline();
  }

  /**
   * Validates and writes one stanza; resolves once written to the socket. At most
   * `maxInFlight` writes are outstanding; as many callers again may wait for a slot, past
   * that the send is refused (retryable) so memory stays bounded while the socket is slow.
   */
  async send(stanza: Element): Promise<void> {
    validateOutbound(stanza, this.config);
    if (!this.online) throw offlineError('not connected');
    if (this.inFlight < this.config.maxInFlight) {
      this.inFlight++;
    } else {
      if (this.slotWaiters.length >= this.config.maxInFlight) {
        throw new BridgeError('XMPP_BUSY', `${this.inFlight} stanzas already in flight to the XMPP server`, {
          condition: 'resource-constraint',
          retryable: true,
        });
      }
      // A finishing write hands its slot straight to the first waiter (see releaseSlot).
      const gotSlot = await new Promise<boolean>((resolve) => this.slotWaiters.push(resolve));
      if (!gotSlot) throw offlineError('connection lost while waiting to send');
    }
    try {
      const entity = this.entity;
      if (!this.online || entity === undefined) throw offlineError('connection lost while waiting to send');
      await entity.send(stanza).catch((err: unknown) => {
        throw new BridgeError('XMPP_OFFLINE', `writing to the XMPP server failed: ${describe(err)}`, {
          condition: 'remote-server-timeout',
          retryable: true,
          cause: err,
        });
      });
    } finally {
      this.releaseSlot();
    }
  }

  /**
   * Writes one stanza and resolves once the server has processed it: a XEP-0199 ping sent after
   * the write is answered, and a server handles a stream's stanzas in order (RFC 6120 §10.1).
   * A socket write alone proves nothing: a stanza written while the server shuts down is lost
   * without a trace. One ping confirms every write made before it, so a burst costs one round
   * trip. Rejects (retryable) when the connection drops first: the stanza may or may not have
   * arrived, and a retry is the at-least-once side of that window.
   */
  async sendConfirmed(stanza: Element): Promise<void> {
    await this.send(stanza);
    await new Promise<void>((resolve, reject) => {
      this.barrierQueue.push({ resolve, reject });
      if (this.barrier === undefined) this.sendBarrier();
    });
  }

  private sendBarrier(): void {
    const entity = this.entity;
    const waiters = this.barrierQueue;
    this.barrierQueue = [];
    if (waiters.length === 0) return;
    if (!this.online || entity === undefined) {
      for (const w of waiters) w.reject(offlineError('connection lost before the server confirmed the stanza'));
      return;
    }
    const id = `confirm-${randomToken(9)}`;
    const { timeoutMs } = this.config.ping;
    const deadline = setTimeout(() => {
      this.failBarrier(offlineError(`no confirmation from the XMPP server within ${timeoutMs} ms`));
      void this.dropSocket();
    }, timeoutMs);
    this.barrier = { id, waiters, deadline };
    const ping = xml('iq', { type: 'get', id, from: this.config.component, to: serverDomain(this.config.component) }, xml('ping', { xmlns: 'urn:xmpp:ping' }));
    entity.send(ping).catch(() => undefined); // a dead socket is the deadline's (or markOffline's) business
  }

  /** Answered: everything written before the barrier was processed; start the next one. */
  private barrierAnswered(): void {
    const barrier = this.barrier;
    if (barrier === undefined) return;
    clearTimeout(barrier.deadline);
    this.barrier = undefined;
    for (const w of barrier.waiters) w.resolve();
    if (this.barrierQueue.length > 0) this.sendBarrier();
  }

  private failBarrier(err: BridgeError): void {
    const barrier = this.barrier;
    this.barrier = undefined;
    if (barrier !== undefined) clearTimeout(barrier.deadline);
    for (const w of [...(barrier?.waiters ?? []), ...this.barrierQueue.splice(0)]) w.reject(err);
  }

  private releaseSlot(): void {
    const next = this.slotWaiters.shift();
    if (next === undefined) this.inFlight--;
    else next(true);
  }

  private createEntity(): Component {
    const { host, port } = this.config.server;
    const hostPart = host.includes(':') ? `[${host}]` : host; // IPv6 literal in a URI (RFC 3986 §3.2.2)
    const entity = new Component({ service: `xmpp://${hostPart}:${port}`, domain: this.config.component });
    installStreamGuard(entity as unknown as GuardedEntity);
    // Without an 'error' listener an EventEmitter error kills the process.
    entity.on('error', (err: Error & { condition?: string; text?: string }) => {
      if (err.name === 'StreamError' && err.condition !== undefined) {
        this.lastStreamError = { condition: err.condition, text: err.text ?? '' };
      }
      this.logger.warn({ err: describe(err) }, 'XMPP component connection error');
    });
    entity.on('stanza', (stanza: Element) => this.onStanza(stanza));
    entity.on('online', () => this.markOnline());
    entity.on('disconnect', () => {
      const wasOnline = this.online;
      this.markOffline();
      if (wasOnline && !this.stopping) {
        this.logger.warn('XMPP component connection lost; reconnecting');
        this.scheduleReconnect();
      }
    });
    return entity;
  }

  /** One connect + stream open + handshake (XEP-0114 §3), bounded in time. */
  private async attempt(): Promise<void> {
    const entity = this.entity;
    if (entity === undefined) return;
    this.attempting = true;
    this.lastStreamError = undefined;
    const limitMs = Math.max(4 * entity.timeout, this.config.ping.timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    try {
      await this.dropSocket();
      const handshake = (async () => {
        await entity.connect(entity.options.service ?? '');
        // Stanzas and the confirming ping behind them go out at once: with Nagle's algorithm
        // a ping waits for the previous segment's delayed ACK (~40 ms), which capped one
        // conversation at ~22 messages/s (bench:e2e, one lane).
        entity.socket?.setNoDelay(true);
        const header = await entity.open({ domain: this.config.component });
        // The config schema requires the secret for every role that connects.
        if (this.config.secret === undefined) throw new Error('xmpp.secret is not configured');
        await entity.authenticate(header.attrs['id'] ?? '', this.config.secret);
      })();
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no handshake within ${limitMs} ms`)), limitMs);
      });
      await Promise.race([handshake, deadline]).catch(async (err: unknown) => {
        handshake.catch(() => undefined);
        await this.dropSocket();
        throw err;
      });
    } finally {
      clearTimeout(timer);
      this.attempting = false;
    }
  }

  private refusal(): string | undefined {
    const e = this.lastStreamError;
    if (e === undefined || !REFUSALS.has(e.condition)) return undefined;
    return e.text === '' ? e.condition : `${e.condition}: ${e.text}`;
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer !== undefined || this.attempting) return;
    const delay = this.backoffMs;
    this.backoffMs = nextBackoff(this.backoffMs, this.config.reconnect.maxMs);
    this.logger.info({ delayMs: delay }, 'XMPP reconnect scheduled');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stopping) return;
      this.attempt().catch((err: unknown) => {
        const refusal = this.refusal();
        this.logger[refusal === undefined ? 'warn' : 'error'](
          { err: describe(err), refusal },
          'XMPP reconnect attempt failed',
        );
        this.scheduleReconnect();
      });
    }, delay);
  }

  /** Destroys the current socket, if any, and waits for the library to see it closed. */
  private async dropSocket(): Promise<void> {
    const socket = this.entity?.socket;
    if (socket === null || socket === undefined) return;
    const closed = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 1000);
      socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
    socket.destroy();
    await closed;
  }

  private markOnline(): void {
    if (this.stopping) {
      // A reconnect attempt that finished after stop(): nobody wants this connection.
      void this.dropSocket();
      return;
    }
    this.online = true;
    this.backoffMs = this.config.reconnect.initialMs;
    this.logger.info('XMPP component online');
    this.startPing();
    this.handlers.onOnline();
  }

  private markOffline(): void {
    this.stopPing();
    this.failBarrier(offlineError('connection lost before the server confirmed the stanza'));
    for (const wake of this.slotWaiters.splice(0)) wake(false);
    if (!this.online) return;
    this.online = false;
    this.handlers.onOffline();
  }

  private onStanza(stanza: Element): void {
    if (stanza.name === 'iq' && this.barrier !== undefined && stanza.attrs['id'] === this.barrier.id) {
      // A result or an error: either way the server has read everything before it.
      this.barrierAnswered();
      return;
    }
    const pending = this.pingPending;
    if (stanza.name === 'iq' && pending !== undefined && stanza.attrs['id'] === pending.id) {
      // XEP-0199 §4.2: a result, or an error such as service-unavailable, both prove the
      // server is alive and routing.
      clearTimeout(pending.deadline);
      this.pingPending = undefined;
      return;
    }
    this.handlers.onStanza(stanza);
  }

  /** XEP-0199 §4.2 component-to-server ping, to the server's domain. */
  private startPing(): void {
    this.stopPing();
    const { intervalMs, timeoutMs } = this.config.ping;
    this.pingTimer = setInterval(() => {
      if (!this.online || this.pingPending !== undefined || this.entity === undefined) return;
      const id = `ping-${randomToken(9)}`;
      const deadline = setTimeout(() => {
        this.pingPending = undefined;
        this.logger.warn({ timeoutMs }, 'XMPP server did not answer ping; dropping the connection');
        void this.dropSocket();
      }, timeoutMs);
      this.pingPending = { id, deadline };
      const ping = xml(
        'iq',
        { type: 'get', id, from: this.config.component, to: serverDomain(this.config.component) },
        xml('ping', { xmlns: 'urn:xmpp:ping' }),
      );
      this.entity.send(ping).catch(() => undefined); // a dead socket is the deadline's business
    }, intervalMs);
  }

  private stopPing(): void {
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    if (this.pingPending !== undefined) clearTimeout(this.pingPending.deadline);
    this.pingPending = undefined;
  }
}

/** Exponential backoff: the delay doubles after each failed attempt, up to `maxMs`. */
export function nextBackoff(currentMs: number, maxMs: number): number {
  return Math.min(currentMs * 2, maxMs);
}

/**
 * The server's own domain, to ping: the component is conventionally a subdomain of it
 * (sip.example.com on example.com). Any answer counts, so a guess that is wrong still gets an
 * error reply from a live server.
 */
export function serverDomain(component: string): string {
  const labels = component.split('.');
  return labels.length > 2 ? labels.slice(1).join('.') : component;
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
