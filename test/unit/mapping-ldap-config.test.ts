import { describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/core/errors.js';
import { LdapSource, type LdapSourceConfig } from '../../src/mapping/identity/ldap.js';
import { silentLogger } from '../../src/telemetry/logger.js';

const valid: LdapSourceConfig = { url: 'ldap://127.0.0.1:389', baseDN: 'dc=corp,dc=example' };

describe('LdapSource configuration', () => {
  it('accepts a minimal configuration without touching the network', () => {
    const source = new LdapSource(valid, silentLogger());
    expect(source.name).toBe('ldap');
    expect(source.poolStats().opened).toBe(0);
  });

  it.each<[string, Partial<LdapSourceConfig>, RegExp]>([
    ['a URL that is not ldap:// or ldaps://', { url: 'http://127.0.0.1:389' }, /url "http:\/\/127.0.0.1:389"/],
    ['a URL with a DN in it', { url: 'ldap://127.0.0.1:389/dc=corp' }, /url/],
    ['a bind DN without a password (RFC 4513 §5.1.2)', { bindDN: 'cn=bridge,dc=corp,dc=example' }, /bindDN is set without bindPassword/],
    ['StartTLS on an ldaps:// URL', { url: 'ldaps://127.0.0.1:636', tls: { startTLS: true } }, /startTLS is for ldap:\/\//],
    ['a number filter with a SIP placeholder', { filters: { byNumber: '(telephoneNumber={sip})' } }, /byNumber filter .*unknown placeholder \{sip\}/],
    ['a SIP filter with unbalanced parentheses', { filters: { bySipAddress: '(|(mail={user}@{domain})' } }, /bySipAddress filter .*unbalanced/],
    ['a pool of 0 connections', { poolSize: 0 }, /poolSize 0/],
    ['a timeout of 0 ms', { timeoutMs: 0 }, /timeoutMs 0/],
  ])('refuses %s with LDAP_CONFIG naming the key', (_, change, reason) => {
    const make = (): LdapSource => new LdapSource({ ...valid, ...change }, silentLogger());
    expect(make).toThrow(BridgeError);
    expect(make).toThrow(reason);
    try {
      make();
    } catch (err) {
      expect((err as BridgeError).code).toBe('LDAP_CONFIG');
    }
  });
});
