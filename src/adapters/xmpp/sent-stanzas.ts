/**
 * Stanzas the bridge sent, by stanza id, so an error reply (`<message type='error' id=…>`) can
 * be turned into a failure of the original event. Bounded in count and age: a reply that comes
 * later than `ttlMs` finds nothing and is only logged.
 */
import type { CanonicalEvent } from '../../core/events.js';

export class SentStanzas {
  private readonly byId = new Map<string, { event: CanonicalEvent; expires: number }>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly ttlMs = 10 * 60_000,
  ) {}

  get size(): number {
    return this.byId.size;
  }

  remember(id: string, event: CanonicalEvent, now: number): void {
    this.evict(now);
    this.byId.delete(id);
    while (this.byId.size >= this.maxEntries) {
      const oldest = this.byId.keys().next();
      if (oldest.done === true) break;
      this.byId.delete(oldest.value);
    }
    this.byId.set(id, { event, expires: now + this.ttlMs });
  }

  forget(id: string): void {
    this.byId.delete(id);
  }

  /** The event sent with `id`, removed from the log (one error reply per stanza). */
  take(id: string, now: number): CanonicalEvent | undefined {
    this.evict(now);
    const entry = this.byId.get(id);
    this.byId.delete(id);
    return entry?.event;
  }

  /** Insertion order is expiry order (same ttl for all), so expired entries are at the head. */
  private evict(now: number): void {
    for (const [id, entry] of this.byId) {
      if (entry.expires > now) return;
      this.byId.delete(id);
    }
  }
}
