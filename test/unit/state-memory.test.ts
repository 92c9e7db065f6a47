import { describe, expect, it } from 'vitest';
import { MemorySubscriptionStore } from '../../src/core/state/memory-subscriptions.js';
import type { SubscriptionRecord } from '../../src/core/state/subscriptions.js';
import { subscriptionStoreContract } from '../contract/subscriptions.contract.js';

subscriptionStoreContract('memory', (options) => new MemorySubscriptionStore(options));

function rec(id: string, expiresAt: number): SubscriptionRecord {
  return { id, role: 'subscriber', watcher: 'w@x.example', presentity: 'p@s.example', state: 'active', expiresAt, data: null };
}

describe('MemorySubscriptionStore', () => {
  it('does not grow its expiry heap when one subscription is refreshed many times', async () => {
    const store = new MemorySubscriptionStore({ maxRecords: 100 });
    for (let i = 0; i < 10; i++) await store.put(rec(`other-${i}`, 1_000_000 + i));
    for (let refresh = 0; refresh < 10_000; refresh++) await store.put(rec('hot', refresh));
    expect(store.heapSize).toBeLessThanOrEqual(3 * (await store.size()) + 1);
    expect(await store.nextExpiry()).toBe(9_999);
  });

  it('does not grow its expiry heap when subscriptions come and go', async () => {
    const store = new MemorySubscriptionStore({ maxRecords: 100 });
    await store.put(rec('stays', 5));
    for (let i = 0; i < 10_000; i++) {
      await store.put(rec(`churn-${i}`, 1_000 + i));
      await store.delete(`churn-${i}`);
    }
    expect(store.heapSize).toBeLessThanOrEqual(4);
    expect((await store.takeExpired(Number.MAX_SAFE_INTEGER, 10)).map((r) => r.id)).toEqual(['stays']);
  });

  it('keeps the heap entry of a record whose expiry did not change', async () => {
    const store = new MemorySubscriptionStore({ maxRecords: 10 });
    await store.put(rec('d1', 100));
    await store.put({ ...rec('d1', 100), state: 'terminated' });
    expect(store.heapSize).toBe(1);
    expect(await store.takeExpired(100, 10)).toEqual([{ ...rec('d1', 100), state: 'terminated' }]);
  });

  it('takes 10,000 records in expiry order', async () => {
    const store = new MemorySubscriptionStore({ maxRecords: 10_000 });
    const expiries = Array.from({ length: 10_000 }, (_, i) => (i * 7919) % 10_007);
    for (const [i, at] of expiries.entries()) await store.put(rec(`d${i}`, at));
    const taken: number[] = [];
    for (let guard = 0; guard < 100; guard++) {
      const batch = await store.takeExpired(Number.MAX_SAFE_INTEGER, 500);
      if (batch.length === 0) break;
      taken.push(...batch.map((r) => r.expiresAt));
    }
    expect(taken).toEqual([...expiries].sort((a, b) => a - b));
  });

  it.each([
    ['an empty id', { id: '' }],
    ['an unknown role', { role: 'observer' }],
    ['an unknown state', { state: 'ACTIVE' }],
    ['an infinite expiry', { expiresAt: Number.POSITIVE_INFINITY }],
    ['a BigInt in data', { data: { n: 1n } }],
  ])('refuses a record with %s', async (_name, fields) => {
    const store = new MemorySubscriptionStore({ maxRecords: 10 });
    await expect(store.put({ ...rec('d1', 1), ...fields } as SubscriptionRecord)).rejects.toMatchObject({ code: 'STATE_INVALID_RECORD' });
    expect(await store.size()).toBe(0);
  });

  it('refuses a record whose data refers to itself', async () => {
    const store = new MemorySubscriptionStore({ maxRecords: 10 });
    const data: Record<string, unknown> = {};
    data['self'] = data;
    await expect(store.put({ ...rec('d1', 1), data })).rejects.toMatchObject({ code: 'STATE_INVALID_RECORD' });
  });

  it('refuses every call once closed', async () => {
    const store = new MemorySubscriptionStore({ maxRecords: 10 });
    await store.put(rec('d1', 1));
    await store.close();
    await expect(store.get('d1')).rejects.toMatchObject({ code: 'STATE_CLOSED', condition: 'service-unavailable' });
    await expect(store.put(rec('d2', 1))).rejects.toMatchObject({ code: 'STATE_CLOSED' });
  });
});
