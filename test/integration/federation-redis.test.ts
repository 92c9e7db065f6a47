/**
 * Two routers on one Redis hold a partner to one limit, not one each (issue 6 item 5:
 * "counters shareable through Redis when scaled out").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageEvent } from '../../src/core/events.js';
import { FederationPolicy } from '../../src/core/policy/federation.js';
import { PartnerRegistry, partnersSchema } from '../../src/core/policy/partners.js';
import { RedisRateLimiter } from '../../src/core/policy/redis-rate-limit.js';
import { startRedis, type RedisServer } from '../support/redis.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});

describe('federation rate limits on Redis', () => {
  it('gives a partner its burst once across two routers, then refuses with a Retry-After', async () => {
    const registry = new PartnerRegistry(
      partnersSchema.parse({ partners: [{ name: 'globex', side: 'sip', domains: ['globex.example'], limits: { messagesPerSecond: 0.01, burst: 2 } }] }),
    );
    const prefix = redis.prefix();
    const router = () =>
      new FederationPolicy({
        registry,
        local: { sip: ['corp.example'], xmpp: ['xmpp.test'] },
        limiterFor: (bucket, kind) => new RedisRateLimiter({ connection: redis.url, prefix: `${prefix}-${kind}`, ...bucket }),
      });
    const [a, b] = [router(), router()];
    const to = { side: 'xmpp' as const, user: 'romeo', domain: 'xmpp.test' };
    const message = (n: number) =>
      messageEvent({ origin: 'sip', from: { side: 'sip', user: 'bob', domain: 'globex.example' }, to, body: `m${n}`, dedupeKey: `k${n}`, createdAt: 0 });
    try {
      await a.check(message(1), { to });
      await b.check(message(2), { to });
      await expect(a.check(message(3), { to })).rejects.toMatchObject({ code: 'RATE_LIMITED', sipStatus: 503, partner: 'globex' });
      await expect(b.check(message(4), { to })).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    } finally {
      await a.close();
      await b.close();
    }
  });
});
