/**
 * Presence across a restart of a bridge whose subscriptions live in memory: at stop, SIP
 * watchers are told to come back later (not left showing the last state until their refresh)
 * and the bridge's own SUBSCRIBEs are withdrawn; after a restart, the XMPP server's probe for a
 * SIP contact starts that SIP subscription again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { sipSchema } from '../../src/config/schema.js';
import { probeEvent, subscriptionEvent, type Address, type CanonicalEvent } from '../../src/core/events.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { waitFor } from '../support/ports.js';
import { header, RawUdpPeer } from '../support/raw-sip.js';
import { SipWatcher, subscriptionState } from '../support/sip-watcher.js';

const JULIET_SIP: Address = { side: 'sip', user: 'juliet', domain: 'xmpp.example.org' };
const ALICE: Address = { side: 'sip', user: 'alice', domain: 'corp.example' };
const BOB: Address = { side: 'sip', user: 'bob', domain: 'corp.example' };

const opened: Array<{ close(): Promise<void> } | { stop(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await ('stop' in o ? o.stop() : o.close());
});

async function adapter(outboundPort?: number): Promise<{ adapter: SipAdapter; port: number; events: CanonicalEvent[] }> {
  const events: CanonicalEvent[] = [];
  const config = sipSchema.parse({
    listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }],
    timers: { t1Ms: 50, t2Ms: 200, t4Ms: 250 },
    ...(outboundPort === undefined ? {} : { outboundProxy: `sip:127.0.0.1:${outboundPort};transport=udp` }),
  });
  const a = new SipAdapter(config, { onEvent: (e) => (events.push(e), Promise.resolve()) }, silentLogger(), { releaseSubscriptionsOnStop: true });
  await a.start();
  opened.push(a);
  return { adapter: a, port: a.boundPorts()[0]!.port, events };
}

describe('SIP presence subscriptions and a bridge restart (memory store)', () => {
  it('tells an active SIP watcher at stop to subscribe again in 30 s (terminated;reason=probation)', async () => {
    const { adapter: a, port, events } = await adapter();
    const watcher = await SipWatcher.subscribe(port, 'alice@corp.example', 'juliet@xmpp.example.org');
    opened.push(watcher);
    await waitFor('the subscribe event', () => events.find((e) => e.kind === 'subscription'));
    await a.send(subscriptionEvent({ origin: 'xmpp', from: JULIET_SIP, to: ALICE, action: 'approve', dedupeKey: 'approve-1', createdAt: Date.now() }));
    await watcher.notify('NOTIFY active', (n) => subscriptionState(n).startsWith('active'));

    await a.stop();

    const last = await watcher.notify('NOTIFY terminated', (n) => subscriptionState(n).startsWith('terminated'));
    expect(subscriptionState(last)).toBe('terminated;reason=probation;retry-after=30');
  });

  it('starts the SIP subscription again when the XMPP server probes a contact it has none for', async () => {
    const presenceServer = await RawUdpPeer.open();
    opened.push(presenceServer);
    const { adapter: a } = await adapter(presenceServer.port);
    // Not awaited: it settles when the SUBSCRIBE does, and this presence server never answers.
    const sent = a.send(probeEvent({ origin: 'xmpp', from: JULIET_SIP, to: BOB, dedupeKey: 'probe-1', createdAt: Date.now() }));
    const subscribe = await presenceServer.next();
    expect(subscribe).toMatch(/^SUBSCRIBE sip:bob@corp\.example SIP\/2\.0/);
    expect(header(subscribe, 'Event')).toBe('presence');
    expect(header(subscribe, 'From')).toContain('sip:juliet@xmpp.example.org');
    await expect(sent).resolves.toBeUndefined();
  });
});
