/**
 * Composition root: builds the bridge from a validated config with the real adapters and the
 * identity chain (issue 3).
 */
import { SipAdapter } from './adapters/sip/adapter.js';
import { partnerRoutes } from './adapters/sip/partner-routes.js';
import { XmppAdapter, type WatchedPair } from './adapters/xmpp/adapter.js';
import type { BridgeConfig } from './config/schema.js';
import { AuditLog } from './core/audit.js';
import { Bridge, type BridgeOptions } from './core/bridge.js';
import { FederationPolicy } from './core/policy/federation.js';
import { NumberRanges } from './core/policy/number-ranges.js';
import { PartnerRegistry } from './core/policy/partners.js';
import { RedisRateLimiter } from './core/policy/redis-rate-limit.js';
import { PresenceVisibility } from './core/policy/presence-visibility.js';
import { BullMQQueue } from './core/queue/bullmq.js';
import { MemoryQueue } from './core/queue/memory.js';
import type { Queue } from './core/queue/queue.js';
import { RedisDeliveryLog, type DeliveryLog } from './core/state/delivered.js';
import { RedisSubscriptionStore } from './core/state/redis-subscriptions.js';
import { MemorySubscriptionStore } from './core/state/memory-subscriptions.js';
import type { SubscriptionStore } from './core/state/subscriptions.js';
import { countDenial, DEDUPE_TTL_MS, INBOUND_QUEUE, QUEUE_FOR, Router } from './core/router.js';
import { RedisDedupeClaims } from './core/state/redis-dedupe.js';
import { createMetrics, type BridgeMetrics } from './telemetry/metrics.js';
import { createTracing, type BridgeTracing } from './telemetry/tracing.js';
import { AddressTranslator } from './mapping/address.js';
import { buildIdentityChain, reloadIdentities, type IdentitySetup } from './mapping/identity/index.js';
import type { Logger } from './telemetry/logger.js';

/**
 * The bridge with its identity sources and subscription store: the sources start before the
 * adapters and stop after them (only in the roles that route: an edge never asks a directory).
 */
/** What the composition root builds beside the bridge proper, started and stopped with it. */
export interface BridgeParts {
  readonly identities: IdentitySetup;
  readonly subscriptions: SubscriptionStore;
  readonly deliveries?: DeliveryLog;
  /** Its rate-limit buckets (Redis connections when scaled out) close at stop. */
  readonly federation?: FederationPolicy;
  readonly dedupe?: RedisDedupeClaims;
  /** Whether this role routes (asks identity sources): `all` and `router`. */
  readonly routes: boolean;
  readonly metrics: BridgeMetrics;
  readonly tracing: BridgeTracing;
}

export class BridgeWithIdentities extends Bridge {
  private readonly identities: IdentitySetup;
  private readonly subscriptions: SubscriptionStore;

  constructor(
    options: BridgeOptions,
    private readonly parts: BridgeParts,
  ) {
    super(options);
    this.identities = parts.identities;
    this.subscriptions = parts.subscriptions;
  }

  get identityChain(): IdentitySetup['chain'] {
    return this.identities.chain;
  }

  /** For /metrics (cli.ts serves it on the health listener). */
  get metrics(): BridgeMetrics {
    return this.parts.metrics;
  }

  override async start(): Promise<void> {
    if (this.parts.routes) await this.identities.chain.start();
    // A failing super.start() calls this.stop(), which stops the chain too.
    await super.start();
  }

  override async stop(): Promise<void> {
    await super.stop();
    await this.subscriptions.close();
    await this.parts.deliveries?.close();
    await this.parts.federation?.close();
    await this.parts.dedupe?.close();
    if (this.parts.routes) await this.identities.chain.stop();
    // Both never reject; tracing waits at most 2 s for its last export.
    await this.parts.tracing.shutdown();
    await this.parts.metrics.shutdown();
  }

  /** The bridge's checks plus the subscription store answering (Redis reachable). */
  override readinessChecks(): ReturnType<Bridge['readinessChecks']> {
    return {
      ...super.readinessChecks(),
      state: async () => ({ ok: true, detail: `${await this.subscriptions.size()} subscriptions` }),
    };
  }

  /** SIGHUP: re-reads static identity files; a bad file keeps the old table (logged). */
  reloadIdentities(): Promise<void> {
    return reloadIdentities(this.identities);
  }
}

export function createBridge(config: Readonly<BridgeConfig>, logger: Logger): BridgeWithIdentities {
  const { queue, subscriptions, deliveries, dedupe } = backends(config, logger);
  const { telemetry } = config;
  const metrics = createMetrics({ enabled: telemetry.metrics, serviceName: telemetry.serviceName });
  const tracing = createTracing({
    enabled: telemetry.tracing.enabled,
    serviceName: telemetry.serviceName,
    ...(telemetry.tracing.otlpUrl === undefined ? {} : { otlpUrl: telemetry.tracing.otlpUrl }),
    logger: logger.child({ component: 'tracing' }),
  });
  if (metrics.enabled) {
    const names = [INBOUND_QUEUE, QUEUE_FOR.sip, QUEUE_FOR.xmpp];
    metrics.observeQueues(() => Promise.all(names.map(async (name) => ({ queue: name, pending: (await queue.counts(name)).pending }))));
    metrics.observeSubscriptions(async () => [{ role: 'all', count: await subscriptions.size() }]);
  }
  const translator = new AddressTranslator({ componentDomain: config.xmpp.component, xmppDomains: config.mapping.xmppDomains });
  const identities = buildIdentityChain(config.mapping, logger.child({ component: 'identity' }), (a) =>
    metrics.identityLookup(a.source, a.outcome === 'found' || a.outcome === 'not-found' ? a.outcome : 'error', a.ms),
  );
  // One registry for the router's policy and the SIP edge's partner routes (issue 6 item 2).
  const partners = config.federation === undefined ? undefined : new PartnerRegistry(config.federation, { logger: logger.child({ component: 'federation' }) });
  const policy = federationOf(config, logger, partners);
  // One audit trail per process: every denial, whichever component refused it (issue 6 item 8).
  const audit = new AuditLog(logger.child({ component: 'audit' }), { ...(metrics.enabled ? { onDeny: countDenial(metrics) } : {}) });
  const router = new Router({
    audit,
    translator,
    identities: identities.chain,
    ...(config.mapping.defaultRegion === undefined ? {} : { defaultRegion: config.mapping.defaultRegion }),
    queue,
    logger: logger.child({ component: 'router' }),
    visibility: new PresenceVisibility(config.presence.visible, config.presence.groups),
    ...policy,
    ...(dedupe === undefined ? {} : { dedupe }),
    metrics,
    tracing,
  });
  return new BridgeWithIdentities(
    {
      queue,
      role: config.role,
      // Redis keeps what is queued for the other processes; memory must be drained or lost.
      drainTimeoutMs: config.queue.backend === 'memory' ? 5000 : 0,
      ...(deliveries === undefined ? {} : { deliveries }),
      ...(config.role === 'all' || config.role === 'router' ? { router } : {}),
      metrics,
      tracing,
      logger: logger.child({ component: 'bridge' }),
      createAdapter: (side, hooks) =>
        side === 'sip'
          ? new SipAdapter(config.sip, hooks, logger.child({ component: 'sip' }), {
              audit,
              subscriptions,
              metrics,
              tracing,
              // Subscriptions in memory die with the process: end them cleanly at stop.
              releaseSubscriptionsOnStop: config.queue.backend === 'memory',
              ...(partners === undefined ? {} : { routeFor: partnerRoutes(partners), pinsFor: (domain: string) => partners.partnerForDomain(domain, 'sip')?.trust.fingerprints }),
              // Issue 6 item 5: per-partner caps on TLS connections and subscriptions held.
              ...policy.federation?.sipAdapterCaps(),
              presence: {
                defaultExpires: config.presence.defaultExpiresS,
                minExpires: config.presence.minExpiresS,
                maxExpires: config.presence.maxExpiresS,
              },
            })
          : new XmppAdapter(config.xmpp, hooks, logger.child({ component: 'xmpp' }), {
              watched: () => watchedXmppUsers(subscriptions, translator),
              tracing,
            }),
    },
    {
      identities,
      subscriptions,
      ...(deliveries === undefined ? {} : { deliveries }),
      ...(policy.federation === undefined ? {} : { federation: policy.federation }),
      ...(dedupe === undefined ? {} : { dedupe }),
      routes: config.role === 'all' || config.role === 'router',
      metrics,
      tracing,
    },
  );
}

/** The federation policy and the operator's number ranges, when configured. */
function federationOf(config: Readonly<BridgeConfig>, logger: Logger, registry: PartnerRegistry | undefined): { federation?: FederationPolicy; ownNumbers?: NumberRanges } {
  const routes = config.role === 'all' || config.role === 'router';
  if (routes && config.federation === undefined) {
    logger.warn('no federation section: every domain may send and be reached (configure federation.partners to restrict)');
  }
  const federation =
    registry === undefined
      ? undefined
      : new FederationPolicy({
          registry,
          local: { sip: config.mapping.sipDomains, xmpp: config.mapping.xmppDomains },
          // Scaled out, every router draws on the same buckets, so a partner's limit is one limit.
          ...(config.queue.backend === 'redis'
            ? {
                limiterFor: (bucket, kind) =>
                  new RedisRateLimiter({ connection: config.redis.url, prefix: `${config.redis.prefix}-rate-${kind}`, ratePerSecond: bucket.ratePerSecond, burst: bucket.burst }),
              }
            : {}),
        });
  return {
    ...(federation === undefined ? {} : { federation }),
    ...(config.mapping.ownNumbers === undefined ? {} : { ownNumbers: new NumberRanges(config.mapping.ownNumbers) }),
  };
}

/**
 * The queue, the subscription store and the delivery log: in memory (no log needed: the memory
 * queue hands a job out once), or on Redis shared by several processes.
 */
function backends(
  config: Readonly<BridgeConfig>,
  logger: Logger,
): { queue: Queue; subscriptions: SubscriptionStore; deliveries?: DeliveryLog; dedupe?: RedisDedupeClaims } {
  if (config.queue.backend === 'memory') {
    return { queue: new MemoryQueue(config.queue), subscriptions: new MemorySubscriptionStore({ maxRecords: config.presence.maxSubscriptions }) };
  }
  const { url, prefix } = config.redis;
  return {
    queue: new BullMQQueue({ ...config.queue, connection: url, prefix, logger: logger.child({ component: 'queue' }) }),
    subscriptions: new RedisSubscriptionStore({
      connection: url,
      prefix: `${prefix}-subscriptions`,
      maxRecords: config.presence.maxSubscriptions,
      logger: logger.child({ component: 'subscriptions' }),
    }),
    deliveries: new RedisDeliveryLog({ connection: url, prefix: `${prefix}-delivered` }),
    // Several routers, or one restarted, still deliver a repeated message once.
    dedupe: new RedisDedupeClaims({ connection: url, prefix: `${prefix}-dedupe`, ttlMs: DEDUPE_TTL_MS, logger: logger.child({ component: 'dedupe' }) }),
  };
}

/** Most XMPP users re-probed after the component (re)connects (the XMPP adapter caps it too). */
const MAX_WATCHED = 10_000;

/**
 * The XMPP users SIP watchers hold active subscriptions to, as the component JIDs that watch
 * them: after a reconnect neither Prosody nor ejabberd re-sends presence to a component, so the
 * XMPP adapter probes these (issue 4 item 2).
 */
export async function watchedXmppUsers(store: SubscriptionStore, translator: AddressTranslator): Promise<WatchedPair[]> {
  const pairs: WatchedPair[] = [];
  for (const record of await store.list('notifier', MAX_WATCHED)) {
    if (record.state !== 'active') continue;
    const watcher = sipAddressOf(record.watcher);
    const presentity = sipAddressOf(record.presentity);
    if (watcher === undefined || presentity === undefined) continue;
    try {
      pairs.push({ watcher: translator.sipSenderToXmpp(watcher), presentity: translator.sipRecipientToXmpp(presentity) });
    } catch {
      // an address the configuration no longer serves: nothing to probe
    }
  }
  return pairs;
}

function sipAddressOf(key: string): { side: 'sip'; user: string; domain: string } | undefined {
  const at = key.lastIndexOf('@');
  return at <= 0 ? undefined : { side: 'sip', user: key.slice(0, at), domain: key.slice(at + 1) };
}
