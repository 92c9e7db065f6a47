import { describe, expect, it, vi } from 'vitest';
import { ExpiryScheduler, type ExpirySchedulerOptions } from '../../src/core/state/expiry.js';
import { MemorySubscriptionStore } from '../../src/core/state/memory-subscriptions.js';
import type { SubscriptionRecord, SubscriptionStore } from '../../src/core/state/subscriptions.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { waitFor } from '../support/ports.js';

/** Lets the scheduler finish what it started: the memory store answers within one turn. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Timers on a clock that moves only when told (as test/support/manual-scheduler.ts), which also
 * counts how many are armed at once and lets the scheduler's async work settle after each one.
 */
class ManualTimers {
  now = 0;
  calls = 0;
  peakArmed = 0;
  private seq = 0;
  private readonly armed = new Map<number, { at: number; fn: () => void }>();

  readonly set = (fn: () => void, ms: number): number => {
    const id = this.seq++;
    this.calls += 1;
    this.armed.set(id, { at: this.now + ms, fn });
    this.peakArmed = Math.max(this.peakArmed, this.armed.size);
    return id;
  };

  readonly clear = (handle: unknown): void => void this.armed.delete(handle as number);

  get armedCount(): number {
    return this.armed.size;
  }

  /** Fires every timer due up to `until`, earliest first, moving the clock to each. */
  async runUntil(until: number): Promise<void> {
    await turn();
    for (let guard = 0; guard < 1_000_000; guard++) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.armed) if (!next || entry[1].at < next[1].at) next = entry;
      if (!next || next[1].at > until) break;
      this.armed.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
      await turn();
    }
    this.now = until;
  }
}

function rec(id: string, expiresAt: number): SubscriptionRecord {
  return { id, role: 'notifier', watcher: 'w@sip.example', presentity: 'p@xmpp.example', state: 'active', expiresAt, data: {} };
}

function setup(options: Partial<ExpirySchedulerOptions> = {}, store: SubscriptionStore = new MemorySubscriptionStore({ maxRecords: 20_000 })) {
  const timers = new ManualTimers();
  const expired: Array<{ record: SubscriptionRecord; at: number }> = [];
  const scheduler = new ExpiryScheduler({
    store,
    onExpired: (record) => void expired.push({ record, at: timers.now }),
    now: () => timers.now,
    setTimer: timers.set,
    clearTimer: timers.clear,
    ...options,
  });
  return { store, timers, expired, scheduler };
}

/** A deterministic spread of expiries (Park–Miller), so a failure can be replayed. */
function expiries(count: number, span: number): number[] {
  let seed = 42;
  return Array.from({ length: count }, () => {
    seed = (seed * 48_271) % 2_147_483_647;
    return seed % span;
  });
}

describe('ExpiryScheduler', () => {
  it('expires 10,000 subscriptions in order, each when due, with at most one timer armed', async () => {
    const { store, timers, expired, scheduler } = setup();
    const due = expiries(10_000, 1_000_000);
    for (const [i, at] of due.entries()) await store.put(rec(`d${i}`, at));
    scheduler.start();
    await timers.runUntil(1_000_000);
    expect(expired).toHaveLength(10_000);
    expect(expired.map((e) => e.record.expiresAt)).toEqual([...due].sort((a, b) => a - b));
    expect(expired.every((e) => e.at === e.record.expiresAt)).toBe(true);
    expect(timers.peakArmed).toBe(1);
    // One wake-up per distinct expiry plus the polls of the idle end: not one timer per record twice over.
    expect(timers.calls).toBeLessThanOrEqual(new Set(due).size + 1_000_000 / 60_000 + 2);
    await scheduler.stop();
    expect(timers.armedCount).toBe(0);
  });

  it('takes a backlog in batches, each batch in a wake-up of its own', async () => {
    const timers = new ManualTimers();
    const store = new MemorySubscriptionStore({ maxRecords: 2_000 });
    const wakeOfEach: number[] = [];
    const scheduler = new ExpiryScheduler({
      store,
      batch: 500,
      now: () => timers.now,
      setTimer: timers.set,
      clearTimer: timers.clear,
      onExpired: () => void wakeOfEach.push(timers.calls),
    });
    for (let i = 0; i < 1_200; i++) await store.put(rec(`d${i}`, 100));
    scheduler.start();
    await timers.runUntil(100);
    const batchSizes = [...new Set(wakeOfEach)].map((wake) => wakeOfEach.filter((w) => w === wake).length);
    expect(batchSizes).toEqual([500, 500, 200]);
    expect(timers.now).toBe(100);
    expect(timers.peakArmed).toBe(1);
    await scheduler.stop();
  });

  it('wakes earlier when poked after a put that is due before its current wake-up', async () => {
    const { store, timers, expired, scheduler } = setup();
    await store.put(rec('late', 10_000));
    scheduler.start();
    await timers.runUntil(10);
    await store.put(rec('early', 100));
    scheduler.poke();
    await timers.runUntil(10_000);
    expect(expired.map((e) => [e.record.id, e.at])).toEqual([
      ['early', 100],
      ['late', 10_000],
    ]);
    expect(timers.peakArmed).toBe(1);
    await scheduler.stop();
  });

  it('does not let a slow answer from the store override a newer one', async () => {
    const memory = new MemorySubscriptionStore({ maxRecords: 10 });
    let hold: Promise<void> | undefined;
    const store: SubscriptionStore = Object.assign(Object.create(memory) as SubscriptionStore, {
      nextExpiry: async () => {
        const answer = await memory.nextExpiry();
        const held = hold;
        hold = undefined;
        if (held) await held;
        return answer;
      },
    });
    const { timers, expired, scheduler } = setup({}, store);
    await memory.put(rec('late', 10_000));
    scheduler.start();
    await timers.runUntil(10);
    let release!: () => void;
    hold = new Promise<void>((resolve) => (release = resolve));
    scheduler.poke();
    await memory.put(rec('early', 100));
    scheduler.poke();
    await timers.runUntil(20);
    release();
    await timers.runUntil(10_000);
    expect(expired.map((e) => [e.record.id, e.at])).toEqual([
      ['early', 100],
      ['late', 10_000],
    ]);
    await scheduler.stop();
  });

  it('looks at the store again when poked while a batch is still choosing its next wake-up', async () => {
    const memory = new MemorySubscriptionStore({ maxRecords: 10 });
    let hold: Promise<void> | undefined;
    const store: SubscriptionStore = Object.assign(Object.create(memory) as SubscriptionStore, {
      nextExpiry: async () => {
        const answer = await memory.nextExpiry();
        const held = hold;
        hold = undefined;
        if (held) await held;
        return answer;
      },
    });
    let release!: () => void;
    const { timers, expired, scheduler } = setup(
      {
        onExpired: (record) => {
          expired.push({ record, at: timers.now });
          if (record.id === 'first') hold = new Promise<void>((resolve) => (release = resolve));
        },
      },
      store,
    );
    await memory.put(rec('first', 100));
    await memory.put(rec('last', 10_000));
    scheduler.start();
    await timers.runUntil(100);
    await memory.put(rec('added', 150));
    scheduler.poke();
    release();
    await timers.runUntil(10_000);
    expect(expired.map((e) => [e.record.id, e.at])).toEqual([
      ['first', 100],
      ['added', 150],
      ['last', 10_000],
    ]);
    await scheduler.stop();
  });

  it('finds a record put without a poke (by another process) within maxSleepMs', async () => {
    const { store, timers, expired, scheduler } = setup({ maxSleepMs: 1_000 });
    scheduler.start();
    await timers.runUntil(10);
    await store.put(rec('elsewhere', 50));
    await timers.runUntil(5_000);
    expect(expired.map((e) => [e.record.id, e.at])).toEqual([['elsewhere', 1_000]]);
    await scheduler.stop();
  });

  it('expires on time a record put and poked while a batch is in progress', async () => {
    const timers = new ManualTimers();
    const store = new MemorySubscriptionStore({ maxRecords: 10 });
    const expired: Array<[string, number]> = [];
    const scheduler: ExpiryScheduler = new ExpiryScheduler({
      store,
      now: () => timers.now,
      setTimer: timers.set,
      clearTimer: timers.clear,
      onExpired: async (record) => {
        expired.push([record.id, timers.now]);
        if (record.id === 'first') {
          await store.put(rec('added', 150));
          scheduler.poke();
        }
      },
    });
    await store.put(rec('first', 100));
    await store.put(rec('last', 5_000));
    scheduler.start();
    await timers.runUntil(10_000);
    expect(expired).toEqual([
      ['first', 100],
      ['added', 150],
      ['last', 5_000],
    ]);
    expect(timers.peakArmed).toBe(1);
    await scheduler.stop();
  });

  it('logs a failing handler and goes on with the other records', async () => {
    const error = vi.fn();
    const logger = { error } as unknown as Logger;
    const seen: string[] = [];
    const { store, timers, scheduler } = setup({
      logger,
      onExpired: (record) => {
        if (record.id === 'bad') throw new Error('dialog gone');
        seen.push(record.id);
      },
    });
    await store.put(rec('a', 10));
    await store.put(rec('bad', 20));
    await store.put(rec('b', 20));
    scheduler.start();
    await timers.runUntil(100);
    expect(seen.sort()).toEqual(['a', 'b']);
    expect(error).toHaveBeenCalledTimes(1);
    expect(error.mock.calls[0]![0]).toMatchObject({ subscription: 'bad' });
    await scheduler.stop();
  });

  it('logs a failing store and tries again later instead of spinning', async () => {
    const error = vi.fn();
    const memory = new MemorySubscriptionStore({ maxRecords: 10 });
    let failures = 1;
    const store: SubscriptionStore = Object.assign(Object.create(memory) as SubscriptionStore, {
      takeExpired: async <D>(now: number, limit: number) => {
        if (failures-- > 0) throw new Error('connection reset');
        return memory.takeExpired<D>(now, limit);
      },
    });
    const { timers, expired, scheduler } = setup({ logger: { error } as unknown as Logger }, store);
    await memory.put(rec('d1', 100));
    scheduler.start();
    await timers.runUntil(5_000);
    expect(error).toHaveBeenCalledTimes(1);
    expect(expired.map((e) => [e.record.id, e.at])).toEqual([['d1', 1_100]]);
    expect(timers.calls).toBeLessThan(10);
    await scheduler.stop();
  });

  it('stop() waits for a handler in progress and leaves no timer armed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let finished = false;
    const { store, timers, scheduler } = setup({
      onExpired: async () => {
        await gate;
        finished = true;
      },
    });
    await store.put(rec('d1', 100));
    await store.put(rec('d2', 200));
    scheduler.start();
    await timers.runUntil(100);
    const stopping = scheduler.stop();
    release();
    await stopping;
    expect(finished).toBe(true);
    expect(timers.armedCount).toBe(0);
    await timers.runUntil(1_000);
    expect(await store.get('d2')).toBeDefined();
  });

  it('ignores a poke before start and after stop', async () => {
    const { store, timers, expired, scheduler } = setup();
    await store.put(rec('d1', 100));
    scheduler.poke();
    await timers.runUntil(1_000);
    expect(timers.calls).toBe(0);
    scheduler.start();
    await scheduler.stop();
    scheduler.poke();
    await timers.runUntil(2_000);
    expect(expired).toEqual([]);
    expect(timers.armedCount).toBe(0);
  });

  it('runs on the real clock and timers by default', async () => {
    const store = new MemorySubscriptionStore({ maxRecords: 10 });
    const expired: string[] = [];
    const scheduler = new ExpiryScheduler({ store, onExpired: (record) => void expired.push(record.id) });
    await store.put(rec('due', Date.now() - 1));
    await store.put(rec('later', Date.now() + 3_600_000));
    scheduler.start();
    await waitFor('expiry on the real clock', () => expired.length === 1 || undefined);
    await scheduler.stop();
    expect(expired).toEqual(['due']);
    expect(await store.get('later')).toBeDefined();
  });
});
