/**
 * `npm run demo`: a private Prosody, a SIP peer (sipp) and the bridge between them, all on
 * loopback; one message each way, printed as it happens; then everything is stopped.
 */
import { Writable } from 'node:stream';
import xml from '@xmpp/xml';
import { createBridge } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import type { Bridge } from '../src/core/bridge.js';
import { createLogger } from '../src/telemetry/logger.js';
import { freePort } from '../test/support/ports.js';
import { startProsody, type Prosody } from '../test/support/prosody.js';
import { startSipp, type Sipp } from '../test/support/sipp.js';
import { connectUser, type TestUser } from '../test/support/xmpp-client.js';

const DOMAIN = 'xmpp.demo';
const COMPONENT = `sip.${DOMAIN}`;
const t0 = Date.now();
const say = (line: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(2).padStart(6)}s] ${line}\n`);
const indent = (text: string) => text.trim().split(/\r?\n/).map((l) => `           │ ${l}`).join('\n');

/** The bridge's JSON log, shown as one short line per interesting record. */
const bridgeLog = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      try {
        const rec = JSON.parse(line) as { msg?: string; component?: string; from?: string; to?: string };
        const extra = rec.from ? ` (${rec.from} → ${rec.to})` : '';
        say(`  bridge/${rec.component ?? '-'}: ${rec.msg}${extra}`);
      } catch {
        say(`  bridge: ${line}`);
      }
    }
    done();
  },
});

/** The block of sipp's message trace for the first message it received. */
function firstReceived(trace: string): string {
  const block = trace.split(/-{10,}.*\n/).find((b) => /message received/.test(b));
  return block ? block.replace(/^.*message received.*\n/m, '') : '(nothing received)';
}

async function main(): Promise<void> {
  let prosody: Prosody | undefined;
  let bridge: Bridge | undefined;
  let juliet: TestUser | undefined;
  const sipps: Sipp[] = [];
  try {
    say(`starting a private Prosody (user juliet@${DOMAIN}, component ${COMPONENT}) on loopback`);
    prosody = await startProsody({ domain: DOMAIN, component: COMPONENT, users: { juliet: 'juliet-demo' } });
    const bridgePort = await freePort();
    const alicePort = await freePort();

    say(`starting a SIP peer (sipp) playing sip:alice@corp.example on 127.0.0.1:${alicePort}`);
    const aliceUas = await startSipp({ scenario: 'uas-message.xml', role: 'uas', transport: 'udp', port: alicePort, keys: { status: '200', reason: 'OK' } });
    sipps.push(aliceUas);

    say(`starting the bridge: SIP on 127.0.0.1:${bridgePort}, XMPP component ${COMPONENT}`);
    const config = parseConfig({
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: bridgePort }], outboundProxy: `sip:127.0.0.1:${alicePort};transport=udp` },
      xmpp: { component: COMPONENT, server: { host: prosody.host, port: prosody.componentPort }, secret: prosody.secret },
      mapping: { xmppDomains: [DOMAIN], identities: [{ e164: '+15551234567', sip: 'sip:alice@corp.example' }] },
    });
    bridge = createBridge(config, createLogger({ level: 'info', destination: bridgeLog }));
    await bridge.start();
    juliet = await connectUser(prosody, prosody.users[0]!, 'demo');
    say(`juliet is online as ${juliet.jid}`);

    say('── XMPP → SIP ─────────────────────────────────────────────');
    const hello = 'Hello Alice, it is Juliet. ¿Café? ☕';
    say(`juliet writes to +15551234567@${COMPONENT}: "${hello}"`);
    await juliet.client.send(xml('message', { to: `+15551234567@${COMPONENT}`, type: 'chat', id: 'demo-1' }, xml('body', {}, hello)));
    const uasResult = await aliceUas.done;
    say(`the SIP peer received this request and answered 200 OK (sipp exit ${uasResult.code}):\n${indent(firstReceived(uasResult.messages))}`);

    say('── SIP → XMPP ─────────────────────────────────────────────');
    const reply = 'Hi Juliet! Alice here, from SIP. 🌹';
    say(`alice (SIP) sends MESSAGE sip:juliet@${DOMAIN}: "${reply}"`);
    const aliceUac = await startSipp({
      scenario: 'e2e-uac-message.xml',
      role: 'uac',
      transport: 'udp',
      target: { host: '127.0.0.1', port: bridgePort },
      service: 'juliet',
      keys: { from_user: 'alice', from_domain: 'corp.example', to_domain: DOMAIN, body: reply },
    });
    sipps.push(aliceUac);
    const stanza = await juliet.next((el) => el.is('message') && el.getChildText('body')?.trimEnd() === reply);
    say(`juliet's client received:\n${indent(stanza.toString())}`);
    const uacResult = await aliceUac.done;
    say(`the SIP peer got 202 Accepted for its MESSAGE (sipp exit ${uacResult.code})`);
    say('done: one message each way.');
  } finally {
    say('stopping everything the demo started');
    await juliet?.stop();
    await bridge?.stop();
    for (const s of sipps) await s.stop();
    await prosody?.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
