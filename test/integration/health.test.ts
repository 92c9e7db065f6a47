/**
 * /healthz and /readyz as an orchestrator polls them: alive at once, ready only once the SIP
 * listener is up and the component is connected to a real Prosody, not ready again (saying
 * why) when Prosody goes away; /metrics counts what crossed (a SIP message delivered to an
 * XMPP user, an XMPP message refused) and shows the component's connection state.
 */
import xml from '@xmpp/xml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { HealthServer, readiness } from '../../src/telemetry/health.js';
import { metricsHandler } from '../../src/telemetry/metrics.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { freePort, waitFor } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { RawUdpPeer, rawRequest, statusOf } from '../support/raw-sip.js';
import { connectUser } from '../support/xmpp-client.js';

let prosody: Prosody;
let bridge: ReturnType<typeof createBridge>;
let health: HealthServer;
let base: string;
let sipPort: number;

beforeAll(async () => {
  prosody = await startProsody({ domain: 'xmpp.test', component: 'sip.xmpp.test' });
  const config = parseConfig({
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: (sipPort = await freePort()) }] },
    xmpp: {
      component: prosody.component,
      server: { host: prosody.host, port: prosody.componentPort },
      secret: prosody.secret,
      reconnect: { initialMs: 100, maxMs: 200 },
    },
    mapping: { xmppDomains: [prosody.domain] },
    // carol@sip.example.com (the raw request's sender) is a partner's user: the series name it.
    federation: { partners: [{ name: 'example', side: 'sip', domains: ['sip.example.com'] }] },
    telemetry: { metrics: true },
  });
  bridge = createBridge(config, silentLogger());
  health = new HealthServer({ host: '127.0.0.1', port: 0 }, () => readiness(bridge.readinessChecks()), metricsHandler(bridge.metrics));
  const { port } = await health.start();
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await bridge?.stop();
  await health?.stop();
  await prosody?.stop();
});

async function get(path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const res = await fetch(`${base}${path}`, { method });
  return { status: res.status, body: await res.text() };
}

describe('health endpoints', () => {
  it('answers alive but not ready before the bridge has started, naming what is missing', async () => {
    expect(await get('/healthz')).toEqual({ status: 200, body: 'ok\n' });
    const ready = await get('/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toMatchObject({ ready: false, checks: { sip: { ok: false, detail: 'not started' }, xmpp: { ok: false } } });
  });

  it('is ready once SIP listens and the component is connected, with the queue and the store answering', async () => {
    await bridge.start();
    const ready = await waitFor('ready', async () => {
      const r = await get('/readyz');
      return r.status === 200 ? r : undefined;
    });
    expect(JSON.parse(ready.body)).toMatchObject({
      ready: true,
      checks: { sip: { ok: true }, xmpp: { ok: true }, queue: { ok: true }, state: { ok: true, detail: '0 subscriptions' } },
    });
  });

  it('counts on /metrics what crossed: a SIP message delivered to an XMPP user, an XMPP message refused', async () => {
    const juliet = await connectUser(prosody, prosody.users[0]!);
    try {
      const sip = await RawUdpPeer.open();
      await sip.send(rawRequest({ uri: `sip:juliet@${prosody.domain}`, body: 'counted' }), sipPort);
      expect(statusOf(await sip.next())).toBe(202);
      // Call control never crosses (toll-fraud guard): one refusal, audited and counted.
      await sip.send(rawRequest({ method: 'REFER', uri: `sip:juliet@${prosody.domain}`, extraHeaders: ['Refer-To: <sip:x@elsewhere.example>'] }), sipPort);
      expect(statusOf(await sip.next())).toBe(405);
      await sip.close();
      await juliet.next((el) => el.name === 'message' && el.getChildText('body') === 'counted');
      await juliet.client.send(xml('message', { to: `+15550000000@${prosody.component}`, type: 'chat', id: 'm-refused' }, xml('body', {}, 'nobody')));
      await juliet.next((el) => el.attrs['type'] === 'error' && el.attrs['id'] === 'm-refused');
    } finally {
      await juliet.stop();
    }

    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    const value = (series: string): number | undefined => {
      const line = metrics.body.split('\n').find((l) => l.startsWith(series));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    expect(value('sxb_events_total{direction="sip-to-xmpp",kind="message",outcome="routed",partner="example"}')).toBe(1);
    expect(value('sxb_events_total{direction="sip-to-xmpp",kind="message",outcome="delivered",partner="example"}')).toBe(1);
    expect(value('sxb_events_total{direction="xmpp-to-sip",kind="message",outcome="refused",partner="none"}')).toBe(1);
    expect(value('sxb_delivery_latency_seconds_count{direction="sip-to-xmpp",kind="message"}')).toBe(1);
    expect(value('sxb_xmpp_connected')).toBe(1);
    expect(value('sxb_sip_transactions_total{method="MESSAGE",status="202"}')).toBe(1);
    expect(value('sxb_sip_transactions_total{method="REFER",status="405"}')).toBe(1);
    expect(value('sxb_policy_denials_total{rule="toll-fraud-method"}')).toBe(1);
  });

  it('serves nothing else', async () => {
    expect((await get('/metrics-nope')).status).toBe(404);
    expect((await get('/readyz', 'POST')).status).toBe(405);
  });

  it('is not ready while the XMPP server is away, and says so', async () => {
    await prosody.stop();
    const down = await waitFor('not ready', async () => {
      const r = await get('/readyz');
      return r.status === 503 ? r : undefined;
    });
    expect(JSON.parse(down.body)).toMatchObject({ ready: false, checks: { xmpp: { ok: false, detail: 'component not connected' }, sip: { ok: true } } });
  });
});
