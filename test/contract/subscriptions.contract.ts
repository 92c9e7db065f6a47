/**
 * The subscription store contract (src/core/state/subscriptions.ts), run against every backend.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { SubscriptionRecord, SubscriptionRole, SubscriptionStore } from '../../src/core/state/subscriptions.js';

export interface SubscriptionStoreFactoryOptions {
  maxRecords: number;
}

const defaults: SubscriptionStoreFactoryOptions = { maxRecords: 10_000 };

/** A record with defaults for whatever the test does not care about. */
function rec(id: string, fields: Partial<Omit<SubscriptionRecord, 'id'>> = {}): SubscriptionRecord {
  return {
    id,
    role: 'notifier',
    watcher: 'alice@sip.example',
    presentity: 'bob@xmpp.example',
    state: 'active',
    expiresAt: 1_000,
    data: { cseq: 1 },
    ...fields,
  };
}

const ids = (records: readonly SubscriptionRecord[]) => records.map((r) => r.id).sort();

export function subscriptionStoreContract(
  backend: string,
  create: (options: SubscriptionStoreFactoryOptions) => Promise<SubscriptionStore> | SubscriptionStore,
): void {
  describe(`subscription store contract: ${backend}`, () => {
    const open: SubscriptionStore[] = [];
    const openStore = async (options: Partial<SubscriptionStoreFactoryOptions> = {}) => {
      const store = await create({ ...defaults, ...options });
      open.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
    });

    it('gives back what was put, as an equal record and not the same object', async () => {
      const store = await openStore();
      const record = rec('d1', { data: { dialog: { callId: 'c@h', localTag: 'a', remoteTag: 'b' }, cseq: 7 } });
      await store.put(record);
      const got = await store.get('d1');
      expect(got).toEqual(record);
      expect(got).not.toBe(record);
    });

    it('is not changed by a caller mutating what it put or what it got', async () => {
      const store = await openStore();
      const record = { ...rec('d1'), data: { list: [1, 2] } };
      await store.put(record);
      record.data.list.push(3);
      const got = await store.get<{ list: number[] }>('d1');
      got!.data.list.push(4);
      expect((await store.get<{ list: number[] }>('d1'))!.data.list).toEqual([1, 2]);
    });

    it('keeps JSON data intact: unicode, nesting, null, numbers, empty containers', async () => {
      const store = await openStore();
      const data = { note: 'héllo 🌍 "quoted" \\ \n', nested: { a: [1, -2.5, null, true, 'x'], e: {}, l: [] }, big: 2 ** 52 };
      await store.put(rec('d1', { data }));
      expect((await store.get('d1'))!.data).toEqual(data);
    });

    it('answers undefined for an id it does not hold', async () => {
      const store = await openStore();
      expect(await store.get('nope')).toBeUndefined();
    });

    it('replaces a record of the same id and moves it between the indexes', async () => {
      const store = await openStore();
      await store.put(rec('d1', { presentity: 'bob@xmpp.example', watcher: 'alice@sip.example' }));
      await store.put(rec('d1', { presentity: 'carol@xmpp.example', watcher: 'dave@sip.example', state: 'pending' }));
      expect(await store.byPresentity('bob@xmpp.example')).toEqual([]);
      expect(await store.byWatcher('alice@sip.example')).toEqual([]);
      expect(ids(await store.byPresentity('carol@xmpp.example'))).toEqual(['d1']);
      expect(ids(await store.byWatcher('dave@sip.example'))).toEqual(['d1']);
      expect((await store.get('d1'))!.state).toBe('pending');
      expect(await store.size()).toBe(1);
    });

    it('deletes a record from the store and its indexes, and says whether it held one', async () => {
      const store = await openStore();
      await store.put(rec('d1'));
      expect(await store.delete('d1')).toBe(true);
      expect(await store.delete('d1')).toBe(false);
      expect(await store.get('d1')).toBeUndefined();
      expect(await store.byPresentity('bob@xmpp.example')).toEqual([]);
      expect(await store.byWatcher('alice@sip.example')).toEqual([]);
      expect(await store.size()).toBe(0);
    });

    it('finds records by presentity and by watcher, filtered by role when asked', async () => {
      const store = await openStore();
      await store.put(rec('n1', { role: 'notifier', watcher: 'alice@sip.example', presentity: 'bob@xmpp.example' }));
      await store.put(rec('n2', { role: 'notifier', watcher: 'carol@sip.example', presentity: 'bob@xmpp.example' }));
      await store.put(rec('s1', { role: 'subscriber', watcher: 'alice@sip.example', presentity: 'bob@xmpp.example' }));
      await store.put(rec('x1', { role: 'notifier', watcher: 'alice@sip.example', presentity: 'erin@xmpp.example' }));
      expect(ids(await store.byPresentity('bob@xmpp.example'))).toEqual(['n1', 'n2', 's1']);
      expect(ids(await store.byPresentity('bob@xmpp.example', 'notifier'))).toEqual(['n1', 'n2']);
      expect(ids(await store.byPresentity('bob@xmpp.example', 'subscriber'))).toEqual(['s1']);
      expect(ids(await store.byWatcher('alice@sip.example'))).toEqual(['n1', 's1', 'x1']);
      expect(ids(await store.byWatcher('alice@sip.example', 'subscriber'))).toEqual(['s1']);
      expect(await store.byWatcher('nobody@sip.example')).toEqual([]);
    });

    it('lists the records of one role, at most `limit`', async () => {
      const store = await openStore();
      for (let i = 0; i < 5; i++) await store.put(rec(`n${i}`, { role: 'notifier' }));
      for (let i = 0; i < 3; i++) await store.put(rec(`s${i}`, { role: 'subscriber' }));
      expect(ids(await store.list('subscriber', 100))).toEqual(['s0', 's1', 's2']);
      const some = await store.list('notifier', 2);
      expect(some).toHaveLength(2);
      expect(some.every((r) => r.role === 'notifier')).toBe(true);
      expect(await store.list('notifier', 0)).toEqual([]);
    });

    it('takes expired records earliest first, up to `limit`, and leaves the rest', async () => {
      const store = await openStore();
      await store.put(rec('late', { expiresAt: 300 }));
      await store.put(rec('first', { expiresAt: 100 }));
      await store.put(rec('second', { expiresAt: 200 }));
      await store.put(rec('future', { expiresAt: 5_000 }));
      expect((await store.takeExpired(1_000, 2)).map((r) => r.id)).toEqual(['first', 'second']);
      expect((await store.takeExpired(1_000, 10)).map((r) => r.id)).toEqual(['late']);
      expect(await store.get('late')).toBeUndefined();
      expect(ids(await store.byPresentity('bob@xmpp.example'))).toEqual(['future']);
    });

    it('takes a record whose expiry equals now, and never the same record twice', async () => {
      const store = await openStore();
      await store.put(rec('d1', { expiresAt: 1_000 }));
      expect((await store.takeExpired(999, 10)).map((r) => r.id)).toEqual([]);
      const taken = await store.takeExpired(1_000, 10);
      expect(taken).toEqual([rec('d1', { expiresAt: 1_000 })]);
      expect(await store.takeExpired(1_000_000, 10)).toEqual([]);
      expect(await store.size()).toBe(0);
    });

    it('reschedules a replaced record by its new expiry only', async () => {
      const store = await openStore();
      await store.put(rec('d1', { expiresAt: 100 }));
      await store.put(rec('d2', { expiresAt: 500 }));
      await store.put(rec('d1', { expiresAt: 900 }));
      expect(await store.nextExpiry()).toBe(500);
      expect((await store.takeExpired(600, 10)).map((r) => r.id)).toEqual(['d2']);
      expect(await store.nextExpiry()).toBe(900);
    });

    it('gives the next expiry after a delete, and undefined when empty', async () => {
      const store = await openStore();
      expect(await store.nextExpiry()).toBeUndefined();
      await store.put(rec('d1', { expiresAt: 100 }));
      await store.put(rec('d2', { expiresAt: 200 }));
      await store.delete('d1');
      expect(await store.nextExpiry()).toBe(200);
      await store.delete('d2');
      expect(await store.nextExpiry()).toBeUndefined();
    });

    it('counts its records', async () => {
      const store = await openStore();
      await store.put(rec('d1'));
      await store.put(rec('d2'));
      await store.put(rec('d1', { state: 'terminated' }));
      expect(await store.size()).toBe(2);
    });

    it.each([
      { when: 'records are tagged', puts: [['d1', 'acme'], ['d2', 'acme'], ['d3', 'hub'], ['d4', undefined]], gone: [], acme: 2, hub: 1 },
      { when: 'a replace moves a record to another partner', puts: [['d1', 'acme'], ['d2', 'acme'], ['d1', 'hub']], gone: [], acme: 1, hub: 1 },
      { when: 'a replace drops the tag', puts: [['d1', 'acme'], ['d1', undefined]], gone: [], acme: 0, hub: 0 },
      { when: 'a record is deleted', puts: [['d1', 'acme'], ['d2', 'acme']], gone: ['d1'], acme: 1, hub: 0 },
      { when: 'an unknown partner is asked', puts: [], gone: [], acme: 0, hub: 0 },
    ] as { when: string; puts: [string, string | undefined][]; gone: string[]; acme: number; hub: number }[])(
      'counts records by partner when $when',
      async ({ puts, gone, acme, hub }) => {
        const store = await openStore();
        for (const [id, partner] of puts) await store.put(rec(id, partner === undefined ? {} : { partner }));
        for (const id of gone) await store.delete(id);
        expect(await store.countByPartner('acme')).toBe(acme);
        expect(await store.countByPartner('hub')).toBe(hub);
      },
    );

    it('stops counting a record for its partner once it is taken as expired', async () => {
      const store = await openStore();
      await store.put(rec('d1', { partner: 'acme', expiresAt: 100 }));
      await store.put(rec('d2', { partner: 'acme', expiresAt: 300 }));
      expect(ids(await store.takeExpired(200, 10))).toEqual(['d1']);
      expect(await store.countByPartner('acme')).toBe(1);
      expect((await store.get('d2'))!.partner).toBe('acme');
    });

    it('refuses a record whose partner is an empty string', async () => {
      const store = await openStore();
      await expect(store.put(rec('d1', { partner: '' }))).rejects.toMatchObject({ code: 'STATE_INVALID_RECORD' });
    });

    it('refuses a new id past maxRecords with resource-constraint, and still takes a replace', async () => {
      const store = await openStore({ maxRecords: 2 });
      await store.put(rec('d1'));
      await store.put(rec('d2'));
      await expect(store.put(rec('d3'))).rejects.toMatchObject({
        code: 'STATE_FULL',
        condition: 'resource-constraint',
        sipStatus: 503,
        retryable: false,
      });
      await store.put(rec('d1', { expiresAt: 9_999 }));
      expect(await store.size()).toBe(2);
      await store.delete('d2');
      await store.put(rec('d3'));
      expect(ids(await store.list('notifier', 10))).toEqual(['d1', 'd3']);
    });

    it('refuses a record with a non-finite expiry and keeps what it held', async () => {
      const store = await openStore();
      await store.put(rec('d1', { expiresAt: 100 }));
      await expect(store.put(rec('d1', { expiresAt: Number.NaN }))).rejects.toMatchObject({ code: 'STATE_INVALID_RECORD' });
      expect((await store.get('d1'))!.expiresAt).toBe(100);
      expect(await store.nextExpiry()).toBe(100);
    });

    it('agrees with a plain list of records over random operations', async () => {
      const idArb = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
      const userArb = fc.constantFrom('u1@x.example', 'u2@x.example', 'u3@x.example');
      const roleArb = fc.constantFrom<SubscriptionRole>('notifier', 'subscriber');
      const partnerArb = fc.constantFrom<string | undefined>(undefined, 'p1', 'p2');
      const timeArb = fc.integer({ min: 0, max: 50 });
      const opArb = fc.oneof(
        fc.record({ op: fc.constant('put' as const), id: idArb, role: roleArb, watcher: userArb, presentity: userArb, partner: partnerArb, at: timeArb, n: fc.nat() }),
        fc.record({ op: fc.constant('delete' as const), id: idArb }),
        fc.record({ op: fc.constant('take' as const), now: timeArb, limit: fc.integer({ min: 0, max: 4 }) }),
      );
      const maxRecords = 4;
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), async (ops) => {
          const store = await create({ maxRecords });
          try {
            let model: SubscriptionRecord[] = [];
            for (const op of ops) {
              if (op.op === 'put') {
                const record = rec(op.id, {
                  role: op.role,
                  watcher: op.watcher,
                  presentity: op.presentity,
                  ...(op.partner === undefined ? {} : { partner: op.partner }),
                  expiresAt: op.at,
                  data: { n: op.n },
                });
                const exists = model.some((r) => r.id === op.id);
                if (!exists && model.length >= maxRecords) {
                  await expect(store.put(record)).rejects.toMatchObject({ code: 'STATE_FULL' });
                } else {
                  await store.put(record);
                  model = [...model.filter((r) => r.id !== op.id), record];
                }
              } else if (op.op === 'delete') {
                expect(await store.delete(op.id)).toBe(model.some((r) => r.id === op.id));
                model = model.filter((r) => r.id !== op.id);
              } else {
                const taken = await store.takeExpired(op.now, op.limit);
                const due = model.filter((r) => r.expiresAt <= op.now).sort((a, b) => a.expiresAt - b.expiresAt);
                // Ties may come in any order: compare expiries in order, then that each taken
                // record was due and held.
                expect(taken.map((r) => r.expiresAt)).toEqual(due.slice(0, op.limit).map((r) => r.expiresAt));
                for (const t of taken) expect(model).toContainEqual(t);
                model = model.filter((r) => !taken.some((t) => t.id === r.id));
              }
              expect(await store.size()).toBe(model.length);
              const earliest = model.length === 0 ? undefined : Math.min(...model.map((r) => r.expiresAt));
              expect(await store.nextExpiry()).toBe(earliest);
              for (const partner of ['p1', 'p2']) expect(await store.countByPartner(partner)).toBe(model.filter((r) => r.partner === partner).length);
            }
            for (const record of model) expect(await store.get(record.id)).toEqual(record);
            for (const user of ['u1@x.example', 'u2@x.example', 'u3@x.example']) {
              expect(ids(await store.byPresentity(user))).toEqual(ids(model.filter((r) => r.presentity === user)));
              expect(ids(await store.byWatcher(user, 'subscriber'))).toEqual(
                ids(model.filter((r) => r.watcher === user && r.role === 'subscriber')),
              );
            }
            for (const role of ['notifier', 'subscriber'] as const) {
              expect(ids(await store.list(role, 100))).toEqual(ids(model.filter((r) => r.role === role)));
            }
          } finally {
            await store.close();
          }
        }),
        { numRuns: 200 },
      );
    });
  });
}
