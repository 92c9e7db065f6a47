import type { Scheduler, TimerHandle } from '../../src/adapters/sip/transaction/timers.js';

/**
 * A clock that moves only when told: transactions run on it in unit tests so their timers can
 * be walked through in virtual milliseconds, in due order.
 */
export class ManualScheduler implements Scheduler {
  now = 0;
  private seq = 0;
  private readonly pending: { at: number; seq: number; fn: () => void; cancelled: boolean }[] = [];

  after(ms: number, fn: () => void): TimerHandle {
    const entry = { at: this.now + ms, seq: this.seq++, fn, cancelled: false };
    this.pending.push(entry);
    return { cancel: () => (entry.cancelled = true) };
  }

  /** Timers armed and not yet fired or cancelled. */
  get armed(): number {
    return this.pending.filter((t) => !t.cancelled).length;
  }

  /** Moves the clock forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const until = this.now + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      const next = this.pending
        .filter((t) => !t.cancelled && t.at <= until)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      next.cancelled = true;
      this.now = next.at;
      next.fn();
    }
    this.now = until;
  }
}
