/**
 * The SIP adapter → sipp user agents over UDP, routed by the Request-URI host (an IP literal
 * with a port), with T1 shortened to 100 ms so retransmissions and Timer F happen in seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { sipSchema } from '../../src/config/schema.js';
import { BridgeError } from '../../src/core/errors.js';
import { failureOf, messageEvent, type MessageEvent } from '../../src/core/events.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { LossyUdpRelay } from '../support/lossy-udp.js';
import { RawUdpPeer } from '../support/raw-sip.js';
import { startSipp, type Sipp, type SippResult } from '../support/sipp.js';

const T1 = 100;
let adapter: SipAdapter;

beforeAll(async () => {
  const config = sipSchema.parse({
    listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }],
    timers: { t1Ms: T1, t2Ms: 400, t4Ms: 500 },
  });
  adapter = new SipAdapter(config, { onEvent: () => Promise.resolve() }, silentLogger());
  await adapter.start();
});

afterAll(async () => {
  await adapter?.stop();
});

function messageTo(port: number, body = 'héllo wörld'): MessageEvent {
  return messageEvent({
    origin: 'xmpp',
    from: { side: 'sip', user: 'romeo', domain: 'xmpp.example.org' },
    to: { side: 'sip', user: 'bob', domain: `127.0.0.1:${port}` },
    body,
    dedupeKey: `test:${Math.random()}`,
    createdAt: Date.now(),
  });
}

async function uas(keys: { status: string; reason: string }): Promise<Sipp> {
  return startSipp({ role: 'uas', scenario: 'uas-message.xml', transport: 'udp', keys });
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

describe('MESSAGE to a sipp UAS over UDP', () => {
  it('given the UAS answers 200, then send() resolves and the UAS got our text with a fresh 96-bit branch', async () => {
    const sipp = await uas({ status: '200', reason: 'OK' });
    await adapter.send(messageTo(sipp.port));
    const result = await finished(sipp);

    expect(result.code, explain(result)).toBe(0);
    expect(result.messages).toContain('héllo wörld');
    expect(result.messages).toMatch(/^Via: SIP\/2\.0\/UDP 127\.0\.0\.1:\d+;branch=z9hG4bK[A-Za-z0-9_-]{16,};rport/m);
    expect(result.messages).toMatch(/^From: <sip:romeo@xmpp\.example\.org>;tag=[A-Za-z0-9_-]{16,}/m);
  });

  // RFC 7247 §7.2 Table 3, the rows for these codes (503: note (9), not <service-unavailable/>).
  it.each([
    { status: '404', reason: 'Not Found', condition: 'item-not-found' },
    { status: '480', reason: 'Temporarily Unavailable', condition: 'recipient-unavailable' },
    { status: '486', reason: 'Busy Here', condition: 'recipient-unavailable' },
    { status: '408', reason: 'Request Timeout', condition: 'remote-server-timeout' },
    { status: '503', reason: 'Service Unavailable', condition: 'internal-server-error' },
  ])('given the UAS answers $status, then send() rejects with <$condition/>, not retryable', async ({ status, reason, condition }) => {
    const sipp = await uas({ status, reason });
    const outcome = adapter.send(messageTo(sipp.port)).then(
      () => undefined,
      (e: unknown) => e,
    );
    const err = await outcome;
    const result = await finished(sipp);

    expect(result.code, explain(result)).toBe(0);
    expect(err).toBeInstanceOf(BridgeError);
    expect(err).toMatchObject({ code: 'SIP_REJECTED', condition, sipStatus: Number(status), retryable: false });
  });
});

describe('large requests', () => {
  it('given a MESSAGE over 1300 bytes for a UDP destination, then it goes over TCP (RFC 3261 §18.1.1)', async () => {
    const sipp = await startSipp({ role: 'uas', scenario: 'uas-message.xml', transport: 'tcp', keys: { status: '200', reason: 'OK' } });
    const long = 'é'.repeat(1000); // 2000 bytes of UTF-8
    await adapter.send(messageTo(sipp.port, long));
    const result = await finished(sipp);

    expect(result.code, explain(result)).toBe(0);
    expect(result.messages).toMatch(/^Via: SIP\/2\.0\/TCP /m);
    expect(result.messages).toContain(long);
  });
  it('given a MESSAGE over 1300 bytes and TCP refused at the destination, then it is retried over UDP (§18.1.1)', async () => {
    const sipp = await uas({ status: '200', reason: 'OK' }); // a UDP-only peer
    const long = 'ü'.repeat(1000);
    await adapter.send(messageTo(sipp.port, long));
    const result = await finished(sipp);

    expect(result.code, explain(result)).toBe(0);
    expect(result.messages).toMatch(/^Via: SIP\/2\.0\/UDP /m);
    expect(result.messages).toContain(long);
  });
});

describe('UDP loss', () => {
  it('given the first copy of the MESSAGE is lost, then Timer E resends it and the UAS gets it once', async () => {
    const sipp = await uas({ status: '200', reason: 'OK' });
    const relay = await LossyUdpRelay.start({ target: { host: '127.0.0.1', port: sipp.port }, dropToTarget: 1 });
    try {
      await adapter.send(messageTo(relay.port, 'lost once'));
      const result = await finished(sipp);

      expect(result.code, `${explain(result)}\n${relay.seen.join('\n')}`).toBe(0); // -m 1: exactly one call
      expect(relay.toTarget.dropped).toBe(1);
      expect(relay.toTarget.forwarded).toBeGreaterThanOrEqual(1);
      expect(relay.toClient.forwarded).toBeGreaterThanOrEqual(1);
    } finally {
      await relay.close();
    }
  });

  it('given a peer that never answers, then send() rejects at Timer F with <remote-server-timeout/>, not retryable', async () => {
    const blackhole = await RawUdpPeer.open();
    try {
      const err = await adapter.send(messageTo(blackhole.port, 'into the void')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'SIP_TIMEOUT', condition: 'remote-server-timeout', retryable: false });
      expect(blackhole.waiting).toBeGreaterThan(1); // the original and Timer E retransmissions
    } finally {
      await blackhole.close();
    }
  }, 64 * T1 + 10_000);
});

describe('failures for SIP-originated messages', () => {
  it('given a failure event, then send() resolves: page mode has no way to tell the SIP sender later', async () => {
    const original = messageEvent({
      origin: 'sip',
      from: { side: 'sip', user: 'alice', domain: 'sip.example.com' },
      to: { side: 'xmpp', user: 'bob', domain: 'xmpp.example.org' },
      body: 'hi',
      dedupeKey: 'sip:x:1:y',
      createdAt: Date.now(),
    });
    await expect(adapter.send(failureOf(original, { condition: 'item-not-found' }, Date.now()))).resolves.toBeUndefined();
  });
});
