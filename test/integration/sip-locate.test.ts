/**
 * RFC 3263 next-hop location against a real DNS server (dnsmasq on loopback) and sipp UASes:
 * a MESSAGE to bob@<domain> reaches the server the domain's NAPTR/SRV records name, goes on to
 * the lower-priority SRV target when the first refuses the connection or answers 503 (§4.3),
 * follows a federation partner's configured next hop, asks the DNS once for a burst, and is
 * still routed from the cache while the DNS server is down.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SipAdapter } from '../../src/adapters/sip/adapter.js';
import { partnerRoutes } from '../../src/adapters/sip/partner-routes.js';
import { sipSchema } from '../../src/config/schema.js';
import { messageEvent, type MessageEvent } from '../../src/core/events.js';
import { PartnerRegistry, partnersSchema } from '../../src/core/policy/partners.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.js';
import { freePort } from '../support/ports.js';
import { startSipp, type Sipp, type SippResult } from '../support/sipp.js';

let dns: Dnsmasq;
let adapter: SipAdapter;
/** Listens on UDP too, so it may use SIP+D2U records. */
let dualAdapter: SipAdapter;
/** Has an outbound proxy (where nothing listens) beside the partner routes. */
let proxiedAdapter: SipAdapter;
/** The adapter's log lines (JSON), to see the targets it tried. */
const logLines: string[] = [];
/** Where each case's sipp UAS listens (DNS names them before the UAS starts). */
const ports = { naptr: 0, srv: 0, closed: 0, backup: 0, partner: 0, burst: 0, busy: 0, spare: 0, udp: 0 };

beforeAll(async () => {
  for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort();
  dns = await startDnsmasq({
    zones: ['partner.test', 'srvonly.test', 'failover.test', 'acme.test', 'burst.test', 'busy.test', 'mixed.test'],
    naptr: [
      // RFC 3263 §4.1: the server's preferences; UDP is ours only with a UDP listener (none here).
      { name: 'partner.test', order: 10, preference: 10, flags: 's', service: 'SIP+D2U', regexp: '', replacement: '_sip._udp.partner.test' },
      { name: 'partner.test', order: 20, preference: 10, flags: 's', service: 'SIP+D2T', regexp: '', replacement: '_sip._tcp.partner.test' },
      // TCP preferred but refused, UDP next.
      { name: 'mixed.test', order: 10, preference: 10, flags: 's', service: 'SIP+D2T', regexp: '', replacement: '_sip._tcp.mixed.test' },
      { name: 'mixed.test', order: 20, preference: 10, flags: 's', service: 'SIP+D2U', regexp: '', replacement: '_sip._udp.mixed.test' },
    ],
    srv: [
      { name: '_sip._udp.partner.test', target: 'udp.partner.test', port: 9 },
      { name: '_sip._tcp.partner.test', target: 'sip1.partner.test', port: ports.naptr },
      { name: '_sip._tcp.srvonly.test', target: 'sip.srvonly.test', port: ports.srv },
      { name: '_sip._tcp.failover.test', target: 'down.failover.test', port: ports.closed, priority: 10 },
      { name: '_sip._tcp.failover.test', target: 'up.failover.test', port: ports.backup, priority: 20 },
      { name: '_sip._tcp.edge.acme.test', target: 'sbc.acme.test', port: ports.partner },
      { name: '_sip._tcp.burst.test', target: 'sip.burst.test', port: ports.burst },
      { name: '_sip._tcp.mixed.test', target: 'sip.mixed.test', port: ports.closed },
      { name: '_sip._udp.mixed.test', target: 'sip.mixed.test', port: ports.udp },
      { name: '_sip._tcp.busy.test', target: 'sip.busy.test', port: ports.busy, priority: 10 },
      { name: '_sip._tcp.busy.test', target: 'sip.busy.test', port: ports.spare, priority: 20 },
    ],
    hosts: {
      'udp.partner.test': '127.0.0.1',
      'sip1.partner.test': '127.0.0.1',
      'sip.srvonly.test': '127.0.0.1',
      'down.failover.test': '127.0.0.1',
      'up.failover.test': '127.0.0.1',
      'sbc.acme.test': '127.0.0.1',
      'sip.burst.test': '127.0.0.1',
      'sip.mixed.test': '127.0.0.1',
      'sip.busy.test': '127.0.0.1',
      // The partner's own domain resolves elsewhere: only its next hop reaches the UAS.
      'acme.test': '127.0.0.2',
    },
  });
  const config = sipSchema.parse({
    listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
    timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
    dns: { servers: [`${dns.host}:${dns.port}`], timeoutMs: 1000 },
  });
  const registry = new PartnerRegistry(
    partnersSchema.parse({ partners: [{ name: 'acme', side: 'sip', domains: ['acme.test'], nextHop: 'sip:edge.acme.test;transport=tcp;lr' }] }),
  );
  const out = new PassThrough();
  out.setEncoding('utf8');
  out.on('data', (chunk: string) => logLines.push(...chunk.split('\n').filter(Boolean)));
  const logger = createLogger({ level: 'info', destination: out });
  const routeFor = partnerRoutes(registry);
  adapter = new SipAdapter(config, { onEvent: () => Promise.resolve() }, logger, { routeFor });
  await adapter.start();
  const dual = sipSchema.parse({ ...config, listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }, { transport: 'tcp', host: '127.0.0.1', port: 0 }] });
  dualAdapter = new SipAdapter(dual, { onEvent: () => Promise.resolve() }, logger);
  await dualAdapter.start();
  const proxied = sipSchema.parse({ ...config, outboundProxy: `sip:127.0.0.1:${ports.closed};transport=tcp;lr` });
  proxiedAdapter = new SipAdapter(proxied, { onEvent: () => Promise.resolve() }, logger, { routeFor });
  await proxiedAdapter.start();
});

afterAll(async () => {
  await adapter?.stop();
  await dualAdapter?.stop();
  await proxiedAdapter?.stop();
  await dns?.stop();
});

function messageTo(domain: string, body: string): MessageEvent {
  return messageEvent({
    origin: 'xmpp',
    from: { side: 'sip', user: 'romeo', domain: 'xmpp.example.org' },
    to: { side: 'sip', user: 'bob', domain },
    body,
    dedupeKey: `test:${body}`,
    createdAt: Date.now(),
  });
}

function uas(port: number, calls = 1, keys = { status: '200', reason: 'OK' }): Promise<Sipp> {
  return startSipp({ role: 'uas', scenario: 'uas-message.xml', transport: 'tcp', port, calls, keys });
}

async function finished(sipp: Sipp): Promise<SippResult> {
  try {
    return await sipp.done;
  } finally {
    await sipp.stop();
  }
}

async function explain(r: SippResult): Promise<string> {
  return `sipp exit ${r.code}\n${r.errors}\n${r.output.slice(-1500)}\n--- dnsmasq ---\n${(await dns.log()).slice(-2000)}`;
}

describe('MESSAGE routed by RFC 3263 (dnsmasq)', () => {
  it('given NAPTR → SRV → A for partner.test, when bob@partner.test is written to, then the MESSAGE reaches the SRV target over TCP', async () => {
    const sipp = await uas(ports.naptr);
    await adapter.send(messageTo('partner.test', 'via naptr'));
    const result = await finished(sipp);

    expect(result.code, await explain(result)).toBe(0);
    expect(result.messages).toMatch(/^MESSAGE sip:bob@partner\.test SIP\/2\.0/m);
    expect(result.messages).toMatch(/^Via: SIP\/2\.0\/TCP /m);
    expect(result.messages).not.toMatch(/^Route:/m);
    const log = await dns.log();
    expect(log).toMatch(/query\[NAPTR\] partner\.test/);
    // SIP+D2U was preferred by the server but we have no UDP listener: its SRV was not asked.
    expect(log).not.toContain('_sip._udp.partner.test');
  });

  it('given only an SRV record (no NAPTR), when bob@srvonly.test is written to, then the MESSAGE reaches the SRV target', async () => {
    const sipp = await uas(ports.srv);
    await adapter.send(messageTo('srvonly.test', 'via srv'));
    const result = await finished(sipp);

    expect(result.code, await explain(result)).toBe(0);
    expect(result.messages).toMatch(/^MESSAGE sip:bob@srvonly\.test SIP\/2\.0/m);
    expect(result.messages).toContain('via srv');
  });

  it('given the priority-10 SRV target refuses connections, when bob@failover.test is written to, then the priority-20 target gets it (§4.3)', async () => {
    const sipp = await uas(ports.backup);
    await adapter.send(messageTo('failover.test', 'after failover'));
    const result = await finished(sipp);

    expect(result.code, await explain(result)).toBe(0);
    expect(result.messages).toMatch(/^MESSAGE sip:bob@failover\.test SIP\/2\.0/m);
    expect(result.messages).toContain('after failover');
    // The priority-10 target was tried first and refused the connection.
    const failovers = logLines.map((l) => JSON.parse(l) as { msg: string; failed?: string; next?: string }).filter((l) => l.msg.startsWith('SIP next hop failed'));
    expect(failovers).toContainEqual(expect.objectContaining({ failed: `tcp:127.0.0.1:${ports.closed}`, next: `tcp:127.0.0.1:${ports.backup}` }));
  });

  it('given NAPTR prefers TCP, refused, then UDP, when bob@mixed.test is written to, then it arrives over UDP with a UDP Via', async () => {
    const sipp = await startSipp({ role: 'uas', scenario: 'uas-message.xml', transport: 'udp', port: ports.udp, keys: { status: '200', reason: 'OK' } });
    await dualAdapter.send(messageTo('mixed.test', 'over udp after tcp'));
    const result = await finished(sipp);

    expect(result.code, await explain(result)).toBe(0);
    expect(result.messages).toMatch(/^MESSAGE sip:bob@mixed\.test SIP\/2\.0/m);
    expect(result.messages).toMatch(/^Via: SIP\/2\.0\/UDP /m);
    expect(result.messages).toContain('over udp after tcp');
  });

  it('given the priority-10 SRV target answers 503, when bob@busy.test is written to, then the priority-20 target gets it as a new transaction (§4.3)', async () => {
    const busy = await uas(ports.busy, 1, { status: '503', reason: 'Service Unavailable' });
    const spare = await uas(ports.spare);
    await adapter.send(messageTo('busy.test', 'past the busy one'));
    const [first, second] = [await finished(busy), await finished(spare)];

    expect(first.code, await explain(first)).toBe(0);
    expect(second.code, await explain(second)).toBe(0);
    expect(second.messages).toContain('past the busy one');
    const branch = (log: string): string | undefined => /^Via: .*;branch=([^;\s]+)/m.exec(log)?.[1];
    const callId = (log: string): string | undefined => /^Call-ID: (.*)$/m.exec(log)?.[1];
    expect(branch(second.messages)).toBeDefined();
    expect(branch(second.messages)).not.toBe(branch(first.messages));
    expect(callId(second.messages)).toBe(callId(first.messages));
  });

  it('given acme.test is a partner with nextHop sip:edge.acme.test;lr, when bob@acme.test is written to, then the MESSAGE goes to the next hop with a Route header', async () => {
    const sipp = await uas(ports.partner);
    await adapter.send(messageTo('acme.test', 'to the partner'));
    const result = await finished(sipp);

    expect(result.code, await explain(result)).toBe(0);
    expect(result.messages).toMatch(/^MESSAGE sip:bob@acme\.test SIP\/2\.0/m);
    expect(result.messages).toContain('Route: <sip:edge.acme.test;transport=tcp;lr>');
  });

  it('given 20 MESSAGEs to bob@burst.test at once, then they all arrive and the DNS server is asked for its NAPTR and SRV once', async () => {
    const sipp = await uas(ports.burst, 20);
    await Promise.all(Array.from({ length: 20 }, (_, i) => adapter.send(messageTo('burst.test', `burst ${i}`))));
    const result = await finished(sipp);

    expect(result.code, await explain(result)).toBe(0);
    const log = await dns.log();
    expect(log.match(/query\[NAPTR\] burst\.test /g)).toHaveLength(1);
    expect(log.match(/query\[SRV\] _sip\._tcp\.burst\.test /g)).toHaveLength(1);
  });

  it('given an outbound proxy too, when bob@acme.test is written to, then the partner route wins; another domain goes to the proxy', async () => {
    const sipp = await uas(ports.partner);
    await proxiedAdapter.send(messageTo('acme.test', 'partner before proxy'));
    const result = await finished(sipp);
    expect(result.code, await explain(result)).toBe(0);
    expect(result.messages).toContain('Route: <sip:edge.acme.test;transport=tcp;lr>');
    expect(result.messages).not.toContain(`127.0.0.1:${ports.closed}`);

    // Nothing listens at the proxy: refused, and retryable since nothing was sent.
    const err = await proxiedAdapter.send(messageTo('srvonly.test', 'to the proxy')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'SIP_TRANSPORT', retryable: true, message: expect.stringContaining(`127.0.0.1:${ports.closed}`) });
  });

  it('given srvonly.test was located, when the DNS server is down, then a second MESSAGE still goes (answers cached)', async () => {
    await dns.halt();
    try {
      const sipp = await uas(ports.srv);
      await adapter.send(messageTo('srvonly.test', 'from the cache'));
      const result = await finished(sipp);
      expect(result.code, await explain(result)).toBe(0);
      expect(result.messages).toContain('from the cache');
    } finally {
      await dns.restart();
    }
  });

  it('given a domain with no records at all, when written to, then send() rejects as retryable <remote-server-not-found/>', async () => {
    const err = await adapter.send(messageTo('nothing.partner.test', 'lost')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'SIP_UNRESOLVABLE', condition: 'remote-server-not-found', retryable: true });
  });
});
