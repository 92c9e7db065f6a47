/**
 * Presence end to end through the whole bridge (issue 4), with real peers on both sides:
 * - a SIP watcher subscribes to an XMPP user on Prosody; the user approves in her real client;
 *   her presence changes arrive as NOTIFYs with PIDF; a user the policy hides stays pending;
 * - an XMPP user subscribes to a SIP user whose presence lives on a real Kamailio presence
 *   server (sipp PUBLISHes it); approval and presence arrive in her client; her unsubscribe
 *   ends the SIP subscription.
 */
import { createWriteStream } from 'node:fs';
import xml from '@xmpp/xml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger, silentLogger } from '../../src/telemetry/logger.js';
import { startKamailioPresence, type KamailioPresence } from '../support/kamailio-presence.js';
import { freePort, waitFor } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { header } from '../support/raw-sip.js';
import { sipBody, SipWatcher, subscriptionState } from '../support/sip-watcher.js';
import { startSipp } from '../support/sipp.js';
import { connectUser, requestRoster, type TestUser } from '../support/xmpp-client.js';

let prosody: Prosody;
let kamailio: KamailioPresence;
let bridge: ReturnType<typeof createBridge>;
let juliet: TestUser;
let romeo: TestUser;
let bridgePort: number;

beforeAll(async () => {
  [prosody, kamailio] = await Promise.all([startProsody({ domain: 'xmpp.test', component: 'sip.xmpp.test' }), startKamailioPresence()]);
  bridgePort = await freePort();
  const config = parseConfig({
    sip: {
      listen: [{ transport: 'udp', host: '127.0.0.1', port: bridgePort }],
      outboundProxy: kamailio.uri('udp'),
      timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
    },
    xmpp: { component: prosody.component, server: { host: prosody.host, port: prosody.componentPort }, secret: prosody.secret },
    mapping: { xmppDomains: [prosody.domain] },
    // Juliet and every SIP user of corp.example may be seen; Romeo may not.
    presence: { visible: [`juliet@${prosody.domain}`, 'sip:*@corp.example'] },
  });
  // E2E_LOG=FILE keeps the bridge's debug log of a run, for when this test needs explaining.
  const logFile = process.env['E2E_LOG'];
  bridge = createBridge(config, logFile ? createLogger({ level: 'debug', destination: createWriteStream(logFile) }) : silentLogger());
  await bridge.start();
  [juliet, romeo] = await Promise.all([connectUser(prosody, prosody.users[0]!), connectUser(prosody, prosody.users[1]!)]);
  // Prosody delivers roster pushes and approvals only to sessions that asked for the roster.
  await Promise.all([requestRoster(juliet), requestRoster(romeo)]);
});

afterAll(async () => {
  await juliet?.stop();
  await romeo?.stop();
  await bridge?.stop();
  await kamailio?.stop();
  await prosody?.stop();
});

describe('a SIP watcher and an XMPP presentity', () => {
  it('given alice subscribes to juliet, when juliet approves, then her presence changes reach alice as PIDF NOTIFYs', async () => {
    const aliceJid = `alice\\40corp.example@${prosody.component}`;
    const watcher = await SipWatcher.subscribe(bridgePort, 'alice@corp.example', `juliet@${prosody.domain}`);
    try {
      // RFC 6665 §4.2.1.2: a NOTIFY at once; pending while juliet has not answered.
      await watcher.notify('NOTIFY pending', (n) => subscriptionState(n).startsWith('pending'));

      const request = await juliet.next((el) => el.name === 'presence' && el.attrs['type'] === 'subscribe' && el.attrs['from'] === aliceJid);
      expect(request.attrs['to']).toBe(`juliet@${prosody.domain}`);
      await juliet.client.send(xml('presence', { to: aliceJid, type: 'subscribed' }));

      await watcher.notify('NOTIFY active', (n) => subscriptionState(n).startsWith('active'));
      await juliet.client.send(xml('presence', {}, xml('show', {}, 'dnd'), xml('status', {}, 'in a meeting')));
      const dnd = await watcher.notify('NOTIFY with dnd', (n) => sipBody(n).includes('in a meeting'));
      expect(header(dnd, 'Content-Type')).toBe('application/pidf+xml');
      expect(sipBody(dnd)).toContain('<basic>open</basic>');
      expect(sipBody(dnd)).toMatch(/busy|dnd/);

      await juliet.client.send(xml('presence', { type: 'unavailable' }));
      const gone = await watcher.notify('NOTIFY closed', (n) => n !== dnd && watcher.notifies.indexOf(n) > watcher.notifies.indexOf(dnd) && sipBody(n).includes('<basic>closed</basic>'));
      expect(subscriptionState(gone)).toMatch(/^active/);

      // Un-SUBSCRIBE ends it (RFC 6665 §4.2.1.4).
      const ended = await watcher.request(0);
      expect(ended.startsWith('SIP/2.0 200')).toBe(true);
      await watcher.notify('NOTIFY terminated', (n) => subscriptionState(n).startsWith('terminated'));
    } finally {
      await watcher.close();
      // Back online: a server delivers subscription requests to available resources only.
      const seen = juliet.received.length;
      await juliet.client.send(xml('presence', {}));
      await waitFor('juliet available again', () =>
        juliet.received.slice(seen).find((el) => el.name === 'presence' && el.attrs['from'] === juliet.jid && el.attrs['type'] === undefined),
      );
    }
  });

  it('given juliet refuses a SIP watcher in her client, then its subscription ends terminated;reason=rejected', async () => {
    const daveJid = `dave\\40corp.example@${prosody.component}`;
    const watcher = await SipWatcher.subscribe(bridgePort, 'dave@corp.example', `juliet@${prosody.domain}`);
    try {
      await watcher.notify('NOTIFY pending', (n) => subscriptionState(n).startsWith('pending'));
      await juliet.next((el) => el.name === 'presence' && el.attrs['type'] === 'subscribe' && el.attrs['from'] === daveJid);
      await juliet.client.send(xml('presence', { to: daveJid, type: 'unsubscribed' }));
      const ended = await watcher.notify('NOTIFY terminated', (n) => subscriptionState(n).startsWith('terminated'));
      expect(subscriptionState(ended)).toBe('terminated;reason=rejected');
      expect(watcher.notifies.some((n) => sipBody(n).includes('<basic>open</basic>'))).toBe(false);
    } finally {
      await watcher.close();
    }
  });

  it('keeps a watcher of a user the policy hides pending, and the hidden user never hears of it', async () => {
    const hidden = await SipWatcher.subscribe(bridgePort, 'carol@corp.example', `romeo@${prosody.domain}`);
    try {
      await hidden.notify('NOTIFY pending for romeo', (n) => subscriptionState(n).startsWith('pending'));
      // A marker through the same router and component stream: carol's request to juliet
      // arrives, so a request to romeo, had it been passed on, would have arrived before it.
      const marker = await SipWatcher.subscribe(bridgePort, 'carol@corp.example', `juliet@${prosody.domain}`);
      await juliet.next((el) => el.attrs['type'] === 'subscribe' && el.attrs['from'] === `carol\\40corp.example@${prosody.component}`);
      await marker.close();
      expect(romeo.received.filter((el) => el.name === 'presence' && el.attrs['type'] === 'subscribe')).toEqual([]);
      expect(hidden.notifies.every((n) => subscriptionState(n).startsWith('pending'))).toBe(true);
    } finally {
      await hidden.close();
    }
  });
});

describe('an XMPP watcher and a SIP presentity on a Kamailio presence server', () => {
  const bobJid = () => `bob\\40corp.example@${prosody.component}`;

  /** Bob's phone PUBLISHes (RFC 3903); a later PUBLISH with the entity-tag replaces the first. */
  async function publish(basic: 'open' | 'closed', note: string, etag?: string): Promise<string> {
    const sipp = await startSipp({
      role: 'uac',
      scenario: etag === undefined ? 'presence-publish.xml' : 'presence-publish-modify.xml',
      transport: 'udp',
      target: { host: kamailio.host, port: kamailio.port },
      service: 'bob',
      keys: { domain: 'corp.example', basic, note, ...(etag === undefined ? {} : { etag }) },
    });
    try {
      const result = await sipp.done;
      expect(result.code, `${result.errors}\n${result.messages}`).toBe(0);
      const tag = /^SIP-ETag:\s*(\S+)/im.exec(result.messages)?.[1];
      if (tag === undefined) throw new Error(`no SIP-ETag in the PUBLISH answer:\n${result.messages}`);
      return tag;
    } finally {
      await sipp.stop();
    }
  }

  it('given juliet subscribes to bob, then she is approved and sees his published presence, and her unsubscribe ends the SIP subscription', async () => {
    const etag = await publish('open', 'at my desk');

    await juliet.client.send(xml('presence', { to: bobJid(), type: 'subscribe', id: 'sub-bob' }));

    const approved = await juliet.next((el) => el.name === 'presence' && el.attrs['type'] === 'subscribed' && el.attrs['from']?.startsWith(bobJid()) === true);
    expect(approved).toBeDefined();
    const presence = await juliet.next((el) => el.name === 'presence' && el.attrs['from']?.startsWith(bobJid()) === true && el.getChildText('status') === 'at my desk');
    expect(presence.attrs['type']).toBeUndefined();
    expect(kamailio.requests().some((r) => r.startsWith('SUBSCRIBE sip:bob@corp.example'))).toBe(true);

    await publish('closed', 'gone home', etag);
    const offline = await juliet.next((el) => el.name === 'presence' && el.attrs['from']?.startsWith(bobJid()) === true && el.attrs['type'] === 'unavailable');
    expect(offline).toBeDefined();

    await juliet.client.send(xml('presence', { to: bobJid(), type: 'unsubscribe' }));
    await waitFor('the SIP subscription ended at the presence server', () => kamailio.requests().some((r) => r.startsWith('SUBSCRIBE') && / expires=0\b/.test(r)) || undefined);
  });
});
