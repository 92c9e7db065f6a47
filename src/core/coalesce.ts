/**
 * Per-key coalescing of state updates (issue 4 item 6: a burst of presence changes must not
 * become a burst of NOTIFYs). Only the latest value of a key matters, so while one send for a
 * key is in flight, newer values replace each other and only the newest is sent after it. The
 * in-flight send is the coalescing window: no timers. A value equal to the last one delivered
 * for the key is not sent again.
 *
 * Bounded: beyond `maxKeys`, the least recently offered idle keys are forgotten (a forgotten
 * key's next value is sent even if it equals the last one). Keys with a send in flight are
 * never dropped, so the bound holds again as soon as enough sends finish.
 */

export interface CoalescerOptions<V> {
  readonly send: (key: string, value: V) => Promise<void>;
  readonly equals: (a: V, b: V) => boolean;
  readonly maxKeys: number;
  /** A failed send; the key is free again and its next value is sent even if equal. */
  readonly onError?: (key: string, err: unknown) => void;
}

interface KeyState<V> {
  sending: boolean;
  /** Newest value offered while a send was in flight. */
  pending?: { readonly value: V };
  /** Last value delivered without error. */
  delivered?: { readonly value: V };
}

export class Coalescer<V> {
  /** In least-recently-offered-first order (Map keeps insertion order; offer re-inserts). */
  private readonly keys = new Map<string, KeyState<V>>();
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: CoalescerOptions<V>) {}

  get size(): number {
    return this.keys.size;
  }

  /** Latest value wins: at most one send in flight per key. */
  offer(key: string, value: V): void {
    const state = this.keys.get(key) ?? { sending: false };
    this.keys.delete(key);
    this.keys.set(key, state);
    if (state.sending) {
      state.pending = { value };
      return;
    }
    if (state.delivered !== undefined && this.opts.equals(state.delivered.value, value)) return;
    void this.run(key, state, value);
    this.evict();
  }

  /**
   * Drops the key: a pending value is not sent, an in-flight send completes. A value offered
   * for the key afterwards starts afresh, even while that send is still in flight.
   */
  forget(key: string): void {
    this.keys.delete(key);
  }

  /** Resolves when nothing is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async run(key: string, state: KeyState<V>, first: V): Promise<void> {
    state.sending = true;
    this.inFlight += 1;
    try {
      // Each turn sends one value; there is a next turn only for a value offered during this send.
      let next: { readonly value: V } | undefined = { value: first };
      while (next !== undefined) {
        try {
          await this.opts.send(key, next.value);
          state.delivered = next;
        } catch (err) {
          state.delivered = undefined;
          this.reportError(key, err);
        }
        // A forgotten key's pending value is dropped with it.
        if (this.keys.get(key) !== state) break;
        next = state.pending;
        state.pending = undefined;
        if (next !== undefined && state.delivered !== undefined && this.opts.equals(state.delivered.value, next.value)) next = undefined;
      }
    } catch (err) {
      // Only `equals` can get here; the key must not stay marked as sending.
      this.reportError(key, err);
    } finally {
      state.sending = false;
      state.pending = undefined;
      this.inFlight -= 1;
      this.evict();
      if (this.inFlight === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    }
  }

  private reportError(key: string, err: unknown): void {
    try {
      this.opts.onError?.(key, err);
    } catch {
      // A failing error reporter must not wedge the key.
    }
  }

  private evict(): void {
    if (this.keys.size <= this.opts.maxKeys) return;
    for (const [key, state] of this.keys) {
      if (this.keys.size <= this.opts.maxKeys) return;
      if (!state.sending) this.keys.delete(key);
    }
  }
}
