/**
 * The component connection survives the server going away: a restart, and a frozen server
 * (SIGSTOP) that only the XEP-0199 ping can notice; a stanza counts as sent only once the
 * server has answered a ping written after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageEvent } from '../../src/core/events.js';
import { waitFor } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { connectUser } from '../support/xmpp-client.js';
import { adapterHarness, type AdapterHarness } from '../support/xmpp-adapter-harness.js';

let prosody: Prosody;
let bridge: AdapterHarness;

beforeAll(async () => {
  prosody = await startProsody();
  bridge = adapterHarness({
    component: prosody.component,
    secret: prosody.secret,
    server: { host: prosody.host, port: prosody.componentPort },
    reconnect: { initialMs: 100, maxMs: 800 },
    ping: { intervalMs: 200, timeoutMs: 600 },
  });
  await bridge.adapter.start();
});

afterAll(async () => {
  await bridge?.adapter.stop();
  await prosody?.stop();
});

/** Availability reports since `from`, e.g. [false, true]. */
const since = (from: number): boolean[] => bridge.availability.slice(from);

describe('XmppAdapter when the server goes away', () => {
  it('given Prosody restarts, then the adapter goes offline, reconnects, and delivers a message sent afterwards', async () => {
    const mark = bridge.availability.length;
    await prosody.restart();
    await waitFor('offline then online again', () => (since(mark).join() === 'false,true' ? true : undefined), 20_000);
    const romeo = await connectUser(prosody, prosody.users[1]!);
    try {
      const event = messageEvent({
        origin: 'sip',
        from: { side: 'xmpp', user: 'bob', domain: prosody.component },
        to: { side: 'xmpp', user: 'romeo', domain: prosody.domain },
        body: 'after the restart',
        dedupeKey: 'restart-1',
        createdAt: Date.now(),
      });
      await bridge.adapter.send(event);
      expect((await romeo.next((el) => el.attrs['id'] === event.id)).getChildText('body')).toBe('after the restart');
    } finally {
      await romeo.stop();
    }
  });

  it('given Prosody is frozen, then the ping timeout takes the adapter offline, and it comes back once thawed', async () => {
    await waitFor('online before freezing', () => (bridge.adapter && bridge.availability.at(-1) === true ? true : undefined));
    const mark = bridge.availability.length;
    prosody.signal('SIGSTOP');
    try {
      // interval 200 ms + timeout 600 ms; the bound leaves room for a loaded machine.
      await waitFor('offline after a ping timeout', () => (since(mark).includes(false) ? true : undefined), 10_000);
      await expect(
        bridge.adapter.send(
          messageEvent({
            origin: 'sip',
            from: { side: 'xmpp', user: 'bob', domain: prosody.component },
            to: { side: 'xmpp', user: 'romeo', domain: prosody.domain },
            body: 'while frozen',
            dedupeKey: 'frozen-1',
            createdAt: Date.now(),
          }),
        ),
      ).rejects.toMatchObject({ code: 'XMPP_OFFLINE', retryable: true });
    } finally {
      prosody.signal('SIGCONT');
    }
    await waitFor('online after thawing', () => (since(mark).join() === 'false,true' ? true : undefined), 20_000);
  });

  it('given Prosody freezes after a stanza is written, then the send is not taken as done: it fails retryable once unconfirmed', async () => {
    await waitFor('online before freezing', () => (bridge.availability.at(-1) === true ? true : undefined), 20_000);
    const mark = bridge.availability.length;
    const event = messageEvent({
      origin: 'sip',
      from: { side: 'xmpp', user: 'bob', domain: prosody.component },
      to: { side: 'xmpp', user: 'romeo', domain: prosody.domain },
      body: 'written, never read',
      dedupeKey: 'unconfirmed-1',
      createdAt: Date.now(),
    });
    prosody.signal('SIGSTOP');
    try {
      // The socket takes the bytes (the kernel buffers them); only the server's answer to the
      // ping behind them would confirm, and a frozen server gives none.
      await expect(bridge.adapter.send(event)).rejects.toMatchObject({ code: 'XMPP_OFFLINE', retryable: true });
    } finally {
      prosody.signal('SIGCONT');
    }
    await waitFor('online after thawing', () => (since(mark).at(-1) === true ? true : undefined), 20_000);
  });
});
