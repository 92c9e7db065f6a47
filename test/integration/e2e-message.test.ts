/**
 * End to end through real servers: an XMPP user on Prosody, the bridge mounted as its
 * component, Kamailio as the SIP trunk proxy in front of the bridge, and sipp playing the SIP
 * users. Everything on loopback, started once for the file.
 */
import xml from '@xmpp/xml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Bridge } from '../../src/core/bridge.js';
import { createLogger, silentLogger } from '../../src/telemetry/logger.js';
import { startKamailio, type Kamailio } from '../support/kamailio.js';
import { freePort } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { startSipp } from '../support/sipp.js';
import { connectUser, type TestUser } from '../support/xmpp-client.js';

const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

let prosody: Prosody;
let kamailio: Kamailio;
let bridge: Bridge;
let juliet: TestUser;
let bridgePort: number;
/** Where Kamailio sends MESSAGE requests for corp.example: a sipp UAS started per test. */
let aliceUasPort: number;

beforeAll(async () => {
  prosody = await startProsody({ domain: 'xmpp.test', component: 'sip.xmpp.test' });
  bridgePort = await freePort();
  aliceUasPort = await freePort();
  kamailio = await startKamailio({
    routes: [
      // SIP users reach XMPP users through the bridge, over TCP from the proxy.
      { domain: 'xmpp.test', target: `sip:127.0.0.1:${bridgePort};transport=tcp` },
      { domain: 'corp.example', target: `sip:127.0.0.1:${aliceUasPort};transport=udp` },
    ],
  });
  const config = parseConfig({
    sip: {
      listen: [
        { transport: 'udp', host: '127.0.0.1', port: bridgePort },
        { transport: 'tcp', host: '127.0.0.1', port: bridgePort },
      ],
      outboundProxy: kamailio.uri('udp'),
      timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
    },
    xmpp: {
      component: prosody.component,
      server: { host: prosody.host, port: prosody.componentPort },
      secret: prosody.secret,
      reconnect: { initialMs: 100, maxMs: 1000 },
    },
    mapping: { xmppDomains: [prosody.domain], identities: [{ e164: '+15551234567', sip: 'sip:alice@corp.example' }] },
    queue: { maxAttempts: 3, backoffMs: 100 },
  });
  const logger = process.env['BRIDGE_TEST_LOG'] ? createLogger({ level: 'debug' }) : silentLogger();
  bridge = createBridge(config, logger);
  await bridge.start();
  juliet = await connectUser(prosody, prosody.users[0]!);
});

afterAll(async () => {
  await juliet?.stop();
  await bridge?.stop();
  await kamailio?.stop();
  await prosody?.stop();
});

const aliceUas = (status = '200', reason = 'OK') =>
  startSipp({ scenario: 'uas-message.xml', role: 'uas', transport: 'udp', port: aliceUasPort, keys: { status, reason } });

const aliceSends = (to: string, body: string, via: 'udp' | 'tcp', target = { host: '127.0.0.1', port: kamailio.port }, scenario = 'e2e-uac-message.xml') =>
  startSipp({
    scenario,
    role: 'uac',
    transport: via,
    target,
    service: to,
    keys: { from_user: 'alice', from_domain: 'corp.example', to_domain: prosody.domain, body },
  });

/** sipp ends every scenario line with CRLF, the body's last one too (XML parsing makes it LF). */
const sippBody = (el: { getChildText(name: string): string | null }) => el.getChildText('body')?.replace(/\r?\n$/, '');

describe('XMPP → SIP', () => {
  it('delivers a message to a number as a MESSAGE for the mapped SIP user', async () => {
    const uas = await aliceUas();
    const body = 'Hello Alice ☕ — ünïcødé 𝄞';
    await juliet.client.send(xml('message', { to: `+15551234567@${prosody.component}`, type: 'chat', id: 'x2s-1' }, xml('body', {}, body)));

    const result = await uas.done;
    expect(result.code, result.output + result.errors).toBe(0);
    expect(result.messages).toContain('MESSAGE sip:alice@corp.example SIP/2.0');
    expect(result.messages).toMatch(/From: <sip:juliet@xmpp\.test>;tag=/);
    expect(result.messages).toContain(body);
    await uas.stop();
  });

  it('delivers a message written to the escaped SIP address', async () => {
    const uas = await aliceUas();
    await juliet.client.send(xml('message', { to: `alice\\40corp.example@${prosody.component}`, type: 'chat', id: 'x2s-2' }, xml('body', {}, 'via escaped JID')));

    const result = await uas.done;
    expect(result.code, result.output + result.errors).toBe(0);
    expect(result.messages).toContain('MESSAGE sip:alice@corp.example SIP/2.0');
    expect(result.messages).toContain('via escaped JID');
    await uas.stop();
  });

  // RFC 7247 §7.2, Table 3 (503 arrives as 500 through Kamailio, RFC 3261 §16.7: both map
  // to internal-server-error).
  it.each([
    ['404', 'Not Found', 'item-not-found'],
    ['480', 'Temporarily Unavailable', 'recipient-unavailable'],
    ['486', 'Busy Here', 'recipient-unavailable'],
    ['408', 'Request Timeout', 'remote-server-timeout'],
    ['503', 'Service Unavailable', 'internal-server-error'],
  ])('answers a SIP %s %s with an XMPP %s error to the sender', async (status, reason, condition) => {
    const uas = await aliceUas(status, reason);
    const id = `x2s-err-${status}`;
    await juliet.client.send(xml('message', { to: `+15551234567@${prosody.component}`, type: 'chat', id }, xml('body', {}, `try ${status}`)));

    const error = await juliet.next((el) => el.is('message') && el.attrs['type'] === 'error' && el.attrs['id'] === id);
    expect(error.attrs['from']).toBe(`+15551234567@${prosody.component}`);
    expect(error.getChild('error')?.getChild(condition, STANZAS), error.toString()).toBeDefined();
    expect((await uas.done).code).toBe(0);
    await uas.stop();
  });

  it('answers a number nobody owns with item-not-found, without any SIP traffic', async () => {
    await juliet.client.send(xml('message', { to: `+15550000000@${prosody.component}`, type: 'chat', id: 'x2s-unmapped' }, xml('body', {}, 'anyone?')));

    const error = await juliet.next((el) => el.attrs['type'] === 'error' && el.attrs['id'] === 'x2s-unmapped');
    expect(error.getChild('error')?.getChild('item-not-found', STANZAS)).toBeDefined();
  });
});

describe('SIP → XMPP', () => {
  it.each(['udp', 'tcp'] as const)('delivers a MESSAGE sent to the proxy over %s to the XMPP user', async (via) => {
    const body = `Hi Juliet over ${via} — ça va? 🌹`;
    const uac = await aliceSends('juliet', body, via);

    const msg = await juliet.next((el) => el.is('message') && sippBody(el) === body);
    expect(msg.attrs['from']).toBe(`alice\\40corp.example@${prosody.component}`);
    const result = await uac.done;
    expect(result.code, result.output + result.errors).toBe(0);
    await uac.stop();
  });

  it('answers a MESSAGE for a domain the bridge does not serve with 404', async () => {
    const uac = await startSipp({
      scenario: 'e2e-uac-message-404.xml',
      role: 'uac',
      transport: 'udp',
      target: { host: '127.0.0.1', port: bridgePort },
      service: 'bob',
      keys: { from_user: 'alice', from_domain: 'corp.example', to_domain: 'elsewhere.example', body: 'lost?' },
    });
    const result = await uac.done;
    expect(result.code, result.output + result.errors).toBe(0);
    await uac.stop();
  });

  it('delivers a message sent after Prosody restarted', async () => {
    await juliet.stop();
    await prosody.restart();
    juliet = await connectUser(prosody, prosody.users[0]!);

    const body = 'after the restart';
    const uac = await aliceSends('juliet', body, 'udp');
    const msg = await juliet.next((el) => el.is('message') && sippBody(el) === body, 20_000);
    expect(msg.attrs['from']).toBe(`alice\\40corp.example@${prosody.component}`);
    expect((await uac.done).code).toBe(0);
    await uac.stop();
  });
});
