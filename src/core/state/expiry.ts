/**
 * Ends subscriptions whose time is up with one timer for all of them: it sleeps until the
 * store's earliest expiry, takes what is due in batches and hands each record on. Thousands of
 * subscriptions cost one timer, not thousands (issue 4).
 */
import type { Logger } from '../../telemetry/logger.js';
import type { SubscriptionRecord, SubscriptionStore } from './subscriptions.js';

export interface ExpirySchedulerOptions {
  store: SubscriptionStore;
  /** Called once per expired record, which the store has already removed. */
  onExpired: (record: SubscriptionRecord) => Promise<void> | void;
  /** Records taken per wake-up; a full batch wakes again at once, after the event loop turns. */
  batch?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /**
   * Longest sleep: a store shared by several processes gets records this process was not told
   * about (no poke), so it is polled at least this often.
   */
  maxSleepMs?: number;
  logger?: Logger;
}

/** Sleep after a store failure, so a store that is down is not polled in a tight loop. */
const FAILURE_SLEEP_MS = 1000;

export class ExpiryScheduler {
  private readonly batch: number;
  private readonly maxSleepMs: number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private running = false;
  private timer: unknown;
  /** Bumped by every arm(), wake-up and stop(), so an older arm() still awaiting the store gives way. */
  private generation = 0;
  /** The batch in progress; it sets the next timer itself when done. */
  private draining: Promise<void> | undefined;
  private pokedWhileDraining = false;

  constructor(private readonly options: ExpirySchedulerOptions) {
    this.batch = Math.max(1, options.batch ?? 500);
    // At least 1 ms: an empty store must not be polled in a tight loop.
    this.maxSleepMs = Math.max(1, options.maxSleepMs ?? 60_000);
    this.now = options.now ?? Date.now;
    this.setTimer =
      options.setTimer ??
      ((fn, ms) => {
        // The bridge's own stop() ends the scheduler; a pending expiry must not keep a
        // process alive that has nothing else to do.
        const t = setTimeout(fn, ms);
        t.unref();
        return t;
      });
    this.clearTimer = options.clearTimer ?? ((handle) => clearTimeout(handle as NodeJS.Timeout));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.arm();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.generation += 1;
    this.cancelTimer();
    await this.draining;
  }

  /** Call after a put() that may be earlier than the current wake-up. */
  poke(): void {
    if (!this.running) return;
    // A batch in progress re-arms when it ends; it must look at the store again after that.
    if (this.draining) this.pokedWhileDraining = true;
    else void this.arm();
  }

  /** Sets the one timer for the store's earliest expiry, capped at maxSleepMs. */
  private async arm(): Promise<void> {
    const generation = ++this.generation;
    let delay: number;
    try {
      const next = await this.options.store.nextExpiry();
      delay = next === undefined ? this.maxSleepMs : Math.min(this.maxSleepMs, Math.max(0, next - this.now()));
    } catch (err) {
      this.options.logger?.error({ err }, 'subscription store failed to give its next expiry');
      delay = Math.min(this.maxSleepMs, FAILURE_SLEEP_MS);
    }
    if (this.running && generation === this.generation) this.schedule(delay);
  }

  private schedule(delay: number): void {
    this.cancelTimer();
    this.timer = this.setTimer(() => this.wake(), delay);
  }

  private wake(): void {
    this.timer = undefined;
    // An arm() still waiting for the store would set a second timer beside this batch's own.
    this.generation += 1;
    this.pokedWhileDraining = false;
    const run: Promise<void> = this.drain().finally(() => {
      if (this.draining !== run) return;
      this.draining = undefined;
      if (this.pokedWhileDraining && this.running) void this.arm();
    });
    this.draining = run;
  }

  private cancelTimer(): void {
    if (this.timer === undefined) return;
    this.clearTimer(this.timer);
    this.timer = undefined;
  }

  /** One batch per wake-up, so a backlog of any size yields to the event loop between batches. */
  private async drain(): Promise<void> {
    let taken: SubscriptionRecord[];
    try {
      taken = await this.options.store.takeExpired(this.now(), this.batch);
    } catch (err) {
      this.options.logger?.error({ err }, 'subscription store failed to hand over expired records');
      if (this.running) this.schedule(Math.min(this.maxSleepMs, FAILURE_SLEEP_MS));
      return;
    }
    for (const record of taken) {
      try {
        await this.options.onExpired(record);
      } catch (err) {
        this.options.logger?.error({ err, subscription: record.id }, 'expired subscription handler failed');
      }
    }
    if (!this.running) return;
    if (taken.length === this.batch) this.schedule(0);
    else await this.arm();
  }
}
