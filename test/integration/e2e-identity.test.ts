/**
 * End to end with a directory: an XMPP user on Prosody writes to a number that only the LDAP
 * directory (a real slapd) knows; the SIP peer (sipp) receives the MESSAGE for the directory's
 * SIP address. Then the directory stops mid-test: the chain degrades to the next source (a
 * static file) within its deadline, and health says the directory is down.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import xml from '@xmpp/xml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { freePort } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { startSipp } from '../support/sipp.js';
import { startSlapd, type Slapd } from '../support/slapd.js';
import { connectUser, type TestUser } from '../support/xmpp-client.js';

let prosody: Prosody;
let slapd: Slapd;
let bridge: ReturnType<typeof createBridge>;
let juliet: TestUser;
let sipPeerPort: number;
let bridgePort: number;

beforeAll(async () => {
  [prosody, slapd] = await Promise.all([startProsody({ domain: 'xmpp.test', component: 'sip.xmpp.test' }), startSlapd()]);
  sipPeerPort = await freePort();
  bridgePort = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'bridge-e2e-identity-'));
  const staticFile = join(dir, 'people.csv');
  // Only in the file: the source after the directory.
  await writeFile(staticFile, 'e164,sip,xmpp\n+15559990000,sip:carol@corp.example,\n+15559990001,sip:juliet@corp.example,Juliet@xmpp.test\n');
  const config = parseConfig({
    sip: {
      listen: [{ transport: 'udp', host: '127.0.0.1', port: bridgePort }],
      outboundProxy: `sip:127.0.0.1:${sipPeerPort};transport=udp`,
      timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
    },
    xmpp: { component: prosody.component, server: { host: prosody.host, port: prosody.componentPort }, secret: prosody.secret },
    mapping: {
      xmppDomains: [prosody.domain],
      sourceTimeoutMs: 1500,
      // Ask the directory again at once after a failure, so the test sees it come back.
      sourceRetryMs: 0,
      sources: [
        { type: 'ldap', url: slapd.url, bindDN: slapd.bindDN, bindPassword: slapd.bindPassword, baseDN: slapd.peopleDN, timeoutMs: 1000 },
        { type: 'static', file: staticFile },
      ],
    },
  });
  bridge = createBridge(config, silentLogger());
  await bridge.start();
  juliet = await connectUser(prosody, prosody.users[0]!);
});

afterAll(async () => {
  await juliet?.stop();
  await bridge?.stop();
  await slapd?.stop();
  await prosody?.stop();
});

async function julietWritesAndSipPeerReceives(number: string, body: string, id: string) {
  const uas = await startSipp({ scenario: 'uas-message.xml', role: 'uas', transport: 'udp', port: sipPeerPort, keys: { status: '200', reason: 'OK' } });
  await juliet.client.send(xml('message', { to: `${number}@${prosody.component}`, type: 'chat', id }, xml('body', {}, body)));
  const result = await uas.done;
  await uas.stop();
  return result;
}

describe('identity chain end to end', () => {
  it('delivers a SIP message for a number (user=phone) to the XMPP user the identity chain names, from the sender number', async () => {
    const uac = await startSipp({
      scenario: 'e2e-uac-message-number.xml',
      role: 'uac',
      transport: 'udp',
      target: { host: '127.0.0.1', port: bridgePort },
      service: '+1-555-999-0001',
      keys: { from_number: '+1-555-123-4567', from_domain: 'corp.example', to_domain: 'gw.corp.example', body: 'to your number' },
    });
    const result = await uac.done;
    expect(result.code, result.output + result.errors).toBe(0);

    const message = await juliet.next((el) => el.name === 'message' && el.getChildText('body')?.trim() === 'to your number');
    // The sender's number is shown as the JID XMPP users write numbers to.
    expect(message.attrs['from']).toBe(`+15551234567@${prosody.component}`);
  });

  it('delivers a message to a number only the directory knows, at the directory SIP address', async () => {
    const result = await julietWritesAndSipPeerReceives('+15551234567', 'found you in the directory', 'ldap-1');

    expect(result.code, result.output + result.errors).toBe(0);
    // The directory holds "+1 555 123 4567" and msRTCSIP-PrimaryUserAddress sip:alice@corp.example.
    expect(result.messages).toContain('MESSAGE sip:alice@corp.example SIP/2.0');
    expect(result.messages).toContain('found you in the directory');
  });

  it('keeps routing through the next source while the directory is stopped, and reports it down', async () => {
    await slapd.halt();

    const result = await julietWritesAndSipPeerReceives('+15559990000', 'directory is down', 'ldap-2');

    expect(result.code, result.output + result.errors).toBe(0);
    expect(result.messages).toContain('MESSAGE sip:carol@corp.example SIP/2.0');
    const ldap = bridge.identityChain.health().find((h) => h.source.startsWith('ldap'));
    expect(ldap).toMatchObject({ ok: false });
  });

  it('tells the sender to try later, not "no such person", for a number unknown while the directory is down', async () => {
    await juliet.client.send(xml('message', { to: `+15550001111@${prosody.component}`, type: 'chat', id: 'ldap-3' }, xml('body', {}, '?')));

    const error = await juliet.next((el) => el.attrs['type'] === 'error' && el.attrs['id'] === 'ldap-3');
    expect(error.getChild('error')?.attrs['type']).toBe('wait');
    expect(error.getChild('error')?.getChild('remote-server-timeout', 'urn:ietf:params:xml:ns:xmpp-stanzas')).toBeDefined();
  });

  it('answers item-not-found for an unknown number once the directory is back', async () => {
    await slapd.resume();

    await juliet.client.send(xml('message', { to: `+15550002222@${prosody.component}`, type: 'chat', id: 'ldap-4' }, xml('body', {}, '?')));

    const error = await juliet.next((el) => el.attrs['type'] === 'error' && el.attrs['id'] === 'ldap-4', 15_000);
    expect(error.getChild('error')?.getChild('item-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas')).toBeDefined();
  });
});
