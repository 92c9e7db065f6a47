/**
 * A hostile "server" on a raw TCP socket: it speaks the XEP-0114 handshake, then sends XML
 * that makes ltx throw (an undefined entity). This is hostile input, which no real server
 * would send, so it is scripted here rather than produced by Prosody. The adapter must stay up,
 * fail that stream, reconnect, and handle the next stream normally.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageEvent } from '../../src/core/events.js';
import { freePort, waitFor } from '../support/ports.js';
import { adapterHarness, type AdapterHarness } from '../support/xmpp-adapter-harness.js';

const COMPONENT = 'sip.hostile.test';
const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' " +
  `xmlns='jabber:component:accept' from='${COMPONENT}' id='hostile-stream'>`;

/** What connection number n sends once the handshake is done. */
const SCRIPT = [
  `<message from='eve@evil.test/x' to='a@${COMPONENT}' id='h1' type='chat'><body>&foo;</body></message>`,
  `<message from='eve@evil.test/x' to='a@${COMPONENT}' id='h2' type='chat'><body>after the bad one</body></message>`,
];

let server: Server;
let port: number;
const received: string[] = []; // everything each connection received from the adapter
const sockets: Socket[] = [];

beforeAll(async () => {
  port = await freePort();
  server = createServer((socket) => {
    const n = received.push('') - 1;
    sockets.push(socket);
    let headerSent = false;
    let handshaken = false;
    socket.on('error', () => undefined);
    socket.on('data', (data) => {
      received[n] += data.toString('utf8');
      const text = received[n] ?? '';
      if (!headerSent && text.includes('<stream:stream')) {
        headerSent = true;
        socket.write(HEADER);
      }
      // Any handshake is accepted: the secret is not what is under test.
      if (!handshaken && text.includes('</handshake>')) {
        handshaken = true;
        socket.write(`<handshake/>${SCRIPT[Math.min(n, SCRIPT.length - 1)]}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('XmppAdapter fed hostile XML', () => {
  let bridge: AdapterHarness;

  it('given an undefined entity in the stream, then the process stays up, the stream is failed as not-well-formed, and the adapter reconnects and works', async () => {
    bridge = adapterHarness({
      component: COMPONENT,
      secret: 'anything',
      server: { host: '127.0.0.1', port },
      reconnect: { initialMs: 50, maxMs: 200 },
    });
    await bridge.adapter.start();
    try {
      const after = (await bridge.event('the message of the second stream', (e) => e.kind === 'message' && e.originRef === 'h2')) as MessageEvent;
      expect(after.body).toBe('after the bad one');
      expect(received[0]).toContain("<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>");
      expect(bridge.events.some((e) => e.originRef === 'h1')).toBe(false);
      await waitFor('availability up, down, up', () => (bridge.availability.slice(0, 3).join() === 'true,false,true' ? true : undefined));
    } finally {
      await bridge.adapter.stop();
    }
  });
});

describe('XmppAdapter against a server that keeps failing the stream', () => {
  it('given every attempt ends in a stream error, then attempts are spaced by a doubling delay capped at maxMs', async () => {
    const failingPort = await freePort();
    const accepted: number[] = [];
    const failing = createServer((socket) => {
      accepted.push(performance.now());
      socket.on('error', () => undefined);
      socket.once('data', () => {
        // RFC 6120 §4.9.3.8 internal-server-error: not a refusal of the name or secret.
        socket.end(
          `${HEADER}<stream:error><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`,
        );
      });
    });
    await new Promise<void>((resolve) => failing.listen(failingPort, '127.0.0.1', resolve));
    const bridge = adapterHarness({
      component: COMPONENT,
      secret: 'anything',
      server: { host: '127.0.0.1', port: failingPort },
      reconnect: { initialMs: 50, maxMs: 200 },
    });
    try {
      await bridge.adapter.start();
      await waitFor('six connection attempts', () => (accepted.length >= 6 ? true : undefined));
      const gaps = accepted.slice(1, 6).map((t, i) => t - accepted[i]!);
      // Lower bounds only (a timer never fires early; a loaded machine may make it late).
      // 2 ms of slack for timer rounding.
      [50, 100, 200, 200, 200].forEach((delay, i) => expect(gaps[i]).toBeGreaterThanOrEqual(delay - 2));
      expect(bridge.availability).toEqual([false]);
    } finally {
      await bridge.adapter.stop();
      await new Promise<void>((resolve) => failing.close(() => resolve()));
    }
  });
});

