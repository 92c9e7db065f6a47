/**
 * An XmppAdapter wired to recording hooks, for integration tests against a real server.
 * TEST_LOG=1 prints the adapter's logs.
 */
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
  /** Every onAvailability report, in order. */
  readonly availability: boolean[];
  /** What hooks.onEvent does after recording an event (default: accept it). */
  onEvent: (e: CanonicalEvent) => Promise<void>;
  /** Waits for a recorded event matching `match` (already seen or future). */
  event(what: string, match: (e: CanonicalEvent) => boolean, timeoutMs?: number): Promise<CanonicalEvent>;
}

export type HarnessConfig = Partial<XmppConfig> & Pick<XmppConfig, 'component' | 'secret' | 'server'>;

export function adapterHarness(input: HarnessConfig): AdapterHarness {
  const config = xmppSchema.parse(input);
  const events: CanonicalEvent[] = [];
  const availability: boolean[] = [];
  const logger = process.env['TEST_LOG'] === '1' ? createLogger({ level: 'debug' }) : silentLogger();
  const harness: AdapterHarness = {
    config,
    events,
    availability,
    onEvent: async () => undefined,
    event: (what, match, timeoutMs = 10_000) => waitFor(what, () => events.find(match), timeoutMs),
    adapter: new XmppAdapter(
      config,
      {
        onEvent: async (e) => {
          events.push(e);
          await harness.onEvent(e);
        },
        onAvailability: (up) => availability.push(up),
      },
      logger,
    ),
  };
  return harness;
}
