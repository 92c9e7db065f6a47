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
