import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';

const minimal = {
  sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 5060 }] },
  xmpp: { component: 'sip.xmpp.test', secret: 's3cret' },
  mapping: { xmppDomains: ['xmpp.test'] },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- patches reach into arbitrary paths of a YAML document
type Doc = Record<string, any>;

function withPatch(patch: (doc: Doc) => void): unknown {
  const doc = structuredClone(minimal) as Doc;
  patch(doc);
  return doc;
}

describe('config', () => {
  it('loads the example configuration shipped in config/', async () => {
    const config = await loadConfig('config/bridge.example.yaml');
    expect(config.queue.backend).toBe('memory');
    expect(config.xmpp.component).toBe('sip.xmpp.example.org');
    expect(config.mapping.identities[0]).toEqual({ e164: '+15551234567', sip: 'sip:alice@corp.example' });
  });

  it('fills defaults beside the schema', () => {
    const config = parseConfig(minimal);
    expect(config.xmpp.server).toEqual({ host: '127.0.0.1', port: 5347 });
    expect(config.xmpp.maxStanzaBytes).toBe(512 * 1024);
    expect(config.sip.timers).toEqual({ t1Ms: 500, t2Ms: 4000, t4Ms: 5000 });
    expect(config.queue).toMatchObject({ backend: 'memory', maxAttempts: 5 });
  });

  it('takes SIP DNS servers as ip, ip:port or [v6]:port, with a default query timeout', () => {
    const config = parseConfig(withPatch((d) => (d['sip']['dns'] = { servers: ['127.0.0.1:5353', '192.0.2.53', '[::1]:53', '::1'] })));
    expect(config.sip.dns).toEqual({ servers: ['127.0.0.1:5353', '192.0.2.53', '[::1]:53', '::1'], timeoutMs: 2000 });
    expect(parseConfig(minimal).sip.dns).toBeUndefined();
  });

  it('fills identity source defaults from the issue-3 schema', () => {
    const config = parseConfig(
      withPatch((d) => {
        d['mapping']['sources'] = [
          { type: 'static', file: 'ids.csv' },
          { type: 'ldap', url: 'ldap://127.0.0.1:389', baseDN: 'dc=corp,dc=example' },
          { type: 'enum' },
        ];
      }),
    );
    expect(config.mapping.sourceTimeoutMs).toBe(1000);
    expect(config.mapping.sourceRetryMs).toBe(5000);
    expect(config.mapping.cache).toEqual({ ttlMs: 300_000, negativeTtlMs: 30_000, maxEntries: 10_000 });
    expect(config.mapping.sources[1]).toMatchObject({ poolSize: 4, scope: 'sub', timeoutMs: 2000 });
    expect(config.mapping.sources[2]).toMatchObject({ suffix: 'e164.arpa', server: { port: 53 }, services: ['E2U+sip', 'E2U+xmpp'] });
  });

  it('is frozen once parsed', () => {
    const config = parseConfig(minimal);
    expect(Object.isFrozen(config.sip.listen[0])).toBe(true);
    expect(() => {
      (config.xmpp as { secret: string }).secret = 'x';
    }).toThrow(TypeError);
  });

  it('takes a SIP edge or a router on Redis without the component secret, and a router without a sip section', () => {
    const edge = withPatch((d) => ((d['role'] = 'sip-edge'), (d['queue'] = { backend: 'redis' }), delete d['xmpp']['secret']));
    expect(parseConfig(edge)).toMatchObject({ role: 'sip-edge', queue: { backend: 'redis' }, redis: { url: 'redis://127.0.0.1:6379', prefix: 'sxb' } });
    const router = withPatch((d) => ((d['role'] = 'router'), (d['queue'] = { backend: 'redis' }), delete d['xmpp']['secret'], delete d['sip']));
    expect(parseConfig(router)).toMatchObject({ role: 'router', sip: { listen: [{ transport: 'udp', port: 5060 }] } });
  });

  it('takes a federation section, our SIP domains and our number ranges', () => {
    const doc = withPatch((d) => {
      d['federation'] = { partners: [{ name: 'globex', side: 'sip', domains: ['globex.example'] }] };
      d['mapping']['sipDomains'] = ['corp.example'];
      d['mapping']['ownNumbers'] = ['+1555123', '+442079460000-+442079469999'];
    });
    expect(parseConfig(doc)).toMatchObject({ federation: { mode: 'closed', partners: [{ name: 'globex', directions: ['inbound', 'outbound'] }] } });
  });

  const cases: Array<[string, unknown, RegExp]> = [
    ['an unknown top-level key', withPatch((d) => (d['sipp'] = {})), /sipp: unknown key/],
    ['an unknown nested key', withPatch((d) => (d['xmpp']['secrett'] = 'x')), /xmpp\.secrett: unknown key/],
    ['a port of the wrong type', withPatch((d) => (d['sip']['listen'][0]['port'] = '5060')), /sip\.listen\.0\.port: .*number/i],
    ['an unknown transport', withPatch((d) => (d['sip']['listen'][0]['transport'] = 'sctp')), /sip\.listen\.0\.transport/],
    ['a missing secret', withPatch((d) => delete d['xmpp']['secret']), /xmpp\.secret: missing \(expected the component secret/],
    ['a role other than all on the memory queue', withPatch((d) => (d['role'] = 'sip-edge')), /role: .*set queue\.backend: redis/],
    ['an unknown role', withPatch((d) => (d['role'] = 'edge')), /role: /],
    ['an XMPP edge without the secret', withPatch((d) => ((d['role'] = 'xmpp-edge'), (d['queue'] = { backend: 'redis' }), delete d['xmpp']['secret'])), /xmpp\.secret: missing/],
    ['overlapping number ranges', withPatch((d) => (d['mapping']['ownNumbers'] = ['+1555', '+15551'])), /mapping\.ownNumbers: .*overlap/],
    ['a partner without domains', withPatch((d) => (d['federation'] = { partners: [{ name: 'x', side: 'sip', domains: [] }] })), /federation\.partners\.0\.domains/],
    [
      'a partner reached over sips: without sip.tls',
      withPatch((d) => (d['federation'] = { partners: [{ name: 'x', side: 'sip', domains: ['x.example'], nextHop: 'sips:sip.x.example' }] })),
      /federation\.partners\.0\.nextHop: partner x is reached over TLS: configure sip\.tls/,
    ],
    [
      'a partner proved by certificate without sip.tls',
      withPatch((d) => (d['federation'] = { partners: [{ name: 'x', side: 'sip', domains: ['x.example'], trust: { certificateNames: ['sip.x.example'] } }] })),
      /federation\.partners\.0\.trust: partner x proves itself by certificate/,
    ],
    ['a Redis URL of another scheme', withPatch((d) => (d['redis'] = { url: 'http://127.0.0.1:6379' })), /redis\.url: a redis:\/\//],
    ['a missing section', withPatch((d) => delete d['mapping']), /mapping: missing \(expected object\)/],
    ['a number not in E.164', withPatch((d) => (d['mapping']['identities'] = [{ e164: '5551234567', sip: 'sip:a@b' }])), /mapping\.identities\.0\.e164: an E\.164 number/],
    ['a SIP address that is not a URI', withPatch((d) => (d['mapping']['identities'] = [{ e164: '+15551234567', sip: 'alice' }])), /mapping\.identities\.0\.sip/],
    ['an outbound proxy that is not a SIP URI', withPatch((d) => (d['sip']['outboundProxy'] = '127.0.0.1:5070')), /sip\.outboundProxy/],
    ['a SIP DNS server named by host name (c-ares takes IPs)', withPatch((d) => (d['sip']['dns'] = { servers: ['dns.example:53'] })), /sip\.dns\.servers\.0: an IP address/],
    ['a SIP DNS server with a port past 65535', withPatch((d) => (d['sip']['dns'] = { servers: ['127.0.0.1:70000'] })), /sip\.dns\.servers\.0/],
    ['no XMPP domain', withPatch((d) => (d['mapping']['xmppDomains'] = [])), /mapping\.xmppDomains/],
    ['an unknown queue backend', withPatch((d) => (d['queue'] = { backend: 'kafka' })), /queue\.backend/],
    ['a region without a numbering plan', withPatch((d) => (d['mapping']['defaultRegion'] = 'ZZ')), /mapping\.defaultRegion: a region/],
    ['a lower-case region', withPatch((d) => (d['mapping']['defaultRegion'] = 'us')), /mapping\.defaultRegion: an ISO 3166-1/],
    ['an unknown source type', withPatch((d) => (d['mapping']['sources'] = [{ type: 'sql' }])), /mapping\.sources\.0/],
    ['a static source without a file', withPatch((d) => (d['mapping']['sources'] = [{ type: 'static' }])), /mapping\.sources\.0\.file: missing/],
    ['an LDAP URL of another scheme', withPatch((d) => (d['mapping']['sources'] = [{ type: 'ldap', url: 'http://x', baseDN: 'dc=x' }])), /mapping\.sources\.0\.url: an ldap:\/\//],
  ];
  it.each(cases)('refuses %s, naming the key', (_name, doc, expected) => {
    expect(() => parseConfig(doc)).toThrow(ConfigError);
    expect(() => parseConfig(doc)).toThrow(expected);
  });

  it('names the file and the YAML fault for unparsable YAML', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bridge-config-'));
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'sip:\n  listen: [\n');
    await expect(loadConfig(file)).rejects.toThrow(/bad\.yaml is not valid YAML/);
  });

  it('refuses a duplicated key rather than silently taking the last', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bridge-config-'));
    const file = join(dir, 'dup.yaml');
    await writeFile(file, 'xmpp:\n  secret: a\n  secret: b\n');
    await expect(loadConfig(file)).rejects.toThrow(/not valid YAML/);
  });
});
