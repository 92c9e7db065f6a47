/**
 * Composition root: builds the bridge from a validated config with the real adapters.
 */
import { SipAdapter } from './adapters/sip/adapter.js';
import { XmppAdapter } from './adapters/xmpp/adapter.js';
import type { BridgeConfig } from './config/schema.js';
import { Bridge } from './core/bridge.js';
import { MemoryQueue } from './core/queue/memory.js';
import { Router } from './core/router.js';
import { AddressTranslator } from './mapping/address.js';
import type { Logger } from './telemetry/logger.js';

export function createBridge(config: Readonly<BridgeConfig>, logger: Logger): Bridge {
  const queue = new MemoryQueue(config.queue);
  const translator = new AddressTranslator({
    componentDomain: config.xmpp.component,
    xmppDomains: config.mapping.xmppDomains,
    identities: config.mapping.identities,
  });
  const router = new Router({ translator, queue, logger: logger.child({ component: 'router' }) });
  return new Bridge({
    queue,
    router,
    logger: logger.child({ component: 'bridge' }),
    createAdapter: (side, hooks) =>
      side === 'sip'
        ? new SipAdapter(config.sip, hooks, logger.child({ component: 'sip' }))
        : new XmppAdapter(config.xmpp, hooks, logger.child({ component: 'xmpp' })),
  });
}
