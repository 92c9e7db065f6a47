/**
 * /healthz and /readyz as an orchestrator polls them: alive at once, ready only once the SIP
 * listener is up and the component is connected to a real Prosody, not ready again (saying
 * why) when Prosody goes away.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { HealthServer, readiness } from '../../src/telemetry/health.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { freePort, waitFor } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';

let prosody: Prosody;
let bridge: ReturnType<typeof createBridge>;
let health: HealthServer;
let base: string;

beforeAll(async () => {
  prosody = await startProsody({ domain: 'xmpp.test', component: 'sip.xmpp.test' });
  const config = parseConfig({
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: await freePort() }] },
    xmpp: {
      component: prosody.component,
      server: { host: prosody.host, port: prosody.componentPort },
      secret: prosody.secret,
      reconnect: { initialMs: 100, maxMs: 200 },
    },
    mapping: { xmppDomains: [prosody.domain] },
  });
  bridge = createBridge(config, silentLogger());
  health = new HealthServer({ host: '127.0.0.1', port: 0 }, () => readiness(bridge.readinessChecks()));
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
