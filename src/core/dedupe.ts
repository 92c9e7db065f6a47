/**
 * Remembers dedupe keys for a while so a repeated message (same key: a SIP request resent
 * on a new transaction, an XMPP stanza replayed after reconnect) is delivered once. Bounded
 * in time and in entries; the oldest entries go first.
 */
export class DedupeWindow {
  private readonly expiry = new Map<string, number>();

  constructor(private readonly options: { ttlMs: number; maxEntries: number }) {}

  has(key: string, now: number): boolean {
    const until = this.expiry.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.expiry.delete(key);
    return false;
  }

  add(key: string, now: number): void {
    this.expiry.delete(key);
    this.expiry.set(key, now + this.options.ttlMs);
    this.evict(now);
  }

  delete(key: string): void {
    this.expiry.delete(key);
  }

  get size(): number {
    return this.expiry.size;
  }

  private evict(now: number): void {
    // Map iteration is insertion order, and every key is re-inserted on add: oldest first.
    for (const [key, until] of this.expiry) {
      if (this.expiry.size <= this.options.maxEntries && until > now) return;
      this.expiry.delete(key);
    }
  }
}

/**
 * "Have I seen this message before?" as one atomic step, so two copies arriving at once (or at
 * two router processes sharing Redis) are not both taken for new.
 */
export interface DedupeClaims {
  /** True when `key` was not claimed yet and now is; false for a repeat. */
  claim(key: string): Promise<boolean>;
  /** Forgets a claim whose message was refused, so its resend is asked again. */
  release(key: string): Promise<void>;
}

/** One process: the window in memory. */
export class MemoryDedupeClaims implements DedupeClaims {
  private readonly window: DedupeWindow;

  constructor(
    options: { ttlMs: number; maxEntries: number },
    private readonly now: () => number = Date.now,
  ) {
    this.window = new DedupeWindow(options);
  }

  claim(key: string): Promise<boolean> {
    const now = this.now();
    if (this.window.has(key, now)) return Promise.resolve(false);
    this.window.add(key, now);
    return Promise.resolve(true);
  }

  release(key: string): Promise<void> {
    this.window.delete(key);
    return Promise.resolve();
  }
}
