import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Coalescer } from '../../src/core/coalesce.js';

/** A send whose calls stay in flight until the test settles them. */
function controlledSend<V>() {
  const calls: { key: string; value: V; resolve: () => void; reject: (err: unknown) => void }[] = [];
  const send = (key: string, value: V): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      calls.push({ key, value, resolve, reject });
    });
  return { calls, send };
}

/** Lets the coalescer's continuation after a settled send run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function coalescer<V>(maxKeys = 100) {
  const { calls, send } = controlledSend<V>();
  const errors: [string, unknown][] = [];
  const c = new Coalescer<V>({ send, equals: (a, b) => a === b, maxKeys, onError: (key, err) => errors.push([key, err]) });
  return { c, calls, errors };
}

describe('Coalescer', () => {
  it('turns a burst of 100 offers into at most 2 sends, the last with the last value', async () => {
    const { c, calls } = coalescer<number>();
    for (let i = 1; i <= 100; i += 1) c.offer('k', i);
    expect(calls.map((x) => x.value)).toEqual([1]);
    calls[0]!.resolve();
    await settle();
    expect(calls.map((x) => x.value)).toEqual([1, 100]);
    calls[1]!.resolve();
    await c.idle();
    expect(calls).toHaveLength(2);
  });

  it('keeps at most one send in flight per key, keys independent', async () => {
    const { c, calls } = coalescer<string>();
    c.offer('a', 'a1');
    c.offer('b', 'b1');
    c.offer('a', 'a2');
    expect(calls.map((x) => [x.key, x.value])).toEqual([
      ['a', 'a1'],
      ['b', 'b1'],
    ]);
    calls[1]!.resolve();
    await settle();
    expect(calls).toHaveLength(2);
    calls[0]!.resolve();
    await settle();
    expect(calls.map((x) => x.value)).toEqual(['a1', 'b1', 'a2']);
  });

  it('does not send again a value equal to the last one sent', async () => {
    const { c, calls } = coalescer<string>();
    c.offer('k', 'open');
    calls[0]!.resolve();
    await c.idle();
    c.offer('k', 'open');
    expect(calls).toHaveLength(1);
    c.offer('k', 'closed');
    expect(calls.map((x) => x.value)).toEqual(['open', 'closed']);
  });

  it('drops a pending value that returns to what is being sent', async () => {
    const { c, calls } = coalescer<string>();
    c.offer('k', 'open');
    c.offer('k', 'closed');
    c.offer('k', 'open');
    calls[0]!.resolve();
    await c.idle();
    expect(calls.map((x) => x.value)).toEqual(['open']);
  });

  it('does not wedge a key whose send failed, and sends the same value again', async () => {
    const { c, calls, errors } = coalescer<string>();
    c.offer('k', 'open');
    const boom = new Error('503');
    calls[0]!.reject(boom);
    await c.idle();
    expect(errors).toEqual([['k', boom]]);
    c.offer('k', 'open');
    expect(calls.map((x) => x.value)).toEqual(['open', 'open']);
  });

  it('goes on to the pending value after a failed send', async () => {
    const { c, calls, errors } = coalescer<string>();
    c.offer('k', 'a');
    c.offer('k', 'b');
    calls[0]!.reject(new Error('timeout'));
    await settle();
    expect(calls.map((x) => x.value)).toEqual(['a', 'b']);
    expect(errors).toHaveLength(1);
  });

  it('survives a send that throws instead of rejecting, and an onError that throws', async () => {
    let n = 0;
    const c = new Coalescer<number>({
      send: () => {
        n += 1;
        throw new Error('sync');
      },
      equals: (a, b) => a === b,
      maxKeys: 10,
      onError: () => {
        throw new Error('reporter');
      },
    });
    c.offer('k', 1);
    await c.idle();
    c.offer('k', 1);
    await c.idle();
    expect(n).toBe(2);
  });

  it('resolves idle only when nothing is in flight', async () => {
    const { c, calls } = coalescer<number>();
    await c.idle();
    c.offer('a', 1);
    c.offer('b', 1);
    let idle = false;
    const waiting = c.idle().then(() => {
      idle = true;
    });
    calls[0]!.resolve();
    await settle();
    expect(idle).toBe(false);
    calls[1]!.resolve();
    await waiting;
    expect(idle).toBe(true);
  });

  it('forget drops a pending value but lets the send in flight finish', async () => {
    const { c, calls } = coalescer<string>();
    c.offer('k', 'a');
    c.offer('k', 'b');
    c.forget('k');
    expect(c.size).toBe(0);
    calls[0]!.resolve();
    await c.idle();
    expect(calls.map((x) => x.value)).toEqual(['a']);
  });

  it('forgets the least recently offered idle keys beyond maxKeys, never one in flight', async () => {
    const { c, calls } = coalescer<number>(2);
    c.offer('a', 1);
    calls[0]!.resolve();
    await c.idle();
    c.offer('b', 1); // in flight
    c.offer('a', 1); // equal to what a delivered: not sent, but a is now the most recent
    c.offer('c', 1); // over the bound: b is older but in flight, so a goes
    expect(c.size).toBe(2);
    c.offer('a', 1); // a was forgotten, so its value is sent again
    expect(calls.map((x) => x.key)).toEqual(['a', 'b', 'c', 'a']);
    expect(c.size).toBe(3); // all three in flight: over the bound until they finish
    for (const call of calls.slice(1)) call.resolve();
    await c.idle();
    expect(c.size).toBe(2);
  });

  it('sends, for any offers, the last value of each key last and never two at once per key', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 3 }), fc.boolean()), { maxLength: 40 }), async (steps) => {
        const { c, calls } = coalescer<number>();
        const sent: [string, number][] = [];
        let settled = 0;
        const flush = async (): Promise<void> => {
          // Bounded: every turn settles one send, and a key has at most one more to follow.
          for (let guard = 0; settled < calls.length && guard < 1000; guard += 1) {
            const call = calls[settled++]!;
            sent.push([call.key, call.value]);
            call.resolve();
            await settle();
          }
        };
        const last = new Map<string, number>();
        for (const [key, value, deliver] of steps) {
          c.offer(key, value);
          last.set(key, value);
          const unsettled = calls.slice(settled).map((x) => x.key);
          expect(new Set(unsettled).size).toBe(unsettled.length);
          if (deliver) await flush();
        }
        await flush();
        await c.idle();
        for (const [key, value] of last) {
          const mine = sent.filter(([k]) => k === key);
          expect(mine.at(-1)?.[1]).toBe(value);
        }
      }),
      { numRuns: 200 },
    );
  });
});
