/**
 * Timer values and the clock the transaction state machines run on. The scheduler is injected
 * so unit tests can drive a transaction through its timers without waiting.
 */

/** RFC 3261 §17.1.2.2 / Appendix A base values, from `config.timers`. */
export interface TimerValues {
  readonly t1Ms: number;
  readonly t2Ms: number;
  readonly t4Ms: number;
}

export type TimerHandle = { readonly cancel: () => void };

export interface Scheduler {
  /** Runs `fn` once after `ms` milliseconds unless cancelled first. */
  after(ms: number, fn: () => void): TimerHandle;
}

/** The process clock: `setTimeout`, unref'd so a pending Timer J never holds the process open. */
export const realScheduler: Scheduler = {
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
