/** The `sip.tls` section and `tls` listen entries: defaults and the combinations refused at load. */
import { describe, expect, it } from 'vitest';
import { sipSchema } from '../../src/config/schema.js';

const tls = { cert: '/etc/bridge/sip.pem', key: '/etc/bridge/sip.key', ca: '/etc/bridge/partners.pem' };

describe('sip.tls config', () => {
  it('given a tls listener without a port, then it gets 5061 and TLS defaults (verify servers, TLS 1.2+, no NULL ciphers)', () => {
    const sip = sipSchema.parse({ listen: [{ transport: 'tls' }, { transport: 'tcp' }], tls });
    expect(sip.listen.map((l) => l.port)).toEqual([5061, 5060]);
    expect(sip.tls).toEqual({ ...tls, systemCa: false, requireClientCert: false, verifyServer: true, minVersion: 'TLSv1.2', allowNullCiphers: false });
  });

  it.each([
    ['a tls listener without sip.tls', { listen: [{ transport: 'tls' }] }, 'tls'],
    ['a sips: proxy without sip.tls', { outboundProxy: 'sips:proxy.example' }, 'tls'],
    ['a ;transport=tls proxy without sip.tls', { outboundProxy: 'sip:proxy.example;transport=tls;lr' }, 'tls'],
    ['requireClientCert without a CA', { tls: { cert: 'c', key: 'k', requireClientCert: true, systemCa: true } }, 'tls.ca'],
    ['verifyServer without a CA or systemCa', { tls: { cert: 'c', key: 'k' } }, 'tls.ca'],
    ['NULL ciphers with TLS 1.3 as minimum', { tls: { ...tls, allowNullCiphers: true, minVersion: 'TLSv1.3' } }, 'tls.allowNullCiphers'],
    ['an unknown key', { tls: { ...tls, cipherz: 'x' } }, 'tls'],
  ])('given %s, then loading fails naming %s', (_what, given, path) => {
    const result = sipSchema.safeParse(given);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(path);
  });

  it('given verifyServer false, then no CA is needed (a lab setup; the peer is then unauthenticated)', () => {
    expect(sipSchema.parse({ tls: { cert: 'c', key: 'k', verifyServer: false } }).tls?.verifyServer).toBe(false);
  });
});
