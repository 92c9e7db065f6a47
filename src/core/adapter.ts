import type { CanonicalEvent, Side } from './events.js';

/**
 * The core's entry point given to adapters: hands an inbound event to the router and queue.
 * Resolves once the event is queued (so a SIP 202 can be sent); rejects with a BridgeError
 * (unmapped address, policy, queue full) that the adapter renders as a protocol error at once.
 */
export type InboundHandler = (event: CanonicalEvent) => Promise<void>;

/** What the core gives an adapter at construction. */
export interface AdapterHooks {
  onEvent: InboundHandler;
  /**
   * Told when the adapter's network becomes reachable (true) or not (false), so the bridge
   * pauses that adapter's outbound queue instead of burning retries while a server is away.
   */
  onAvailability?: (available: boolean) => void;
}

/**
 * What the core asks of a protocol adapter (STYLE.md habit 3). The constructor does no I/O;
 * `start()` connects or listens, `stop()` drains in-flight work and closes sockets.
 */
export interface Adapter {
  readonly side: Side;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Delivers an event to this adapter's network. Resolves once the peer has it (SIP: a 2xx
   * final response; XMPP: written to the server's socket); rejects with a BridgeError whose
   * `retryable` says whether the queue should try again.
   */
  send(event: CanonicalEvent): Promise<void>;
}
