/**
 * Hostile input at the SIP listener (issue 6 item 7, "a fuzz suite run by the test command with
 * a fixed seed and a bounded count"): mutations of real requests (bytes flipped, cut, spliced,
 * CRLF and NUL injected, headers repeated, Content-Length lied about) thrown at a live SIP
 * adapter over UDP and TCP. Every datagram gets a response or is dropped and logged; the
 * adapter keeps answering a clean OPTIONS afterwards, its transaction table stays bounded, and
 * the core is handed only well-formed events. `scripts/fuzz-sip.ts` runs the same for longer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { sipSchema } from '../../src/config/schema.js';
import type { CanonicalEvent } from '../../src/core/events.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { SIP_CORPUS } from '../fixtures/fuzz/sip-corpus.js';
import { mutations } from '../support/sip-mutations.js';
import { newBranch, RawTcpPeer, RawUdpPeer, rawRequest, statusOf } from '../support/raw-sip.js';

let adapter: SipAdapter;
let port: number;
const events: CanonicalEvent[] = [];

beforeAll(async () => {
  const config = sipSchema.parse({
    listen: [
      { transport: 'udp', host: '127.0.0.1', port: 0 },
      { transport: 'tcp', host: '127.0.0.1', port: 0 },
    ],
    timers: { t1Ms: 50, t2Ms: 200, t4Ms: 250 },
  });
  adapter = new SipAdapter(config, { onEvent: (e) => (events.push(e), Promise.resolve()) }, silentLogger());
  await adapter.start();
  port = adapter.boundPorts()[0]!.port;
});

afterAll(async () => {
  await adapter?.stop();
});

/**
 * A clean OPTIONS from a fresh socket gets its 200. Sent again every half second, as a UA's
 * Timer E would (RFC 3261 §17.1.2.2): under the flood the kernel's UDP buffer drops datagrams
 * the adapter has not read yet, this one included.
 */
async function stillAnswers(): Promise<void> {
  const peer = await RawUdpPeer.open();
  const options = rawRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', branch: newBranch(), contentType: null });
  try {
    for (let attempt = 0; attempt < 40; attempt++) {
      await peer.send(options, port);
      const reply = await peer.next(500).catch(() => undefined);
      if (reply !== undefined) {
        expect(statusOf(reply)).toBe(200);
        return;
      }
    }
    throw new Error('no answer to OPTIONS within 20 s of the fuzzing');
  } finally {
    await peer.close();
  }
}

describe('the SIP listener under mutated input', () => {
  it('survives 1,500 mutated datagrams (seed 42): answers or drops each, stays bounded, still answers', async () => {
    const peer = await RawUdpPeer.open();
    try {
      let sent = 0;
      for (const datagram of mutations(SIP_CORPUS, { seed: 42, count: 1500 })) {
        await peer.send(datagram, port);
        sent++;
      }
      expect(sent).toBe(1500);
      await stillAnswers();
      // Server transactions live 64·T1 at most; the table is bounded by the layer's cap.
      expect(adapter.transactionCounts.servers).toBeLessThanOrEqual(1500);
      for (const e of events) expect(['message', 'subscription', 'probe', 'presence']).toContain(e.kind);
    } finally {
      await peer.close();
    }
  });

  it('survives 300 mutated requests on one TCP connection after another (seed 7), framing lies included', async () => {
    let sent = 0;
    for (const chunk of mutations(SIP_CORPUS, { seed: 7, count: 300 })) {
      const peer = await RawTcpPeer.open(port);
      peer.send(chunk);
      sent++;
      peer.close();
    }
    expect(sent).toBe(300);
    await stillAnswers();
  });
});
