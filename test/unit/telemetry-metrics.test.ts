import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createMetrics,
  directionOf,
  LATENCY_BUCKETS_S,
  MAX_SERIES_PER_METRIC,
  type BridgeMetrics,
  type Direction,
  type EventKind,
  type EventOutcome,
} from '../../src/telemetry/metrics.js';

/** Sample lines of a Prometheus text exposition as `name{labels}` → value (comments skipped). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

let metrics: BridgeMetrics | undefined;
afterEach(async () => {
  await metrics?.shutdown();
  metrics = undefined;
});

function enabled(): BridgeMetrics {
  metrics = createMetrics({ enabled: true });
  return metrics;
}

describe('metrics: counters', () => {
  it('counts events by direction, kind, outcome and partner, each label set on its own', async () => {
    const m = enabled();
    m.event('sip-to-xmpp', 'message', 'routed', 'a.example');
    m.event('sip-to-xmpp', 'message', 'routed', 'a.example');
    m.event('sip-to-xmpp', 'message', 'delivered', 'a.example');
    m.event('xmpp-to-sip', 'presence', 'refused', 'b.example');
    m.event('xmpp-to-sip', 'message', 'failed');
    const s = samples(await m.prometheusText());
    expect(s.get('sxb_events_total{direction="sip-to-xmpp",kind="message",outcome="routed",partner="a.example"}')).toBe(2);
    expect(s.get('sxb_events_total{direction="sip-to-xmpp",kind="message",outcome="delivered",partner="a.example"}')).toBe(1);
    expect(s.get('sxb_events_total{direction="xmpp-to-sip",kind="presence",outcome="refused",partner="b.example"}')).toBe(1);
    expect(s.get('sxb_events_total{direction="xmpp-to-sip",kind="message",outcome="failed",partner="none"}')).toBe(1);
    expect([...s.keys()].filter((k) => k.startsWith('sxb_events_total'))).toHaveLength(4);
  });

  it('shows, for any sequence of events, exactly the count of each label set', async () => {
    const call = fc.record({
      direction: fc.constantFrom<Direction>('sip-to-xmpp', 'xmpp-to-sip'),
      kind: fc.constantFrom<EventKind>('message', 'presence', 'subscription', 'probe', 'failure'),
      outcome: fc.constantFrom<EventOutcome>('routed', 'delivered', 'refused', 'failed', 'withheld'),
      partner: fc.constantFrom(undefined, 'a.example', 'b.example', 'odd "name"\\'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(call, { maxLength: 60 }), async (calls) => {
        const m = createMetrics({ enabled: true });
        try {
          const expected = new Map<string, number>();
          for (const c of calls) {
            m.event(c.direction, c.kind, c.outcome, c.partner);
            const partner = (c.partner ?? 'none').replace(/\\/g, '\\\\').replace(/"/g, '\\"');
            const series = `sxb_events_total{direction="${c.direction}",kind="${c.kind}",outcome="${c.outcome}",partner="${partner}"}`;
            expected.set(series, (expected.get(series) ?? 0) + 1);
          }
          const shown = new Map([...samples(await m.prometheusText())].filter(([k]) => k.startsWith('sxb_events_total')));
          expect(shown).toEqual(expected);
        } finally {
          await m.shutdown();
        }
      }),
      { numRuns: 40 },
    );
  });

  it.each([
    ['policyDenial', (m: BridgeMetrics) => m.policyDenial('UNKNOWN_DOMAIN'), 'sxb_policy_denials_total{rule="UNKNOWN_DOMAIN"}'],
    ['rateLimited', (m: BridgeMetrics) => m.rateLimited('a.example'), 'sxb_rate_limited_total{partner="a.example"}'],
    ['sipTransaction', (m: BridgeMetrics) => m.sipTransaction('MESSAGE', 202), 'sxb_sip_transactions_total{method="MESSAGE",status="202"}'],
    ['sipTransaction timeout', (m: BridgeMetrics) => m.sipTransaction('NOTIFY', 'timeout'), 'sxb_sip_transactions_total{method="NOTIFY",status="timeout"}'],
    [
      'identityLookup',
      (m: BridgeMetrics) => m.identityLookup('ldap', 'error', 12),
      'sxb_identity_lookup_duration_seconds_count{source="ldap",outcome="error"}',
    ],
  ])('%s moves its series by one per call', async (_name, call, series) => {
    const m = enabled();
    call(m);
    call(m);
    call(m);
    expect(samples(await m.prometheusText()).get(series)).toBe(3);
  });

  it('keeps the XMPP connection gauge at the last state reported', async () => {
    const m = enabled();
    m.xmppConnected(true);
    expect(samples(await m.prometheusText()).get('sxb_xmpp_connected')).toBe(1);
    m.xmppConnected(false);
    expect(samples(await m.prometheusText()).get('sxb_xmpp_connected')).toBe(0);
  });

  it('maps an origin side to a direction', () => {
    expect(directionOf('sip')).toBe('sip-to-xmpp');
    expect(directionOf('xmpp')).toBe('xmpp-to-sip');
  });
});

describe('metrics: histograms', () => {
  it('puts latencies in seconds into cumulative buckets from 1 ms to 10 s', async () => {
    const m = enabled();
    for (const ms of [0.5, 1, 3, 40, 900, 20_000]) m.latency('xmpp-to-sip', 'message', ms);
    const s = samples(await m.prometheusText());
    const bucket = (le: string): number | undefined => s.get(`sxb_delivery_latency_seconds_bucket{direction="xmpp-to-sip",kind="message",le="${le}"}`);
    expect(LATENCY_BUCKETS_S[0]).toBe(0.001);
    expect(LATENCY_BUCKETS_S.at(-1)).toBe(10);
    // Upper bounds are inclusive: 1 ms falls in le="0.001".
    expect(bucket('0.001')).toBe(2);
    expect(bucket('0.005')).toBe(3);
    expect(bucket('0.05')).toBe(4);
    expect(bucket('1')).toBe(5);
    expect(bucket('10')).toBe(5);
    expect(bucket('+Inf')).toBe(6);
    expect(s.get('sxb_delivery_latency_seconds_count{direction="xmpp-to-sip",kind="message"}')).toBe(6);
    expect(s.get('sxb_delivery_latency_seconds_sum{direction="xmpp-to-sip",kind="message"}')).toBeCloseTo(20.9445, 6);
  });

  it('ignores a negative latency (clocks of two processes disagree) instead of recording it', async () => {
    const m = enabled();
    m.latency('sip-to-xmpp', 'presence', -5);
    expect(await m.prometheusText()).not.toContain('sxb_delivery_latency_seconds_count');
  });
});

describe('metrics: observed gauges', () => {
  it('reads queue depth and oldest age from the source at each scrape', async () => {
    const m = enabled();
    let pending = 3;
    m.observeQueues(async () => [
      { queue: 'to-xmpp', pending, oldestAgeMs: 2500 },
      { queue: 'to-sip', pending: 0 },
    ]);
    let s = samples(await m.prometheusText());
    expect(s.get('sxb_queue_depth{queue="to-xmpp"}')).toBe(3);
    expect(s.get('sxb_queue_depth{queue="to-sip"}')).toBe(0);
    expect(s.get('sxb_queue_oldest_age_seconds{queue="to-xmpp"}')).toBe(2.5);
    expect(s.has('sxb_queue_oldest_age_seconds{queue="to-sip"}')).toBe(false);
    pending = 7;
    s = samples(await m.prometheusText());
    expect(s.get('sxb_queue_depth{queue="to-xmpp"}')).toBe(7);
  });

  it('reads active subscriptions by role', async () => {
    const m = enabled();
    m.observeSubscriptions(() => [
      { role: 'sip-watcher', count: 4 },
      { role: 'xmpp-watcher', count: 2 },
    ]);
    const s = samples(await m.prometheusText());
    expect(s.get('sxb_active_subscriptions{role="sip-watcher"}')).toBe(4);
    expect(s.get('sxb_active_subscriptions{role="xmpp-watcher"}')).toBe(2);
  });

  it('still answers the scrape when a source fails: that gauge is simply absent', async () => {
    const m = enabled();
    m.observeQueues(() => Promise.reject(new Error('redis down')));
    m.policyDenial('DIRECTION');
    const text = await m.prometheusText();
    expect(text).not.toContain('sxb_queue_depth{');
    expect(samples(text).get('sxb_policy_denials_total{rule="DIRECTION"}')).toBe(1);
  });
});

describe('metrics: bounds', () => {
  it('folds label sets past the per-metric limit into one overflow series', async () => {
    const m = enabled();
    for (let i = 0; i < MAX_SERIES_PER_METRIC + 500; i += 1) m.rateLimited(`p${i}.example`);
    const s = samples(await m.prometheusText());
    const series = [...s.keys()].filter((k) => k.startsWith('sxb_rate_limited_total'));
    expect(series).toHaveLength(MAX_SERIES_PER_METRIC);
    expect(s.get('sxb_rate_limited_total{otel_metric_overflow="true"}')).toBe(501);
  });
});

describe('metrics: disabled', () => {
  it('does nothing, throws nothing and serves an empty exposition', async () => {
    const m = createMetrics({ enabled: false });
    expect(m.enabled).toBe(false);
    m.event('sip-to-xmpp', 'message', 'routed', 'a.example');
    m.latency('sip-to-xmpp', 'message', 3);
    m.observeQueues(() => {
      throw new Error('never read');
    });
    m.observeSubscriptions(() => []);
    m.policyDenial('x');
    m.rateLimited('x');
    m.sipTransaction('MESSAGE', 200);
    m.xmppConnected(true);
    m.identityLookup('static', 'found', 1);
    expect(await m.prometheusText()).toBe('');
    await m.shutdown();
  });

  it('is one shared object, so turning metrics off allocates nothing per bridge', () => {
    expect(createMetrics({ enabled: false })).toBe(createMetrics({ enabled: false }));
  });
});
