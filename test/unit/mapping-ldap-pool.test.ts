import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/core/errors.js';
import { ConnectionPool } from '../../src/mapping/identity/ldap-pool.js';

interface Fake {
  readonly id: number;
  open: boolean;
}

/** A pool over fake connections: opening is instant unless `failOpen` is set. */
function fakePool(size: number, opts: { maxWaiting?: number; waitTimeoutMs?: number } = {}) {
  let next = 0;
  const state = { failOpen: false, live: new Set<Fake>() };
  const pool = new ConnectionPool<Fake>(size, opts.maxWaiting ?? 100, opts.waitTimeoutMs ?? 60_000, {
    open: async (signal) => {
      signal?.throwIfAborted();
      if (state.failOpen) throw new Error('connection refused');
      const c = { id: ++next, open: true };
      state.live.add(c);
      return c;
    },
    close: (c) => {
      c.open = false;
      state.live.delete(c);
    },
    healthy: (c) => c.open,
  });
  return { pool, state };
}

async function rejection(work: Promise<unknown>): Promise<BridgeError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BridgeError);
  return err as BridgeError;
}

describe('ConnectionPool', () => {
  it('hands a released connection to the next acquire instead of opening another', async () => {
    const { pool } = fakePool(2);
    const first = await pool.acquire(undefined);
    pool.release(first);
    expect(await pool.acquire(undefined)).toBe(first);
    expect(pool.stats().opened).toBe(1);
  });

  it('makes a lookup wait when every slot is taken, and hands it the next released connection', async () => {
    const { pool } = fakePool(1);
    const held = await pool.acquire(undefined);
    const waiting = pool.acquire(undefined);
    expect(pool.stats().waiting).toBe(1);
    pool.release(held);
    expect(await waiting).toBe(held);
  });

  it('lets a waiter open a fresh connection when a failed one is discarded', async () => {
    const { pool } = fakePool(1);
    const broken = await pool.acquire(undefined);
    const waiting = pool.acquire(undefined);
    pool.discard(broken);
    const fresh = await waiting;
    expect(fresh).not.toBe(broken);
    expect(pool.stats()).toMatchObject({ opened: 2, discarded: 1, inUse: 1 });
  });

  it('replaces an idle connection the server closed', async () => {
    const { pool } = fakePool(1);
    const c = await pool.acquire(undefined);
    pool.release(c);
    c.open = false;
    const next = await pool.acquire(undefined);
    expect(next).not.toBe(c);
    expect(pool.stats().discarded).toBe(1);
  });

  it('frees the slot when opening fails', async () => {
    const { pool, state } = fakePool(1);
    state.failOpen = true;
    await expect(pool.acquire(undefined)).rejects.toThrow('connection refused');
    state.failOpen = false;
    expect((await pool.acquire(undefined)).open).toBe(true);
    expect(pool.stats().inUse).toBe(1);
  });

  it('removes a waiter whose signal aborts, with LDAP_TIMEOUT', async () => {
    const { pool } = fakePool(1);
    await pool.acquire(undefined);
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    controller.abort();
    expect((await rejection(waiting)).code).toBe('LDAP_TIMEOUT');
    expect(pool.stats().waiting).toBe(0);
  });

  it('refuses more waiters than its bound, with LDAP_BUSY', async () => {
    const { pool } = fakePool(1, { maxWaiting: 2 });
    await pool.acquire(undefined);
    void pool.acquire(undefined).catch(() => undefined);
    void pool.acquire(undefined).catch(() => undefined);
    expect((await rejection(pool.acquire(undefined))).code).toBe('LDAP_BUSY');
  });

  it('gives up waiting after its wait timeout, with LDAP_TIMEOUT', async () => {
    const { pool } = fakePool(1, { waitTimeoutMs: 10 });
    await pool.acquire(undefined);
    expect((await rejection(pool.acquire(undefined))).code).toBe('LDAP_TIMEOUT');
  });

  it('on close, fails waiters with LDAP_STOPPED and closes connections as they come back', async () => {
    const { pool, state } = fakePool(1);
    const held = await pool.acquire(undefined);
    const waiting = pool.acquire(undefined);
    pool.close();
    expect((await rejection(waiting)).code).toBe('LDAP_STOPPED');
    pool.release(held);
    expect(state.live.size).toBe(0);
    expect(pool.stats()).toMatchObject({ idle: 0, inUse: 0 });
  });

  it('never holds more connections than its size, and leaks none, whatever the order of operations', async () => {
    type Op = 'acquire' | 'release' | 'discard' | 'serverCloses';
    const ops = fc.array(fc.constantFrom<Op>('acquire', 'release', 'discard', 'serverCloses'), { maxLength: 60 });
    const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), ops, async (size, sequence) => {
        const { pool, state } = fakePool(size);
        const held: Fake[] = [];
        for (const op of sequence) {
          if (op === 'acquire') void pool.acquire(undefined).then((c) => held.push(c), () => undefined);
          else if (op === 'serverCloses') for (const c of state.live) c.open = false;
          else {
            const c = held.shift();
            if (c !== undefined && op === 'release') pool.release(c);
            if (c !== undefined && op === 'discard') pool.discard(c);
          }
          await settle();
          const s = pool.stats();
          // Every connection not closed is idle or in use: none lost, none beyond the size.
          expect(state.live.size).toBe(s.idle + s.inUse);
          expect(state.live.size).toBeLessThanOrEqual(size);
          expect(s.inUse).toBe(held.length);
          // Nobody waits while a connection is idle or a slot is free.
          if (s.waiting > 0) expect({ idle: s.idle, inUse: s.inUse }).toEqual({ idle: 0, inUse: size });
        }
        pool.close();
        for (const c of held.splice(0)) pool.release(c);
        expect(state.live.size).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});
