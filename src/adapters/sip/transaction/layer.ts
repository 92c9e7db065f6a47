/**
 * The transaction layer between the transport and the adapter: matches received requests to
 * server transactions (RFC 3261 §17.2.3) and responses to client transactions (§17.1.3), and
 * creates new ones. Only non-INVITE transactions exist here: the bridge refuses INVITE at once.
 */
import type { Logger } from '../../../telemetry/logger.js';
import { headerValue, type SipMessage, type SipRequest, type SipResponse } from '../codec/message.js';
import { parseCSeq, type CSeq } from '../codec/parse.js';
import type { Destination, ReceivedFrom } from '../transport/transport.js';
import { topVia } from '../transport/via.js';
import { NonInviteClientTransaction, type ClientTransactionUser } from './client.js';
import { NonInviteServerTransaction } from './server.js';
import type { Scheduler, TimerValues } from './timers.js';

/** RFC 3261 §8.1.1.7: branch ids of RFC 3261 clients start with this. */
export const MAGIC_COOKIE = 'z9hG4bK';

/** What the layer needs from the transport. */
export interface TransactionTransport {
  sendRequest(request: SipRequest, to: Destination): Promise<void>;
  sendResponse(response: SipResponse, from: ReceivedFrom): Promise<void>;
}

/** A new request handed to the adapter with the transaction that will carry its answer. */
export type RequestHandler = (request: SipRequest, tx: NonInviteServerTransaction, from: ReceivedFrom) => void;

export interface TransactionLayerOptions {
  readonly timers: TimerValues;
  readonly scheduler: Scheduler;
  readonly transport: TransactionTransport;
  readonly logger: Logger;
  readonly onRequest: RequestHandler;
  /** ACK has no transaction of its own here (it would belong to an INVITE we refused). */
  readonly onAck?: (request: SipRequest, from: ReceivedFrom) => void;
  /** Called with a new request when the server transaction table is full, instead of onRequest. */
  readonly onOverload?: (request: SipRequest, tx: NonInviteServerTransaction) => void;
  /**
   * Live server transactions at most (each lives 64·T1 on UDP, so this bounds the sustained
   * request rate to about max / (64·T1)). Default 50 000 (≈ 1 500 requests/s with T1 = 500 ms).
   */
  readonly maxServerTransactions?: number;
}

export class TransactionLayer {
  private readonly servers = new Map<string, NonInviteServerTransaction>();
  private readonly clients = new Map<string, NonInviteClientTransaction>();
  private lastOverloadLog = 0;
  private refusedSinceLog = 0;

  constructor(private readonly opts: TransactionLayerOptions) {}

  get counts(): { servers: number; clients: number } {
    return { servers: this.servers.size, clients: this.clients.size };
  }

  /** Entry point for every message the transport parsed. */
  receive(message: SipMessage, from: ReceivedFrom): void {
    if (message.kind === 'request') this.receiveRequest(message, from);
    else this.receiveResponse(message, from);
  }

  /**
   * Starts a client transaction for `request` (its top Via carries our branch). The user hears
   * exactly one of onFinal, onTimeout, onTransportError.
   */
  request(request: SipRequest, to: Destination, user: ClientTransactionUser): NonInviteClientTransaction {
    const key = clientKey(request);
    if (!key) throw new Error('outbound request has no Via branch or CSeq');
    if (this.clients.has(key)) throw new Error(`duplicate client transaction ${key}`);
    const tx = new NonInviteClientTransaction({
      request,
      reliable: to.transport !== 'udp',
      timers: this.opts.timers,
      scheduler: this.opts.scheduler,
      send: (req) => this.opts.transport.sendRequest(req, to),
      user: {
        ...user,
        onTerminated: () => {
          if (this.clients.get(key) === tx) this.clients.delete(key);
          user.onTerminated?.();
        },
      },
    });
    this.clients.set(key, tx);
    tx.start();
    return tx;
  }

  /**
   * RFC 3261 §9.2: the live transaction a CANCEL targets (same branch and sent-by, or the RFC
   * 2543 fields, and one of `methods`), if any.
   */
  cancelTarget(cancel: SipRequest, methods: readonly string[]): NonInviteServerTransaction | undefined {
    for (const method of methods) {
      const key = serverKey(cancel, method);
      const tx = key === undefined ? undefined : this.servers.get(key);
      if (tx) return tx;
    }
    return undefined;
  }

  /** Forgets every transaction and cancels its timers (shutdown, after draining). */
  abortAll(): void {
    for (const tx of [...this.servers.values()]) tx.abort();
    for (const tx of [...this.clients.values()]) tx.abort();
  }

  private receiveRequest(request: SipRequest, from: ReceivedFrom): void {
    const key = serverKey(request);
    const existing = key === undefined ? undefined : this.servers.get(key);
    if (request.method === 'ACK') {
      // An ACK matching the INVITE we refused acknowledges that refusal: absorbed, never answered.
      if (!existing) this.opts.onAck?.(request, from);
      return;
    }
    if (existing) {
      existing.receiveRetransmission();
      return;
    }
    const tx = new NonInviteServerTransaction({
      reliable: from.transport !== 'udp',
      timers: this.opts.timers,
      scheduler: this.opts.scheduler,
      send: (res) => this.opts.transport.sendResponse(res, from),
      onTerminated: () => {
        if (key !== undefined && this.servers.get(key) === tx) this.servers.delete(key);
      },
      onTransportError: (err) => this.opts.logger.warn({ err, remote: from.remote }, 'could not send SIP response'),
    });
    if (this.servers.size >= (this.opts.maxServerTransactions ?? 50_000)) {
      this.refusedSinceLog++;
      const now = Date.now();
      // One line per second at most: a flood must not turn into a flood of log lines.
      if (now - this.lastOverloadLog >= 1000) {
        this.opts.logger.warn({ remote: from.remote, open: this.servers.size, refused: this.refusedSinceLog }, 'SIP server transaction table full');
        this.lastOverloadLog = now;
        this.refusedSinceLog = 0;
      }
      this.opts.onOverload?.(request, tx);
      return;
    }
    if (key !== undefined) this.servers.set(key, tx);
    this.opts.onRequest(request, tx, from);
  }

  private receiveResponse(response: SipResponse, from: ReceivedFrom): void {
    const key = clientKey(response);
    const tx = key === undefined ? undefined : this.clients.get(key);
    if (!tx) {
      // RFC 3261 §18.1.2: a response matching no transaction is discarded (we are no proxy).
      this.opts.logger.debug({ status: response.status, remote: from.remote }, 'stray SIP response dropped');
      return;
    }
    tx.receiveResponse(response);
  }
}

/** RFC 3261 §17.1.3: top-Via branch and the CSeq method. */
export function clientKey(msg: SipMessage): string | undefined {
  const branch = topVia(msg)?.params['branch'];
  const method = cseqOf(msg)?.method;
  if (!branch || !method) return undefined;
  return `${branch}|${method}`;
}

/**
 * RFC 3261 §17.2.3: branch + sent-by + method for RFC 3261 clients; for RFC 2543 ones (no magic
 * cookie) the Request-URI, tags, Call-ID, CSeq and top Via together. ACK maps to INVITE's key.
 */
export function serverKey(request: SipRequest, asMethod?: string): string | undefined {
  const via = topVia(request);
  if (!via) return undefined;
  const method = asMethod ?? (request.method === 'ACK' ? 'INVITE' : request.method);
  const branch = via.params['branch'];
  const sentBy = `${via.host.toLowerCase()}:${via.port ?? ''}`;
  if (branch && branch.startsWith(MAGIC_COOKIE)) return `${branch}|${sentBy}|${method}`;
  const cseq = cseqOf(request);
  const callId = headerValue(request, 'Call-ID');
  if (!cseq || !callId) return undefined;
  return ['2543', request.uri, tagOf(headerValue(request, 'From')), callId, cseq.seq, method, sentBy, branch ?? ''].join('|');
}

/** `CSeq: 1 MESSAGE` → { seq: 1, method: 'MESSAGE' }, undefined when absent or malformed. */
export function cseqOf(msg: SipMessage): CSeq | undefined {
  const value = headerValue(msg, 'CSeq');
  if (value === undefined) return undefined;
  try {
    return parseCSeq(value);
  } catch {
    return undefined;
  }
}

function tagOf(nameAddr: string | undefined): string {
  return /;\s*tag=([^;\s,]+)/i.exec(nameAddr ?? '')?.[1] ?? '';
}
