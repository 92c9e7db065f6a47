/**
 * The SIP adapter → sipp user agents over TCP through a configured outbound proxy address
 * (a loose-routing proxy URI), where each sipp UAS in turn listens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { sipSchema } from '../../src/config/schema.js';
import { messageEvent, type MessageEvent } from '../../src/core/events.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { freePort } from '../support/ports.js';
import { startSipp, type Sipp, type SippResult } from '../support/sipp.js';

let adapter: SipAdapter;
/** The outbound proxy's port: each test's sipp UAS listens on it (tests in a file run in turn). */
let proxyPort: number;

beforeAll(async () => {
  proxyPort = await freePort();
  const config = sipSchema.parse({
    listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
    outboundProxy: `sip:127.0.0.1:${proxyPort};transport=tcp;lr`,
    timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
  });
  adapter = new SipAdapter(config, { onEvent: () => Promise.resolve() }, silentLogger());
  await adapter.start();
});

afterAll(async () => {
  await adapter?.stop();
});

function message(body: string): MessageEvent {
  return messageEvent({
    origin: 'xmpp',
    from: { side: 'sip', user: 'romeo', domain: 'xmpp.example.org' },
    to: { side: 'sip', user: 'juliet', domain: 'sip.example.net' },
    body,
    dedupeKey: `test:${body}`,
    createdAt: Date.now(),
  });
}

function uas(status: string, reason: string, calls = 1): Promise<Sipp> {
  return startSipp({ role: 'uas', scenario: 'uas-message.xml', transport: 'tcp', port: proxyPort, calls, keys: { status, reason } });
}

async function finished(sipp: Sipp): Promise<SippResult> {
  try {
    return await sipp.done;
  } finally {
    await sipp.stop();
  }
}

function explain(r: SippResult): string {
  return `sipp exit ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`;
}

describe('MESSAGE over TCP via the outbound proxy', () => {
  it('given the UAS answers 200, then send() resolves; the request keeps the user R-URI and routes via the proxy', async () => {
    const sipp = await uas('200', 'OK');
    await adapter.send(message('over tcp'));
    const result = await finished(sipp);

    expect(result.code, explain(result)).toBe(0);
    expect(result.messages).toMatch(/^MESSAGE sip:juliet@sip\.example\.net SIP\/2\.0/m);
    expect(result.messages).toContain(`Route: <sip:127.0.0.1:${proxyPort};transport=tcp;lr>`);
    expect(result.messages).toMatch(/^Via: SIP\/2\.0\/TCP /m);
    expect(result.messages).toContain('over tcp');
  });

  it('given two MESSAGEs to the same proxy, then both go over one connection', async () => {
    const sipp = await uas('200', 'OK', 3);
    try {
      await adapter.send(message('first'));
      await adapter.send(message('second'));
      // sipp waits for its third call, so the connection is still up: one, not two.
      expect(adapter.openConnections).toBe(1);
      await adapter.send(message('third'));
    } finally {
      const result = await finished(sipp);
      expect(result.code, explain(result)).toBe(0);
    }
  });

  it('given the UAS answers 486, then send() rejects with <recipient-unavailable/> (RFC 7247 Table 3)', async () => {
    const sipp = await uas('486', 'Busy Here');
    const err = await adapter.send(message('busy')).then(
      () => undefined,
      (e: unknown) => e,
    );
    const result = await finished(sipp);
    expect(result.code, explain(result)).toBe(0);
    expect(err).toMatchObject({ code: 'SIP_REJECTED', condition: 'recipient-unavailable', sipStatus: 486, retryable: false });
  });

  it('given nothing listens at the proxy, then send() rejects at once as retryable (nothing was sent)', async () => {
    const err = await adapter.send(message('refused')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'SIP_TRANSPORT', retryable: true });
  });
});
