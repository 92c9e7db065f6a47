/**
 * Which component JIDs (SIP presentities) have told which XMPP users they are available, so
 * stop() can take it back: a server does not send unavailable on a component's behalf when it
 * goes away (Prosody 0.12 does not), and without this a SIP user stays "online" forever in
 * every roster that saw it. Bounded: past `maxEntries` the oldest announcement is forgotten.
 */
import { formatAddress, type Address, type PresenceEvent } from '../../core/events.js';

export interface Announcement {
  readonly from: Address;
  readonly to: Address;
}

export class AnnouncedPresence {
  /** Keyed by full from + full to; insertion order is age. */
  private readonly byPair = new Map<string, Announcement>();

  constructor(private readonly maxEntries = 10_000) {}

  get size(): number {
    return this.byPair.size;
  }

  /** Records an outbound presence: available kinds add the pair, unavailable removes it. */
  note(event: PresenceEvent): void {
    const key = `${formatAddress(event.from)} ${formatAddress(event.to)}`;
    this.byPair.delete(key);
    if (event.availability === 'unavailable') return;
    while (this.byPair.size >= this.maxEntries) {
      const oldest = this.byPair.keys().next();
      if (oldest.done === true) break;
      this.byPair.delete(oldest.value);
    }
    this.byPair.set(key, { from: event.from, to: event.to });
  }

  /**
   * Forgets every announcement from `presentity` to `watcher` (bare addresses, any resource):
   * once the subscription is gone the watcher's server has already marked it unavailable
   * (RFC 6121 §3.2.3, §3.3.3).
   */
  forget(presentity: Address, watcher: Address): void {
    const from = bare(presentity);
    const to = bare(watcher);
    for (const [key, a] of this.byPair) {
      if (bare(a.from) === from && bare(a.to) === to) this.byPair.delete(key);
    }
  }

  /** Every announcement still standing, oldest first, and forgets them. */
  takeAll(): Announcement[] {
    const all = [...this.byPair.values()];
    this.byPair.clear();
    return all;
  }
}

function bare(a: Address): string {
  return a.user === '' ? a.domain : `${a.user}@${a.domain}`;
}
