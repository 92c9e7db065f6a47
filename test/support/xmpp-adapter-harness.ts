/**
 * An XmppAdapter wired to recording hooks, for integration tests against a real server.
 */
import type { AdapterHooks } from '../../src/core/adapter.js';
import type { CanonicalEvent } from '../../src/core/events.js';
import { xmppSchema, type XmppConfig } from '../../src/config/schema.js';
import { XmppAdapter } from '../../src/adapters/xmpp/adapter.js';
import { createLogger, silentLogger } from '../../src/telemetry/logger.js';
import { waitFor } from './ports.js';

export interface AdapterHarness {
  readonly adapter: XmppAdapter;
  readonly config: XmppConfig;
  /** Every event handed to hooks.onEvent, in order. */
  readonly events: CanonicalEvent[];
  /** Every onAvailability call, in order. */
  readonly availability: boolean[];
  /** Decides what hooks.onEvent does with an event (default: accept). */
  onEvent: (e: CanonicalEvent) => Promise<void>;
  /** Waits for an event matching `match` (already seen or future). */
  event<T extends CanonicalEvent>(what: string, match: (e: CanonicalEvent) => e is T, timeoutMs?: number): Promise<T>;
  event(what: string, match: (e: CanonicalEvent) => boolean, timeoutMs?: number): Promise<CanonicalEvent>;
}

export function adapterHarness(config: Partial<XmppConfig> & Pick<XmppConfig, 'component' | 'secret' | 'server'>): AdapterHarness {
  const parsed = xmppSchema.parse(config);
  const events: CanonicalEvent[] = [];
  const availability: boolean[] = [];
  const harness = {
    config: parsed,
    events,
    availability,
    onEvent: async (_e: CanonicalEvent) => undefined,
  } as unknown as AdapterHarness & { adapter: XmppAdapter };
  const hooks: AdapterHooks = {
    onEvent: async (e) => {
      events.push(e);
      await harness.onEvent(e);
    },
    onAvailability: (up) => availability.push(up),
  };
  const logger = process.env['TEST_LOG'] === '1' ? createLogger({ level: 'debug' }) : silentLogger();
  (harness as { adapter: XmppAdapter }).adapter = new XmppAdapter(parsed, hooks, logger);
  harness.event = ((what: string, match: (e: CanonicalEvent) => boolean, timeoutMs = 10_000) =>
    waitFor(what, () => events.find(match), timeoutMs)) as AdapterHarness['event'];
  return harness;
}
