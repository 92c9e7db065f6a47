/**
 * The SIP adapter's life: the constructor does no I/O, start() binds (port 0 → the chosen
 * port is readable from boundPorts()), stop() waits for in-flight work and frees its sockets.
 */
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { sipSchema, type SipConfig } from '../../src/config/schema.js';
import { messageEvent, type MessageEvent } from '../../src/core/events.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { header, rawRequest, RawUdpPeer, statusOf } from '../support/raw-sip.js';
import { startSipp } from '../support/sipp.js';

const hooks = { onEvent: () => Promise.resolve() };
let adapter: SipAdapter;

function config(port: number): SipConfig {
  return sipSchema.parse({ listen: [{ transport: 'udp', host: '127.0.0.1', port }], timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 } });
}

function messageTo(port: number): MessageEvent {
  return messageEvent({
    origin: 'xmpp',
    from: { side: 'sip', user: 'romeo', domain: 'xmpp.example.org' },
    to: { side: 'sip', user: 'bob', domain: `127.0.0.1:${port}` },
    body: 'in flight at stop',
    dedupeKey: 'test:lifecycle',
    createdAt: Date.now(),
  });
}

function udpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    sock.once('error', () => resolve(false));
    sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(true)));
  });
}

const MAX_SERVER_TRANSACTIONS = 2;

beforeAll(async () => {
  adapter = new SipAdapter(config(0), hooks, silentLogger(), { maxServerTransactions: MAX_SERVER_TRANSACTIONS });
  await adapter.start();
});

afterAll(async () => {
  await adapter?.stop();
});

describe('SIP adapter lifecycle', () => {
  it('given port 0, then start() binds a real port and boundPorts() reports it', () => {
    const [bound] = adapter.boundPorts();
    expect(bound).toMatchObject({ transport: 'udp', host: '127.0.0.1' });
    expect(bound!.port).toBeGreaterThan(0);
  });

  it('given a port already taken, then the constructor succeeds and start() rejects', async () => {
    const taken = adapter.boundPorts()[0]!.port;
    const second = new SipAdapter(config(taken), hooks, silentLogger());
    await expect(second.start()).rejects.toThrow(/EADDRINUSE/);
  });

  it('given an adapter never started, then send() rejects as retryable', async () => {
    const idle = new SipAdapter(config(0), hooks, silentLogger());
    await expect(idle.send(messageTo(9))).rejects.toMatchObject({ code: 'SIP_STOPPED', retryable: true });
  });

  it('given the server transaction table is full, then a new request gets 503 with Retry-After', async () => {
    const peer = await RawUdpPeer.open();
    const port = adapter.boundPorts()[0]!.port;
    try {
      const statuses: number[] = [];
      for (let i = 0; i <= MAX_SERVER_TRANSACTIONS; i++) {
        await peer.send(rawRequest({ body: `flood ${i}` }), port);
        const reply = await peer.next();
        statuses.push(statusOf(reply));
        if (statusOf(reply) === 503) expect(header(reply, 'Retry-After')).toBe('5');
      }
      expect(statuses).toEqual([...Array<number>(MAX_SERVER_TRANSACTIONS).fill(202), 503]);
    } finally {
      await peer.close();
    }
  });

  it('given a MESSAGE in flight, then stop() waits for its answer before closing the socket', async () => {
    const sipp = await startSipp({ role: 'uas', scenario: 'uas-message-slow.xml', transport: 'udp', keys: { pauseMs: '300' } });
    try {
      let delivered = false;
      const sending = adapter.send(messageTo(sipp.port)).then(() => (delivered = true));
      await adapter.stop();

      expect(delivered).toBe(true);
      await sending;
      expect(await udpPortFree(adapter.boundPorts()[0]!.port)).toBe(true);
    } finally {
      await sipp.stop();
    }
  });
});
