/**
 * The SIP side of the bridge: a trunk peer that takes page-mode MESSAGE requests in as
 * canonical events and sends canonical messages out as MESSAGE requests, and carries presence
 * both ways with SUBSCRIBE/NOTIFY (PresenceNotifier, PresenceSubscriber). IM and presence only:
 * every other method is refused (toll-fraud guard, DESIGN.md); PUBLISH too, since the bridge is
 * no presence server.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { SipConfig } from '../../config/schema.js';
import type { Adapter, AdapterHooks } from '../../core/adapter.js';
import { BridgeError } from '../../core/errors.js';
import type { Address, CanonicalEvent, MessageEvent, SubscriptionEvent } from '../../core/events.js';
import { AuditLog } from '../../core/audit.js';
import { randomToken } from '../../core/ids.js';
import { ExpiryScheduler } from '../../core/state/expiry.js';
import { MemorySubscriptionStore } from '../../core/state/memory-subscriptions.js';
import type { SubscriptionRecord, SubscriptionStore } from '../../core/state/subscriptions.js';
import { conditionForSipStatus } from '../../mapping/error-conditions.js';
import type { Logger } from '../../telemetry/logger.js';
import type { BridgeMetrics } from '../../telemetry/metrics.js';
import type { BridgeTracing, SpanHandle, TraceCarrier } from '../../telemetry/tracing.js';
import { headerValue, headerValues, type SipHeader, type SipRequest, type SipResponse } from './codec/message.js';
import { buildResponse } from './codec/response.js';
import { serializeMessage } from './codec/serialize.js';
import { formatVia, parseUri } from './codec/uri.js';
import { locate, SipDns, type DnsAnswers } from './locate.js';
import { peerFacts } from './peer-facts.js';
import { fromSipRequest, toSipRequest, ACCEPTED_CONTENT_TYPE } from './page-mode.js';
import { PIDF_CONTENT_TYPE } from './pidf.js';
import { ALLOW_EVENTS, DEFAULT_PRESENCE_LIMITS, statusFor, type Answer, type PresenceContext, type PresenceLimits } from './presence/context.js';
import { PresenceNotifier, type NotifierRecord } from './presence/notifier.js';
import { PartnerSubscriptions, type PartnerOf } from './presence/partner-cap.js';
import { PresenceSubscriber, type SubscriberRecord } from './presence/subscriber.js';
import { MAGIC_COOKIE, TransactionLayer } from './transaction/layer.js';
import type { NonInviteServerTransaction } from './transaction/server.js';
import { realScheduler, type Scheduler } from './transaction/timers.js';
import {
  SipTransport,
  type BoundPort,
  type Destination,
  type ReceivedFrom,
  type TransportKind,
  type TransportOptions,
} from './transport/transport.js';
import { topVia, type Endpoint } from './transport/via.js';

/** Methods this trunk peer answers; everything else gets 405 with this list (RFC 3261 §21.4.6). */
export const ALLOWED_METHODS = 'MESSAGE, OPTIONS, SUBSCRIBE, NOTIFY';

/** Requests whose receipt starts a trace: the ones that carry IM or presence (PUBLISH only to be refused). */
const TRACED_METHODS: ReadonlySet<string> = new Set(['MESSAGE', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH']);

/** Subscriptions ended at stop, at most per role (releaseSubscriptionsOnStop). */
const MAX_RELEASED = 10_000;

/** Subscriptions held by the default in-memory store, at most (a SUBSCRIBE past it gets 503). */
export const DEFAULT_MAX_SUBSCRIPTIONS = 100_000;

/** RFC 3261 §18.1.1: larger requests go over TCP when the path MTU is unknown. */
export const UDP_REQUEST_LIMIT = 1300;

export interface SipAdapterOptions {
  /** The clock transactions run on (tests may inject one). */
  readonly scheduler?: Scheduler;
  readonly transport?: TransportOptions;
  /** Live server transactions at most; past it requests get 503 (see TransactionLayer). */
  readonly maxServerTransactions?: number;
  /** Where presence subscriptions live; default a MemorySubscriptionStore of DEFAULT_MAX_SUBSCRIPTIONS. */
  readonly subscriptions?: SubscriptionStore;
  /** A remote watcher's federation partner, whose `limits.maxSubscriptions` caps what it holds (issue 6 item 5). */
  readonly partnerOf?: PartnerOf;
  /** Subscription durations in seconds (defaults: 3600, minimum 60, maximum 86 400). */
  readonly presence?: Partial<PresenceLimits>;
  /** Transactions by method and final status (ours as client and as server). */
  readonly metrics?: BridgeMetrics;
  /**
   * A `sip receive <METHOD>` span per MESSAGE, SUBSCRIBE, NOTIFY or PUBLISH taken in (the parent
   * of the router's span: its carrier goes in `event.trace`) and a `sip request <METHOD>` span
   * per client transaction. Off (or absent): nothing is made.
   */
  readonly tracing?: BridgeTracing;
  /**
   * At stop, end every subscription (watchers told to come back in 30 s, our own SUBSCRIBEs
   * withdrawn): right when the store dies with the process (memory), wrong when other SIP edges
   * share it (Redis). Default false.
   */
  readonly releaseSubscriptionsOnStop?: boolean;
  /**
   * The SIP URI to route requests for a target domain through (a federation partner's next
   * hop), or undefined for the usual way: sip.outboundProxy, else RFC 3263 on the domain.
   */
  readonly routeFor?: (domain: string) => string | undefined;
  /**
   * SHA-256 fingerprints pinned for a target domain's server (its partner's `trust.fingerprints`):
   * a TLS connection for that domain must show one of them, as the partner must coming in.
   */
  readonly pinsFor?: (domain: string) => readonly string[] | undefined;
  /** The process's audit log of denials (issue 6 item 8); one of the adapter's own otherwise. */
  readonly audit?: AuditLog;
}

export class SipAdapter implements Adapter {
  readonly side = 'sip' as const;
  private readonly log: Logger;
  private readonly audit: AuditLog;
  private readonly transport: SipTransport;
  private readonly layer: TransactionLayer;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly subscriptions: SubscriptionStore;
  private readonly expiry: ExpiryScheduler;
  private readonly notifier: PresenceNotifier;
  private readonly subscriber: PresenceSubscriber;
  private running = false;
  private readonly releaseOnStop: boolean;
  private readonly metrics: BridgeMetrics | undefined;
  private readonly routeFor: ((domain: string) => string | undefined) | undefined;
  private readonly pinsFor: ((domain: string) => readonly string[] | undefined) | undefined;
  /** RFC 3263 DNS answers (sip.dns), made on first use. */
  private dnsAnswers: DnsAnswers | undefined;
  /** RFC 3263 §4.3: the targets after a located one, tried in turn when it fails. */
  private readonly alternates = new WeakMap<Destination, readonly Destination[]>();
  /** Only when tracing is on: nothing per request otherwise. */
  private readonly tracing: BridgeTracing | undefined;
  /**
   * The span context the current work descends from (an inbound request's receive span, an
   * outbound event's delivery span), so events the presence handlers hand on and the requests
   * they send join the right trace without threading a span through presence/*.
   */
  private readonly traceScope: AsyncLocalStorage<TraceCarrier> | undefined;

  /** No I/O here: sockets are opened by start(). */
  constructor(
    private readonly config: SipConfig,
    private readonly hooks: AdapterHooks,
    logger: Logger,
    options: SipAdapterOptions = {},
  ) {
    this.log = logger; // the caller names the component (app.ts passes a child logger)
    this.audit = options.audit ?? new AuditLog(logger);
    this.transport = new SipTransport(config, this.log, (msg, from) => this.layer.receive(msg, from), { ...options.transport, audit: this.audit });
    this.layer = new TransactionLayer({
      timers: config.timers,
      scheduler: options.scheduler ?? realScheduler,
      transport: this.transport,
      logger: this.log,
      onRequest: (req, tx, from) => this.onRequest(req, tx, from),
      onOverload: (req, tx) => this.respond(tx, req, 503, { headers: [{ name: 'Retry-After', value: '5' }] }),
      ...(options.maxServerTransactions === undefined ? {} : { maxServerTransactions: options.maxServerTransactions }),
    });
    this.releaseOnStop = options.releaseSubscriptionsOnStop === true;
    this.metrics = options.metrics;
    this.routeFor = options.routeFor;
    this.pinsFor = options.pinsFor;
    this.tracing = options.tracing?.enabled === true ? options.tracing : undefined;
    this.traceScope = this.tracing === undefined ? undefined : new AsyncLocalStorage<TraceCarrier>();
    this.subscriptions = options.subscriptions ?? new MemorySubscriptionStore({ maxRecords: DEFAULT_MAX_SUBSCRIPTIONS });
    const presence: PresenceContext = {
      store: this.subscriptions,
      hooks: this.tracedHooks(hooks),
      log: this.log,
      limits: presenceLimits(options.presence),
      timerN: 64 * config.timers.t1Ms,
      now: () => Date.now(),
      local: (transport) => ({ transport, sentBy: this.transport.sentBy(transport) }),
      route: (target) => this.nextHop(target),
      exchange: (request, to) => this.exchange(request, to),
      poke: () => this.expiry.poke(),
      ...(options.partnerOf === undefined ? {} : { partners: new PartnerSubscriptions(this.subscriptions, options.partnerOf, this.log, this.audit) }),
    };
    this.notifier = new PresenceNotifier(presence);
    this.subscriber = new PresenceSubscriber(presence);
    this.expiry = new ExpiryScheduler({
      store: this.subscriptions,
      logger: this.log,
      onExpired: (record) => this.track(this.onExpired(record)),
    });
  }

  async start(): Promise<void> {
    await this.transport.start();
    this.running = true;
    this.expiry.start();
    const listening = this.transport.boundPorts();
    this.log.info({ listening }, 'SIP adapter listening');
    if (!this.config.advertisedHost && listening.some((b) => b.host === '0.0.0.0' || b.host === '::')) {
      this.log.warn('listening on a wildcard address without sip.advertisedHost: Via sent-by will not be reachable');
    }
  }

  /** Stops taking new work, waits (at most Timer F) for in-flight work, then closes sockets. */
  async stop(): Promise<void> {
    if (!this.running) return this.transport.stop();
    this.running = false;
    await this.expiry.stop();
    if (this.releaseOnStop) await this.releaseSubscriptions();
    const drained = Promise.allSettled([...this.inflight, this.notifier.idle()]);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 64 * this.config.timers.t1Ms + 1000);
    });
    await Promise.race([drained, bound]);
    clearTimeout(timer);
    this.layer.abortAll();
    await this.transport.stop();
    this.log.info('SIP adapter stopped');
  }

  /** Bounded in count and, by the callers' transactions, in time (Timer F each, in parallel). */
  private async releaseSubscriptions(): Promise<void> {
    try {
      const [watchers, ours] = await Promise.all([this.notifier.releaseAll(MAX_RELEASED), this.subscriber.releaseAll(MAX_RELEASED)]);
      if (watchers + ours > 0) this.log.info({ watchers, ours }, 'presence subscriptions released at stop');
    } catch (err) {
      this.log.warn({ err }, 'could not release presence subscriptions at stop');
    }
  }

  /** Sockets actually bound, e.g. `[{ transport: 'udp', host: '127.0.0.1', port: 40123 }]` (port 0 resolved). */
  boundPorts(): BoundPort[] {
    return this.transport.boundPorts();
  }

  /** Live server and client transactions, for tests and metrics. */
  get transactionCounts(): { servers: number; clients: number } {
    return this.layer.counts;
  }

  /** Open TCP connections (inbound and outbound), for tests and metrics. */
  get openConnections(): number {
    return this.transport.openConnections;
  }

  send(event: CanonicalEvent): Promise<void> {
    if (event.kind === 'failure') {
      // The SIP sender got its 202 when the event was queued, and RFC 7572 page-mode IM has no
      // way to report a later delivery failure, so it can only be logged.
      this.log.warn(
        { ref: event.ref, id: event.id, condition: event.condition, originRef: event.originRef },
        'delivery failure for a SIP-originated message cannot be reported to the sender',
      );
      return Promise.resolve();
    }
    if (!this.running) {
      return Promise.reject(new BridgeError('SIP_STOPPED', 'SIP adapter is not running', { condition: 'service-unavailable', retryable: true }));
    }
    // The requests this event causes are children of its delivery span (`sip request …`).
    const scope = this.traceScope;
    if (scope !== undefined && event.trace !== undefined && scope.getStore() !== event.trace) return scope.run(event.trace, () => this.send(event));
    switch (event.kind) {
      case 'message':
        return this.track(this.sendMessage(event));
      case 'presence':
        return this.track(this.notifier.onPresence(event));
      case 'subscription':
        return this.track(this.sendSubscription(event));
      case 'probe':
        return this.track(this.subscriber.onProbe(event));
    }
  }

  /**
   * The presentity's answers (approve, deny, cancel) go to SIP watchers of XMPP users; the
   * watcher's requests (subscribe, unsubscribe) become our own SIP subscriptions.
   */
  private sendSubscription(event: SubscriptionEvent): Promise<void> {
    switch (event.action) {
      case 'approve':
      case 'deny':
      case 'cancel':
        return this.notifier.onAuthorization(event);
      case 'subscribe':
        return this.subscriber.onSubscribe(event);
      case 'unsubscribe':
        return this.subscriber.onUnsubscribe(event);
    }
  }

  private onExpired(record: SubscriptionRecord): Promise<void> {
    return record.role === 'notifier'
      ? this.notifier.onExpired(record as NotifierRecord)
      : this.subscriber.onExpired(record as SubscriberRecord);
  }

  private async sendMessage(event: MessageEvent): Promise<void> {
    const { to, route } = await this.nextHop(event.to);
    const request = toSipRequest(event, { transport: to.transport, sentBy: this.transport.sentBy(to.transport), route });
    const res = await this.exchange(request, to);
    if (res.status >= 300) throw rejected(res);
    this.log.debug({ id: event.id, to: `${to.host}:${to.port}` }, 'MESSAGE delivered');
  }

  /**
   * RFC 3263 §4.3: a request to a located target goes to the next target when the first fails
   * with a transport error before anything was sent (refused, connect timeout), or answers 503
   * (it did not take the request). Each retry is a new transaction: a new Via branch, and the
   * Via transport of the target. A timeout is not retried: the request may have arrived.
   */
  private async exchange(request: SipRequest, to: Destination): Promise<SipResponse> {
    const next = this.alternates.get(to) ?? [];
    let attempt = request;
    let target = to;
    for (let i = 0; ; i++) {
      let failure: string;
      try {
        const res = await this.exchangeWith(attempt, target);
        if (res.status !== 503 || i >= next.length) return res;
        failure = '503';
      } catch (err) {
        if (i >= next.length || !(err instanceof BridgeError && err.code === 'SIP_TRANSPORT' && err.retryable)) throw err;
        failure = err.message;
      }
      const failed = target;
      target = next[i]!;
      attempt = withVia(request, target.transport, this.transport.sentBy(target.transport));
      this.log.info({ method: request.method, failed: `${failed.transport}:${failed.host}:${failed.port}`, failure, next: `${target.transport}:${target.host}:${target.port}` }, 'SIP next hop failed: trying the next target (RFC 3263 §4.3)');
    }
  }

  /**
   * One request's transaction: its final response, or the BridgeError for a timeout or
   * transport failure. RFC 3261 §18.1.1: a request over 1300 bytes (path MTU unknown) MUST use
   * a congestion controlled transport; a UDP peer also listens on TCP at the same port
   * (§18.2.1)…
   */
  private async exchangeWith(request: SipRequest, to: Destination): Promise<SipResponse> {
    if (to.transport === 'udp' && serializeMessage(request).length > UDP_REQUEST_LIMIT) {
      try {
        return await this.transaction(withVia(request, 'tcp', this.transport.sentBy('tcp')), { ...to, transport: 'tcp' });
      } catch (err) {
        // …but if the connection is refused, the request SHOULD be retried over UDP.
        if (!(err instanceof BridgeError && err.code === 'SIP_TRANSPORT' && err.retryable)) throw err;
        this.log.debug({ method: request.method, err }, `TCP refused for a large ${request.method}: retrying over UDP`);
      }
    }
    return this.transaction(request, to);
  }

  private transaction(request: SipRequest, to: Destination): Promise<SipResponse> {
    const method = request.method;
    const span = this.tracing === undefined ? undefined : this.requestSpan(request, to);
    return new Promise<SipResponse>((resolve, reject) => {
      this.layer.request(request, to, {
        onFinal: (res) => {
          this.metrics?.sipTransaction(method, res.status);
          span?.span.setAttribute('sip.status_code', res.status);
          span?.end();
          resolve(res);
        },
        // RFC 3261 §8.1.3.1: a transaction timeout is treated as 408. Not retryable: the
        // MESSAGE may have arrived and only the answer was lost, so a retry could duplicate it.
        onTimeout: () => {
          this.metrics?.sipTransaction(method, 'timeout');
          span?.end('no final response (Timer F)');
          reject(
            new BridgeError('SIP_TIMEOUT', `no final response to ${method} within ${64 * this.config.timers.t1Ms} ms`, {
              condition: conditionForSipStatus(408),
              sipStatus: 408,
              retryable: false,
            }),
          );
        },
        // §8.1.3.1: a transport error is treated as 503; retry only if nothing left the host.
        onTransportError: (err, sentBefore) => {
          span?.end(err);
          reject(
            err instanceof BridgeError
              ? err
              : new BridgeError('SIP_TRANSPORT', `sending ${method} to ${to.host}:${to.port} failed: ${err.message}`, {
                  condition: conditionForSipStatus(503),
                  retryable: !sentBefore,
                  cause: err,
                }),
          );
        },
      });
    });
  }

  /**
   * Where a request for `address` goes: the partner's route for its domain (routeFor), else the
   * outbound proxy, else the Request-URI's host; either as RFC 3263 locates it. A route URI with
   * `lr` also goes in a Route header (loose routing); the Request-URI stays the user's.
   */
  private async nextHop(address: Address): Promise<{ to: Destination; route?: string }> {
    const via = this.routeFor?.(address.domain) ?? this.config.outboundProxy;
    const target = via ?? `sip:${address.domain}`;
    let uri;
    try {
      uri = parseUri(target);
    } catch (err) {
      throw new BridgeError('SIP_BAD_TARGET', `cannot route to ${target}`, { condition: 'jid-malformed', cause: err });
    }
    // RFC 3261 §26.2.2 / RFC 5630 §3.1.3: sips: means TLS to the next hop; so does ;transport=tls.
    const tls = uri.scheme === 'sips' || uri.params['transport']?.toLowerCase() === 'tls';
    if (tls && !this.config.tls) {
      throw new BridgeError('SIP_NO_TLS', `${target} needs TLS: configure sip.tls`, { condition: 'remote-server-not-found' });
    }
    const [to, ...rest] = await this.resolve(uri, target, this.pinsFor?.(address.domain));
    this.alternates.set(to!, rest);
    return via !== undefined && 'lr' in uri.params ? { to: to!, route: via } : { to: to! };
  }

  /** RFC 3263 §4: the URI's targets in order, never empty. TCP can go out without a listener. */
  private async resolve(uri: ReturnType<typeof parseUri>, target: string, pins?: readonly string[]): Promise<Destination[]> {
    const supported = new Set<TransportKind>(this.transport.boundPorts().map((b) => b.transport));
    supported.add('tcp');
    if (this.config.tls) supported.add('tls');
    this.dnsAnswers ??= new SipDns({ ...this.config.dns });
    let targets;
    try {
      targets = await locate(uri, { supported, dns: this.dnsAnswers });
    } catch (err) {
      throw new BridgeError('SIP_UNRESOLVABLE', `cannot locate ${target}: DNS failed (${(err as Error).message})`, {
        condition: 'remote-server-not-found',
        retryable: true,
        cause: err,
      });
    }
    if (targets.length === 0) {
      throw new BridgeError('SIP_UNRESOLVABLE', `cannot resolve ${target}`, { condition: 'remote-server-not-found', retryable: true });
    }
    // Only TLS checks a name; a plain destination stays as before (no serverName).
    return targets.map(({ serverName, ...rest }) => (rest.transport === 'tls' ? { ...rest, serverName, ...(pins === undefined ? {} : { pins }) } : rest));
  }

  private onRequest(req: SipRequest, tx: NonInviteServerTransaction, from: ReceivedFrom): void {
    // Ended by the response (respond()); OPTIONS keep-alives and CANCEL start no trace.
    const span = this.tracing !== undefined && TRACED_METHODS.has(req.method) ? this.receiveSpan(req, from) : undefined;
    if (!this.running) {
      this.respond(tx, req, 503, { headers: [{ name: 'Retry-After', value: '5' }] }, span);
      return;
    }
    // RFC 3261 §8.2.2.1: a Request-URI scheme we do not understand → 416. A tel: URI
    // (RFC 3966) names a number: the identity sources say who has it.
    if (!/^(sips?|tel):/i.test(req.uri)) {
      this.respond(tx, req, 416, {}, span);
      return;
    }
    // RFC 3261 §8.2.2.3: we support no extensions, so any Require is refused, naming them.
    const required = headerValues(req, 'Require').join(', ').trim();
    if (required !== '') {
      this.respond(tx, req, 420, { headers: [{ name: 'Unsupported', value: required }] }, span);
      return;
    }
    switch (req.method) {
      case 'MESSAGE':
        void this.track(this.onMessage(req, tx, from, span));
        return;
      case 'SUBSCRIBE':
        void this.track(this.guarded(req, tx, span, (answer) => this.notifier.onSubscribe(req, from, answer)));
        return;
      case 'NOTIFY':
        void this.track(this.guarded(req, tx, span, (answer) => this.subscriber.onNotify(req, answer)));
        return;
      case 'OPTIONS':
        // RFC 3261 §11.2: what we allow and accept; trunks use it as a keep-alive. RFC 6665
        // §4.4.4: Allow-Events names the packages we take.
        this.respond(tx, req, 200, {
          headers: [
            { name: 'Allow', value: ALLOWED_METHODS },
            { name: 'Accept', value: `${ACCEPTED_CONTENT_TYPE}, ${PIDF_CONTENT_TYPE}` },
            ALLOW_EVENTS,
          ],
        });
        return;
      case 'CANCEL':
        // RFC 3261 §9.2: 200 if it matches a transaction (a non-INVITE one goes on unaffected),
        // else 481. INVITE is listed because the 405 to one is still a live transaction.
        this.respond(tx, req, this.layer.cancelTarget(req, ['MESSAGE', 'OPTIONS', 'SUBSCRIBE', 'NOTIFY', 'INVITE']) ? 200 : 481);
        return;
      default:
        // IM only: INVITE and every other method is refused (toll-fraud guard, issue 6 item 6).
        this.audit.deny({
          rule: 'toll-fraud-method',
          who: `${from.transport}:${from.remote.host}`,
          what: req.method,
          reason: 'only IM and presence cross the bridge: call control is refused with 405',
          details: { fromHeader: headerValue(req, 'From'), callId: headerValue(req, 'Call-ID'), ...(from.identities === undefined ? {} : { peer: from.identities }) },
        });
        this.respond(tx, req, 405, { headers: [{ name: 'Allow', value: ALLOWED_METHODS }] }, span);
    }
  }

  private async onMessage(req: SipRequest, tx: NonInviteServerTransaction, from: ReceivedFrom, span: SpanHandle | undefined): Promise<void> {
    const inbound = fromSipRequest(req, Date.now());
    if ('refusal' in inbound) {
      this.log.info({ status: inbound.refusal.status, callId: headerValue(req, 'Call-ID') }, 'MESSAGE refused');
      this.respond(tx, req, inbound.refusal.status, inbound.refusal, span);
      return;
    }
    const received = { ...inbound.event, ...peerFacts(req, from) };
    // Tracing off: the event as it always was, nothing more allocated.
    const event = span === undefined ? received : { ...received, trace: span.carrier() };
    span?.span.setAttribute('bridge.event', event.id);
    try {
      await this.hooks.onEvent(event);
      this.respond(tx, req, 202, {}, span);
    } catch (err) {
      const status = statusFor(err);
      this.log.info({ err, id: event.id, status }, 'MESSAGE not accepted');
      this.respond(tx, req, status, { headers: refusalHeaders(status, err) }, span);
    }
  }

  /** Runs a presence handler; one that fails before answering gets 500, never a hang. */
  private async guarded(req: SipRequest, tx: NonInviteServerTransaction, span: SpanHandle | undefined, handle: (answer: Answer) => Promise<void>): Promise<void> {
    let answered = false;
    const answer: Answer = (status, opts = {}) => {
      answered = true;
      this.respond(tx, req, status, opts, span);
    };
    try {
      // Events the handler hands on, and requests it sends, descend from the receive span.
      const carrier = span?.carrier();
      await (carrier === undefined || this.traceScope === undefined ? handle(answer) : this.traceScope.run(carrier, () => handle(answer)));
    } catch (err) {
      this.log.warn({ err, method: req.method, callId: headerValue(req, 'Call-ID') }, 'presence request handling failed');
      if (!answered) this.respond(tx, req, statusFor(err), {}, span);
    } finally {
      span?.end();
    }
  }

  private respond(
    tx: NonInviteServerTransaction,
    req: SipRequest,
    status: number,
    opts: { reason?: string; headers?: SipHeader[]; toTag?: string } = {},
    span?: SpanHandle,
  ): void {
    let response: SipResponse;
    try {
      // RFC 3261 §8.2.6.2: a UAS adds a To tag when the request had none (the dialog's, if any).
      response = buildResponse(req, status, { ...opts, toTag: opts.toTag ?? randomToken(12) });
    } catch (err) {
      this.log.warn({ err, status }, 'could not build SIP response');
      tx.abort();
      span?.end(err);
      return;
    }
    tx.respond(response);
    this.metrics?.sipTransaction(req.method, status);
    if (span !== undefined) {
      span.span.setAttribute('sip.status_code', status);
      // A server span is failed by a 5xx only: a 4xx is the client's error (OTel HTTP conventions' rule).
      span.end(status >= 500 ? `answered ${status}` : undefined);
    }
  }

  /** Events the presence handlers hand on join the trace of the request being handled. */
  private tracedHooks(hooks: AdapterHooks): AdapterHooks {
    const scope = this.traceScope;
    if (scope === undefined) return hooks;
    return {
      ...hooks,
      onEvent: (event) => {
        const carrier = scope.getStore();
        return hooks.onEvent(carrier === undefined || event.trace !== undefined ? event : { ...event, trace: carrier });
      },
    };
  }

  /** `sip receive <METHOD>`: the transaction (RFC 3261 §17.2.3 matches it by the top Via branch) and the peer. */
  private receiveSpan(req: SipRequest, from: ReceivedFrom): SpanHandle {
    return (this.tracing as BridgeTracing).startSpan(
      `sip receive ${req.method}`,
      {
        'sip.method': req.method,
        'sip.call_id': headerValue(req, 'Call-ID'),
        'sip.cseq': headerValue(req, 'CSeq'),
        'sip.via.branch': topVia(req)?.params['branch'] ?? undefined,
        'sip.request_uri': req.uri,
        'network.transport': from.transport,
        'network.peer.address': from.remote.host,
        'network.peer.port': from.remote.port,
        'tls.peer.identities': from.identities === undefined ? undefined : from.identities.join(','),
      },
      undefined,
      'server',
    );
  }

  /** `sip request <METHOD>`: one client transaction, the child of the work that sends it. */
  private requestSpan(request: SipRequest, to: Destination): SpanHandle {
    return (this.tracing as BridgeTracing).startSpan(
      `sip request ${request.method}`,
      {
        'sip.method': request.method,
        'sip.call_id': headerValue(request, 'Call-ID'),
        'sip.cseq': headerValue(request, 'CSeq'),
        'sip.via.branch': topVia(request)?.params['branch'] ?? undefined,
        'sip.request_uri': request.uri,
        'network.transport': to.transport,
        'server.address': to.host,
        'server.port': to.port,
      },
      this.traceScope?.getStore(),
      'client',
    );
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inflight.add(work);
    const forget = (): void => {
      this.inflight.delete(work);
    };
    work.then(forget, forget);
    return work;
  }
}

/** The request with a new top Via for `transport` (a new branch: it is a new transaction). */
function withVia(request: SipRequest, transport: TransportKind, sentBy: Endpoint): SipRequest {
  const via = formatVia({ transport: transport.toUpperCase(), host: sentBy.host, port: sentBy.port, params: { branch: MAGIC_COOKIE + randomToken(12), rport: null } });
  const index = request.headers.findIndex((h) => h.name === 'Via');
  const headers = request.headers.map((h, i) => (i === index ? { name: 'Via', value: via } : h));
  return { ...request, headers };
}

/** The configured durations over the defaults; a minimum above the default or maximum is lowered to it. */
function presenceLimits(given: Partial<PresenceLimits> = {}): PresenceLimits {
  const maxExpires = given.maxExpires ?? DEFAULT_PRESENCE_LIMITS.maxExpires;
  const defaultExpires = Math.min(given.defaultExpires ?? DEFAULT_PRESENCE_LIMITS.defaultExpires, maxExpires);
  const minExpires = Math.min(given.minExpires ?? DEFAULT_PRESENCE_LIMITS.minExpires, defaultExpires);
  return { defaultExpires, minExpires, maxExpires };
}

function rejected(res: SipResponse): BridgeError {
  return new BridgeError('SIP_REJECTED', `MESSAGE rejected: ${res.status} ${res.reason}`, {
    condition: conditionForSipStatus(res.status),
    sipStatus: res.status,
    retryable: false,
  });
}

/**
 * What a refusal says beside its status: 405 lists what is allowed (RFC 3261 §21.4.6); 503
 * (the queue's Redis away, the bridge stopping) says when to come back (§21.5.4), so the
 * sender retries rather than gives up.
 */
function refusalHeaders(status: number, err: unknown): SipHeader[] {
  if (status === 405) return [{ name: 'Allow', value: ALLOWED_METHODS }];
  if (status === 503) {
    // A rate limit knows when its bucket has a token again (RateLimitedError.retryAfterS).
    const after = (err as { retryAfterS?: unknown } | undefined)?.retryAfterS;
    return [{ name: 'Retry-After', value: String(typeof after === 'number' && after > 0 ? Math.ceil(after) : 5) }];
  }
  return [];
}
