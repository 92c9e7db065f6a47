/**
 * XmppAdapter against a real Prosody (started once for this file) and a real @xmpp/client user.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import xml from '@xmpp/xml';
import { BridgeError } from '../../src/core/errors.js';
import { messageEvent, type FailureEvent, type MessageEvent } from '../../src/core/events.js';
import { waitFor } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { connectUser, type TestUser } from '../support/xmpp-client.js';
import { adapterHarness, type AdapterHarness } from '../support/xmpp-adapter-harness.js';

const CAPPED_COMPONENT = 'capped.xmpp.test';
let prosody: Prosody;
let bridge: AdapterHarness;
let juliet: TestUser;

beforeAll(async () => {
  prosody = await startProsody({ extraComponents: { [CAPPED_COMPONENT]: 'capped-secret' } });
  bridge = adapterHarness({
    component: prosody.component,
    secret: prosody.secret,
    server: { host: prosody.host, port: prosody.componentPort },
  });
  await bridge.adapter.start();
  juliet = await connectUser(prosody, prosody.users[0]!);
});

afterAll(async () => {
  await juliet?.stop();
  await bridge?.adapter.stop();
  await prosody?.stop();
});

function outbound(body: string, to = juliet.jid, fromUser = 'alice\\40corp.example'): MessageEvent {
  const [local, rest] = to.split('@') as [string, string];
  const [domain, resource] = rest.split('/') as [string, string | undefined];
  return messageEvent({
    origin: 'sip',
    from: { side: 'xmpp', user: fromUser, domain: prosody.component },
    to: resource === undefined ? { side: 'xmpp', user: local, domain } : { side: 'xmpp', user: local, domain, resource },
    body,
    dedupeKey: `test:${body}`,
    createdAt: Date.now(),
  });
}

describe('XmppAdapter with Prosody', () => {
  it('given a connected component, then availability was reported up', () => {
    expect(bridge.availability).toEqual([true]);
  });

  it('given a user writes to an address at the component, then a canonical message arrives with the exact body', async () => {
    const body = 'Hello from XMPP, café ☕ 😀 & <tags>';
    await juliet.client.send(xml('message', { to: `alice\\40corp.example@${prosody.component}`, type: 'chat', id: 'in-1' }, xml('body', {}, body)));
    const e = (await bridge.event('message in-1', (ev) => ev.kind === 'message' && ev.originRef === 'in-1')) as MessageEvent;
    expect(e).toMatchObject({
      origin: 'xmpp',
      from: { side: 'xmpp', user: 'juliet', domain: prosody.domain, resource: 'test' },
      to: { side: 'xmpp', user: 'alice\\40corp.example', domain: prosody.component },
      body,
      messageType: 'chat',
      dedupeKey: `xmpp:juliet@${prosody.domain}/test:in-1`,
    });
  });

  it('given a message event for the user, then the user receives it from the mapped address', async () => {
    const event = outbound('Hello from SIP, naïve 中文 𝄞');
    await bridge.adapter.send(event);
    const got = await juliet.next((el) => el.name === 'message' && el.attrs['id'] === event.id);
    expect(got.attrs['from']).toBe(`alice\\40corp.example@${prosody.component}`);
    expect(got.getChildText('body')).toBe('Hello from SIP, naïve 中文 𝄞');
  });

  it('given the core refuses an inbound message, then the user gets an error stanza with its condition at once', async () => {
    bridge.onEvent = async (e) => {
      if (e.kind === 'message' && e.body === 'refuse me') {
        throw new BridgeError('ADDRESS_UNMAPPED', 'nobody is known by that address', { condition: 'item-not-found' });
      }
    };
    await juliet.client.send(xml('message', { to: `ghost@${prosody.component}`, type: 'chat', id: 'in-refused' }, xml('body', {}, 'refuse me')));
    const err = await juliet.next((el) => el.attrs['type'] === 'error' && el.attrs['id'] === 'in-refused');
    bridge.onEvent = async () => undefined;
    expect(err.name).toBe('message');
    expect(err.attrs['from']).toBe(`ghost@${prosody.component}`);
    expect(err.getChild('error')?.attrs['type']).toBe('cancel');
    expect(err.getChild('error')?.getChild('item-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas')).toBeDefined();
    expect(err.getChild('error')?.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas')).toBe('nobody is known by that address');
  });

  it('given the server bounces a message we sent, then a failure of the original event reaches the core', async () => {
    const event = outbound('to nobody', `nobody@${prosody.domain}`);
    await bridge.adapter.send(event);
    const failure = (await bridge.event('failure of the bounced message', (e) => e.kind === 'failure' && e.ref === event.id)) as FailureEvent;
    expect(failure).toMatchObject({ origin: 'xmpp', refKind: 'message', condition: 'service-unavailable', to: event.from, from: event.to });
  });

  it('given a user pings the component and asks disco#info, then both are answered', async () => {
    await juliet.client.send(xml('iq', { type: 'get', to: prosody.component, id: 'ping-1' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await juliet.client.send(xml('iq', { type: 'get', to: prosody.component, id: 'disco-1' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    await juliet.client.send(xml('iq', { type: 'get', to: prosody.component, id: 'ver-1' }, xml('query', { xmlns: 'jabber:iq:version' })));
    expect((await juliet.next((el) => el.attrs['id'] === 'ping-1')).attrs['type']).toBe('result');
    const disco = await juliet.next((el) => el.attrs['id'] === 'disco-1');
    expect(disco.getChild('query')?.getChild('identity')?.attrs).toMatchObject({ category: 'gateway', type: 'sip' });
    const version = await juliet.next((el) => el.attrs['id'] === 'ver-1');
    expect(version.getChild('error')?.getChild('service-unavailable')).toBeDefined();
  });

  it('given an oversize stanza, then it is refused locally and the stream stays up for the next message', async () => {
    const huge = outbound('x'.repeat(bridge.config.maxStanzaBytes));
    await expect(bridge.adapter.send(huge)).rejects.toMatchObject({ code: 'XMPP_STANZA_TOO_LARGE', condition: 'not-acceptable', retryable: false });
    const next = outbound('after the oversize one');
    await bridge.adapter.send(next);
    expect((await juliet.next((el) => el.attrs['id'] === next.id)).getChildText('body')).toBe('after the oversize one');
    expect(bridge.availability).toEqual([true]);
  });

  it('given a from outside the component domain, then it is refused locally and the stream stays up', async () => {
    const foreign = { ...outbound('spoofed'), from: { side: 'xmpp' as const, user: 'bob', domain: `x.${prosody.component}` } };
    await expect(bridge.adapter.send(foreign)).rejects.toMatchObject({ code: 'XMPP_FOREIGN_FROM', condition: 'policy-violation', retryable: false });
    const next = outbound('after the foreign one');
    await bridge.adapter.send(next);
    expect((await juliet.next((el) => el.attrs['id'] === next.id)).getChildText('body')).toBe('after the foreign one');
    expect(bridge.availability).toEqual([true]);
  });

  it('given a wrong secret, then start() rejects naming the refusal and no reconnect loop runs', async () => {
    const wrong = adapterHarness({
      component: prosody.component,
      secret: 'not-the-secret',
      server: { host: prosody.host, port: prosody.componentPort },
      reconnect: { initialMs: 20, maxMs: 40 },
    });
    const connectionsBefore = countOf(await prosody.log(), 'Incoming Jabber component connection');
    await expect(wrong.adapter.start()).rejects.toThrow(/refused the component name or secret for 'sip\.xmpp\.test' \(not-authorized/);
    // Observation window: a retry loop at 20-40 ms would reconnect several times in 500 ms.
    await new Promise((r) => setTimeout(r, 500));
    expect(countOf(await prosody.log(), 'Incoming Jabber component connection') - connectionsBefore).toBe(1);
    expect(wrong.availability).toEqual([]);
    await wrong.adapter.stop();
  });

  it('given more sends at once than maxInFlight allows to wait, then the excess is refused as retryable and the rest arrive in order', async () => {
    const capped = adapterHarness({
      component: CAPPED_COMPONENT,
      secret: 'capped-secret',
      server: { host: prosody.host, port: prosody.componentPort },
      maxInFlight: 4,
    });
    await capped.adapter.start();
    try {
      const events = Array.from({ length: 20 }, (_, n) => ({ ...outbound(`capped ${n}`), from: { side: 'xmpp' as const, user: 'cap', domain: CAPPED_COMPONENT } }));
      const results = await Promise.allSettled(events.map((e) => capped.adapter.send(e)));
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as BridgeError] : []));
      // 4 written at once, 4 waiting for a slot, the other 12 refused.
      expect(refused.map((e) => [e.code, e.condition, e.retryable])).toEqual(Array(12).fill(['XMPP_BUSY', 'resource-constraint', true]));
      const sent = events.filter((_, n) => results[n]?.status === 'fulfilled');
      const ids = new Set(sent.map((e) => e.id));
      await waitFor('the 8 accepted messages', () => (juliet.received.filter((el) => ids.has(el.attrs['id'] ?? '')).length === 8 ? true : undefined));
      const order = juliet.received.filter((el) => ids.has(el.attrs['id'] ?? '')).map((el) => el.getChildText('body'));
      expect(order).toEqual(sent.map((e) => e.body));
    } finally {
      await capped.adapter.stop();
    }
  });

  it('given an adapter that is not connected, then send rejects as retryable XMPP_OFFLINE', async () => {
    const other = adapterHarness({ component: prosody.component, secret: prosody.secret, server: { host: prosody.host, port: 1 } });
    await expect(other.adapter.send(outbound('while offline'))).rejects.toMatchObject({ code: 'XMPP_OFFLINE', retryable: true });
  });
});

function countOf(text: string, needle: string): number {
  return text.split(needle).length - 1;
}
