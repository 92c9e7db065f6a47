/**
 * RFC 3263 §4 server location over tables of DNS answers: NAPTR and SRV ordering, RFC 2782
 * weighted selection with an injected random source, SIPS filtering, explicit port and
 * transport, no records → A/AAAA, the TLS server name (RFC 5922 §4); and the partner routes
 * built from the federation registry.
 */
import { describe, expect, it } from 'vitest';
import { locate, orderSrv, selectNaptr, type DnsAnswers, type Naptr, type Srv, type Target } from '../../src/adapters/sip/locate.js';
import { partnerRoutes } from '../../src/adapters/sip/partner-routes.js';
import type { TransportKind } from '../../src/adapters/sip/transport/transport.js';
import { PartnerRegistry, partnersSchema } from '../../src/core/policy/partners.js';

const FINGERPRINT = Array.from({ length: 32 }, () => 'AB').join(':');

/** A zone as data: names → records; anything absent has none. Counts the queries asked. */
function zone(records: { naptr?: Record<string, Naptr[]>; srv?: Record<string, Srv[]>; a?: Record<string, string[]> }): DnsAnswers & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    naptr: (name) => (asked.push(`NAPTR ${name}`), Promise.resolve(records.naptr?.[name] ?? [])),
    srv: (name) => (asked.push(`SRV ${name}`), Promise.resolve(records.srv?.[name] ?? [])),
    addresses: (host) => (asked.push(`A ${host}`), Promise.resolve(records.a?.[host] ?? [])),
  };
}

const ALL: ReadonlySet<TransportKind> = new Set(['udp', 'tcp', 'tls']);
const NO_UDP: ReadonlySet<TransportKind> = new Set(['tcp', 'tls']);
const NO_TLS: ReadonlySet<TransportKind> = new Set(['udp', 'tcp']);

function naptr(order: number, preference: number, service: string, replacement: string, flags = 's'): Naptr {
  return { order, preference, flags, service, replacement };
}

function srv(priority: number, weight: number, port: number, name: string): Srv {
  return { priority, weight, port, name };
}

function uri(text: string): { scheme: 'sip' | 'sips'; host: string; port?: number; params: Record<string, string | null> } {
  const m = /^(sips?):([^;:]+|\[[^\]]+\])(?::(\d+))?((?:;[^;]+)*)$/.exec(text)!;
  const params: Record<string, string | null> = {};
  for (const p of (m[4] ?? '').split(';').filter(Boolean)) {
    const [k, v] = p.split('=');
    params[k!] = v ?? null;
  }
  return { scheme: m[1] as 'sip' | 'sips', host: m[2]!, ...(m[3] === undefined ? {} : { port: Number(m[3]) }), params };
}

function hops(targets: Target[]): string[] {
  return targets.map((t) => `${t.transport} ${t.host}:${t.port}`);
}

/** The example zone of RFC 3263 §4.1, with addresses. */
const EXAMPLE = {
  naptr: {
    'example.com': [
      naptr(90, 50, 'SIP+D2T', '_sip._tcp.example.com'),
      naptr(50, 50, 'SIPS+D2T', '_sips._tcp.example.com.'),
      naptr(100, 50, 'SIP+D2U', '_sip._udp.example.com.'),
    ],
  },
  srv: {
    '_sips._tcp.example.com': [srv(0, 0, 5061, 'tls1.example.com.')],
    '_sip._tcp.example.com': [srv(0, 0, 5060, 'tcp1.example.com')],
    '_sip._udp.example.com': [srv(0, 0, 5060, 'udp1.example.com')],
  },
  a: { 'tls1.example.com': ['192.0.2.1'], 'tcp1.example.com': ['192.0.2.2'], 'udp1.example.com': ['192.0.2.3'], 'example.com': ['192.0.2.9'] },
};

describe('locate (RFC 3263 §4)', () => {
  const cases: [string, string, ReadonlySet<TransportKind>, Parameters<typeof zone>[0], string[]][] = [
    ['an IPv4 literal: as it is, UDP at 5060', 'sip:192.0.2.7', ALL, {}, ['udp 192.0.2.7:5060']],
    ['an IPv6 literal with a port, no UDP listener: TCP', 'sip:[2001:db8::1]:5070', NO_UDP, {}, ['tcp 2001:db8::1:5070']],
    ['a sips: IP literal: TLS at 5061', 'sips:192.0.2.7', ALL, {}, ['tls 192.0.2.7:5061']],
    ['an explicit port: A only, no NAPTR or SRV', 'sip:example.com:5080', ALL, EXAMPLE, ['udp 192.0.2.9:5080']],
    ['transport=tcp: SRV for TCP only', 'sip:example.com;transport=tcp', ALL, EXAMPLE, ['tcp 192.0.2.2:5060']],
    ['transport=tcp and no SRV: A at the default port', 'sip:other.example;transport=tcp', ALL, { a: { 'other.example': ['192.0.2.5'] } }, ['tcp 192.0.2.5:5060']],
    ['NAPTR in order: SIPS first, then TCP, then UDP', 'sip:example.com', ALL, EXAMPLE, ['tls 192.0.2.1:5061', 'tcp 192.0.2.2:5060', 'udp 192.0.2.3:5060']],
    ['NAPTR without TLS configured: SIPS+D2T dropped', 'sip:example.com', NO_TLS, EXAMPLE, ['tcp 192.0.2.2:5060', 'udp 192.0.2.3:5060']],
    ['NAPTR without a UDP listener: SIP+D2U dropped', 'sip:example.com', NO_UDP, EXAMPLE, ['tls 192.0.2.1:5061', 'tcp 192.0.2.2:5060']],
    ['a sips: URI: only SIPS+D2T', 'sips:example.com', ALL, EXAMPLE, ['tls 192.0.2.1:5061']],
    [
      'NAPTR preference breaks an order tie',
      'sip:tie.example',
      ALL,
      {
        naptr: { 'tie.example': [naptr(10, 20, 'SIP+D2U', '_sip._udp.tie.example'), naptr(10, 10, 'SIP+D2T', '_sip._tcp.tie.example')] },
        srv: { '_sip._udp.tie.example': [srv(0, 0, 5060, 'h.tie.example')], '_sip._tcp.tie.example': [srv(0, 0, 5062, 'h.tie.example')] },
        a: { 'h.tie.example': ['192.0.2.4'] },
      },
      ['tcp 192.0.2.4:5062', 'udp 192.0.2.4:5060'],
    ],
    [
      'NAPTR records of other services or flags are skipped',
      'sip:odd.example',
      ALL,
      {
        naptr: { 'odd.example': [naptr(1, 1, 'SIP+D2S', '_sip._sctp.odd.example'), naptr(2, 1, 'SIP+D2T', '_sip._tcp.odd.example', 'a'), naptr(3, 1, 'E2U+sip', 'x.odd.example')] },
        srv: { '_sip._udp.odd.example': [srv(0, 0, 5060, 'h.odd.example')] },
        a: { 'h.odd.example': ['192.0.2.6'] },
      },
      ['udp 192.0.2.6:5060'],
    ],
    [
      'no NAPTR: SRV per supported transport, UDP then TCP',
      'sip:srv.example',
      ALL,
      { srv: { '_sip._udp.srv.example': [srv(0, 0, 5060, 'u.srv.example')], '_sip._tcp.srv.example': [srv(0, 0, 5060, 't.srv.example')] }, a: { 'u.srv.example': ['192.0.2.11'], 't.srv.example': ['192.0.2.12'] } },
      ['udp 192.0.2.11:5060', 'tcp 192.0.2.12:5060'],
    ],
    [
      'SRV priority orders before weight',
      'sip:prio.example',
      NO_UDP,
      { srv: { '_sip._tcp.prio.example': [srv(20, 100, 5060, 'b.prio.example'), srv(10, 0, 5070, 'a.prio.example')] }, a: { 'a.prio.example': ['192.0.2.21'], 'b.prio.example': ['192.0.2.22'] } },
      ['tcp 192.0.2.21:5070', 'tcp 192.0.2.22:5060'],
    ],
    [
      'an SRV target with several addresses: each in turn',
      'sip:multi.example',
      NO_UDP,
      { srv: { '_sip._tcp.multi.example': [srv(0, 0, 5060, 'h.multi.example')] }, a: { 'h.multi.example': ['192.0.2.31', '2001:db8::31'] } },
      ['tcp 192.0.2.31:5060', 'tcp 2001:db8::31:5060'],
    ],
    ['a single SRV target "." (RFC 2782: not available): A/AAAA', 'sip:dot.example', NO_UDP, { srv: { '_sip._tcp.dot.example': [srv(0, 0, 0, '.')] }, a: { 'dot.example': ['192.0.2.41'] } }, ['tcp 192.0.2.41:5060']],
    ['no records at all: A with UDP at 5060', 'sip:plain.example', ALL, { a: { 'plain.example': ['192.0.2.51'] } }, ['udp 192.0.2.51:5060']],
    ['no records, no UDP listener: A with TCP at 5060', 'sip:plain.example', NO_UDP, { a: { 'plain.example': ['192.0.2.51'] } }, ['tcp 192.0.2.51:5060']],
    ['a sips: URI, no records: A with TLS at 5061', 'sips:plain.example', ALL, { a: { 'plain.example': ['192.0.2.51'] } }, ['tls 192.0.2.51:5061']],
    ['nothing resolves: no targets', 'sip:nowhere.example', ALL, {}, []],
  ];

  it.each(cases)('given %s, when %s is located, then the targets are as listed', async (_name, text, supported, records, expected) => {
    expect(hops(await locate(uri(text), { supported, dns: zone(records), random: () => 0 }))).toEqual(expected);
  });

  it('given a sips: URI without NAPTR, when located, then only _sips._tcp is asked for SRV', async () => {
    const dns = zone({ a: { 'plain.example': ['192.0.2.51'] } });
    await locate(uri('sips:plain.example'), { supported: ALL, dns });
    expect(dns.asked).toEqual(['NAPTR plain.example', 'SRV _sips._tcp.plain.example', 'A plain.example']);
  });

  it('given NAPTR pointing into another domain, when a TLS target is found, then its serverName is the URI host, not the SRV target', async () => {
    const dns = zone({
      naptr: { 'partner.example': [naptr(10, 10, 'SIPS+D2T', '_sips._tcp.hosting.example')] },
      srv: { '_sips._tcp.hosting.example': [srv(0, 0, 5061, 'edge.hosting.example')] },
      a: { 'edge.hosting.example': ['192.0.2.61'] },
    });
    const [target] = await locate(uri('sip:partner.example'), { supported: ALL, dns });
    expect(target).toEqual({ transport: 'tls', host: '192.0.2.61', port: 5061, serverName: 'partner.example' });
  });

  it('given more addresses than the bound, when located, then at most maxTargets come back', async () => {
    const many = Array.from({ length: 40 }, (_, i) => `192.0.2.${i + 1}`);
    const targets = await locate(uri('sip:big.example:5060'), { supported: ALL, dns: zone({ a: { 'big.example': many } }) });
    expect(targets).toHaveLength(16);
  });

  it('given the DNS fails, when located, then the failure propagates (the adapter makes it retryable)', async () => {
    const dns: DnsAnswers = { naptr: () => Promise.reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })), srv: () => Promise.resolve([]), addresses: () => Promise.resolve([]) };
    await expect(locate(uri('sip:down.example'), { supported: ALL, dns })).rejects.toThrow('timeout');
  });
});

describe('orderSrv (RFC 2782 usage rules)', () => {
  const records = [srv(10, 60, 5060, 'big'), srv(10, 30, 5060, 'mid'), srv(10, 0, 5060, 'zero'), srv(20, 100, 5060, 'backup')];

  // Weight 0 first, then the others in given order: running sums zero=0, big=60, mid=90 (total 90).
  const draws: [string, number[], string[]][] = [
    ['a draw of 0 picks the weight-0 record first', [0, 0, 0, 0], ['zero', 'big', 'mid', 'backup']],
    ['a draw in (0, 60] picks the weight-60 record first', [30 / 91, 0, 0, 0], ['big', 'zero', 'mid', 'backup']],
    ['a draw in (60, 90] picks the weight-30 record first', [80 / 91, 0.99, 0, 0], ['mid', 'big', 'zero', 'backup']],
  ];
  it.each(draws)('given %s, then the order is as listed and the lower priority comes last', (_name, randoms, expected) => {
    const next = [...randoms];
    expect(orderSrv(records, () => next.shift() ?? 0).map((r) => r.name)).toEqual(expected);
  });

  it('given draws spread evenly over [0, 1), then each record leads in proportion to its weight (1 : 60 : 30 of 91)', () => {
    const firsts = new Map<string, number>();
    for (let k = 0; k < 9100; k++) {
      let first = true;
      const random = (): number => (first ? ((first = false), (k + 0.5) / 9100) : 0);
      const lead = orderSrv(records, random)[0]!.name;
      firsts.set(lead, (firsts.get(lead) ?? 0) + 1);
    }
    expect(Object.fromEntries(firsts)).toEqual({ zero: 100, big: 6000, mid: 3000 });
  });
});

describe('selectNaptr', () => {
  it('given upper- and lower-case flags and services, then both are understood (RFC 3403 §4.1: case-insensitive)', () => {
    const chosen = selectNaptr([naptr(1, 1, 'sip+d2t', '_sip._tcp.x.example.', 'S')], false, ALL);
    expect(chosen).toEqual([{ transport: 'tcp', srv: '_sip._tcp.x.example' }]);
  });
});

describe('partnerRoutes (routeFor from the partner registry)', () => {
  const registry = new PartnerRegistry(
    partnersSchema.parse({
      partners: [
        { name: 'acme', side: 'sip', domains: ['acme.example'], trust: { certificateNames: ['sip.acme.example'] }, nextHop: 'sips:edge.acme.example;lr' },
        { name: 'beta', side: 'sip', domains: ['beta.example'], trust: { certificateNames: ['beta.example'] } },
        { name: 'open', side: 'sip', domains: ['plain.example'] },
        { name: 'hub', model: 'clearinghouse', side: 'sip', domains: ['*.hub.example', 'hub.example'], members: ['one.example', '*.two.example'], trust: { fingerprints: [FINGERPRINT] } },
        { name: 'loose', model: 'clearinghouse', side: 'sip', domains: ['loose.example'], members: ['three.example'] },
        { name: 'xmpp', side: 'xmpp', domains: ['chat.example'] },
      ],
    }),
  );
  const routeFor = partnerRoutes(registry);
  const rows: [string, string, string | undefined][] = [
    ['a partner with a nextHop: the nextHop', 'acme.example', 'sips:edge.acme.example;lr'],
    ['a direct partner with trust: sips: to its domain', 'Beta.Example', 'sips:beta.example'],
    ['a direct partner without trust: the usual way', 'plain.example', undefined],
    ['a trusted clearinghouse member: sips: to its first non-wildcard domain', 'one.example', 'sips:hub.example'],
    ['a member under a wildcard: the same', 'a.two.example', 'sips:hub.example'],
    ["the clearinghouse's own domain: like a direct partner", 'x.hub.example', 'sips:x.hub.example'],
    ['a member of a clearinghouse without trust: sip:', 'three.example', 'sip:loose.example'],
    ['an unknown domain: the usual way', 'unknown.example', undefined],
    ['an XMPP partner: not a SIP route', 'chat.example', undefined],
    ['a host with a port (an IP literal target): the usual way', '127.0.0.1:5060', undefined],
  ];
  it.each(rows)('given %s, when %s is routed, then the route is %s', (_name, domain, expected) => {
    expect(routeFor(domain)).toBe(expected);
  });
});
