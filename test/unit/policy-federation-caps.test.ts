/**
 * Per-partner caps on what a partner holds at once (issue 6 item 5): which partner a watcher or
 * a TLS peer belongs to and its limit (FederationPolicy), and the admission of new
 * subscriptions against the count the subscription store keeps (PartnerSubscriptions).
 */
import { describe, expect, it } from 'vitest';
import { PartnerSubscriptions, type PartnerOf } from '../../src/adapters/sip/presence/partner-cap.js';
import type { Address, Side } from '../../src/core/events.js';
import { FederationPolicy } from '../../src/core/policy/federation.js';
import { PartnerRegistry, partnersSchema } from '../../src/core/policy/partners.js';
import { MemorySubscriptionStore } from '../../src/core/state/memory-subscriptions.js';
import { recordingLogger } from '../support/recording-logger.js';

const FP_PINNED = Array.from({ length: 32 }, () => 'AB').join(':');

function policy(mode: 'closed' | 'open' = 'closed'): FederationPolicy {
  const config = partnersSchema.parse({
    mode,
    openLimits: { maxSubscriptions: 7, maxConnections: 3 },
    partners: [
      { name: 'acme', side: 'sip', domains: ['acme.example'], trust: { certificateNames: ['sip.acme.example'] }, limits: { maxSubscriptions: 2, maxConnections: 2 } },
      { name: 'pinned', side: 'sip', domains: ['pinned.example'], trust: { fingerprints: [FP_PINNED] }, limits: { maxConnections: 4 } },
      { name: 'hub', model: 'clearinghouse', side: 'sip', domains: ['hub.example'], members: ['one.example'], trust: { certificateNames: ['hub.example'] } },
      { name: 'jabber', side: 'xmpp', domains: ['jabber.example'], directions: ['outbound'], limits: { maxSubscriptions: 0 } },
    ],
  });
  return new FederationPolicy({ registry: new PartnerRegistry(config), local: { sip: ['corp.example'], xmpp: ['xmpp.corp.example'] } });
}


describe('FederationPolicy.watcherPartner', () => {
  it.each([
    { when: 'a direct partner’s domain', mode: 'closed', side: 'sip', domain: 'ACME.example', want: { name: 'acme', maxSubscriptions: 2 } },
    { when: 'a clearinghouse member', mode: 'closed', side: 'sip', domain: 'one.example', want: { name: 'hub', maxSubscriptions: 1000 } },
    { when: 'a partner that allows no inbound traffic (still its partner)', mode: 'closed', side: 'xmpp', domain: 'jabber.example', want: { name: 'jabber', maxSubscriptions: 0 } },
    { when: 'one of our own domains', mode: 'closed', side: 'sip', domain: 'corp.example', want: undefined },
    { when: 'a partner’s domain on the other side', mode: 'closed', side: 'xmpp', domain: 'acme.example', want: undefined },
    { when: 'an unknown domain, closed mode', mode: 'closed', side: 'sip', domain: 'stranger.example', want: undefined },
    { when: 'an unknown domain, open mode', mode: 'open', side: 'sip', domain: 'stranger.example', want: { name: 'open:stranger.example', maxSubscriptions: 7 } },
    { when: 'our own domain, open mode', mode: 'open', side: 'xmpp', domain: 'xmpp.corp.example', want: undefined },
  ] as { when: string; mode: 'closed' | 'open'; side: Side; domain: string; want: unknown }[])('given $when, names $want', ({ mode, side, domain, want }) => {
    expect(policy(mode).watcherPartner(side, domain)).toEqual(want);
  });
});

describe('FederationPolicy.connectionQuota', () => {
  it.each([
    { when: 'the certificate names a partner', peer: { certificateIdentities: ['sip.acme.example'] }, want: { key: 'acme', limit: 2, rule: 'partner acme limits.maxConnections' } },
    { when: 'the fingerprint is pinned', peer: { certificateIdentities: [], fingerprint: FP_PINNED.toLowerCase() }, want: { key: 'pinned', limit: 4, rule: 'partner pinned limits.maxConnections' } },
    { when: 'a clearinghouse’s certificate', peer: { certificateIdentities: ['hub.example'] }, want: { key: 'hub', limit: 10, rule: 'partner hub limits.maxConnections' } },
    { when: 'the certificate names nobody we know', peer: { certificateIdentities: ['stranger.example'] }, want: undefined },
    { when: 'no certificate', peer: { certificateIdentities: [] }, want: undefined },
  ])('given $when, counts it as $want', ({ peer, want }) => {
    expect(policy().connectionQuota(peer)).toEqual(want);
  });
});

const alice: Address = { side: 'sip', user: 'alice', domain: 'acme.example' };

describe('PartnerSubscriptions.admit', () => {
  const partnerOf: PartnerOf = (side, domain) => (side === 'sip' && domain === 'acme.example' ? { name: 'acme', maxSubscriptions: 3 } : undefined);

  it.each([
    { held: 0, pending: 0, admitted: true },
    { held: 2, pending: 0, admitted: true },
    { held: 3, pending: 0, admitted: false },
    { held: 1, pending: 1, admitted: true },
    { held: 1, pending: 2, admitted: false },
    { held: 0, pending: 3, admitted: false },
  ])('given $held stored and $pending admitted not yet stored (cap 3): admitted $admitted', async ({ held, pending, admitted }) => {
    const store = new MemorySubscriptionStore({ maxRecords: 100 });
    for (let i = 0; i < held; i++) await store.put({ id: `h${i}`, role: 'notifier', watcher: `w${i}@acme.example`, presentity: 'p@x', state: 'active', expiresAt: 1, data: {}, partner: 'acme' });
    // Records of another partner and of nobody do not count.
    await store.put({ id: 'other', role: 'notifier', watcher: 'o@b.example', presentity: 'p@x', state: 'active', expiresAt: 1, data: {}, partner: 'beta' });
    await store.put({ id: 'ours', role: 'notifier', watcher: 'o@corp.example', presentity: 'p@x', state: 'active', expiresAt: 1, data: {} });
    const caps = new PartnerSubscriptions(store, partnerOf, recordingLogger().logger);
    for (let i = 0; i < pending; i++) await caps.admit('sip', alice);
    const attempt = caps.admit('sip', alice);
    if (admitted) await expect(attempt).resolves.toMatchObject({ partner: 'acme' });
    else await expect(attempt).rejects.toMatchObject({ code: 'PARTNER_SUBSCRIPTIONS_FULL', condition: 'resource-constraint', sipStatus: 503, retryable: false });
  });

  it('given a refusal, writes one audit denial naming the partner, the watcher and the config rule', async () => {
    const log = recordingLogger();
    const caps = new PartnerSubscriptions(new MemorySubscriptionStore({ maxRecords: 10 }), () => ({ name: 'acme', maxSubscriptions: 0 }), log.logger);
    await expect(caps.admit('sip', alice)).rejects.toMatchObject({ code: 'PARTNER_SUBSCRIPTIONS_FULL' });
    await expect(caps.admit('sip', alice)).rejects.toMatchObject({ code: 'PARTNER_SUBSCRIPTIONS_FULL' });
    const denials = log.lines().filter((l) => l.audit === 'denial');
    // The second, identical one is folded into the next line (AuditLog), not written.
    expect(denials).toHaveLength(1);
    expect(denials[0]).toMatchObject({
      rule: 'partner-subscriptions',
      who: 'acme alice@acme.example',
      what: 'subscription',
      reason: 'partner acme limits.maxSubscriptions: 0 of 0 held',
      partner: 'acme',
    });
  });

  it('given a place released (once, however often release is called), admits the next', async () => {
    const caps = new PartnerSubscriptions(new MemorySubscriptionStore({ maxRecords: 10 }), () => ({ name: 'acme', maxSubscriptions: 1 }), recordingLogger().logger);
    const first = await caps.admit('sip', alice);
    await expect(caps.admit('sip', alice)).rejects.toMatchObject({ code: 'PARTNER_SUBSCRIPTIONS_FULL' });
    first.release();
    first.release();
    const second = await caps.admit('sip', alice);
    await expect(caps.admit('sip', alice)).rejects.toMatchObject({ code: 'PARTNER_SUBSCRIPTIONS_FULL' });
    second.release();
  });

  it('given concurrent requests at one place short of the cap, admits exactly one', async () => {
    const store = new MemorySubscriptionStore({ maxRecords: 10 });
    await store.put({ id: 'h', role: 'notifier', watcher: 'w@acme.example', presentity: 'p@x', state: 'active', expiresAt: 1, data: {}, partner: 'acme' });
    const caps = new PartnerSubscriptions(store, () => ({ name: 'acme', maxSubscriptions: 2 }), recordingLogger().logger);
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => caps.admit('sip', alice)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
  });

  it('given a watcher of our own (no partner), admits it untagged and counts nothing', async () => {
    const caps = new PartnerSubscriptions(new MemorySubscriptionStore({ maxRecords: 10 }), () => undefined, recordingLogger().logger);
    const admission = await caps.admit('sip', { side: 'sip', user: 'bob', domain: 'corp.example' });
    expect(admission.partner).toBeUndefined();
    expect(caps.tag('sip', 'corp.example')).toBeUndefined();
  });
});
