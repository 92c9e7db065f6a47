/**
 * In-memory subscription store: the default for one process. Records are held as JSON text, so
 * nothing a caller does to its objects reaches the store and nothing depends on sharing
 * objects that a Redis backend could not share. Expiry order comes from a binary min-heap with
 * lazy deletion: a replace or delete leaves its old heap entry behind, recognised as stale by
 * its version and skipped, and the heap is rebuilt once stale entries outnumber live ones
 * twice over, so refreshing one subscription forever does not grow it.
 */
import { BridgeError } from '../errors.js';
import { serialiseRecord, type SubscriptionRecord, type SubscriptionRole, type SubscriptionStore } from './subscriptions.js';

export interface MemorySubscriptionStoreOptions {
  /** Records held, at most; a put of a new id past it is refused. */
  maxRecords: number;
}

interface Held {
  readonly role: SubscriptionRole;
  readonly watcher: string;
  readonly presentity: string;
  readonly partner: string | undefined;
  readonly expiresAt: number;
  /** Which heap entry is this record's own; older entries for the same id are stale. */
  readonly version: number;
  readonly json: string;
}

interface HeapEntry {
  readonly at: number;
  readonly version: number;
  readonly id: string;
}


export class MemorySubscriptionStore implements SubscriptionStore {
  private readonly records = new Map<string, Held>();
  private readonly byPresentityIndex = new Map<string, Set<string>>();
  private readonly byWatcherIndex = new Map<string, Set<string>>();
  private readonly byPartnerIndex = new Map<string, Set<string>>();
  private heap: HeapEntry[] = [];
  private nextVersion = 0;
  private closed = false;

  constructor(private readonly options: MemorySubscriptionStoreOptions) {}

  async put<D>(record: SubscriptionRecord<D>): Promise<void> {
    this.ensureOpen();
    const json = serialiseRecord(record);
    const old = this.records.get(record.id);
    if (!old && this.records.size >= this.options.maxRecords) {
      throw new BridgeError('STATE_FULL', `the subscription store holds ${this.records.size} records, its limit`, {
        condition: 'resource-constraint',
        // RFC 3261 §21.5.4: an overloaded server answers 503. Not retryable: the bound is
        // capacity, which waiting a moment does not free.
        sipStatus: 503,
        retryable: false,
      });
    }
    if (old) {
      unindex(this.byPresentityIndex, old.presentity, record.id);
      unindex(this.byWatcherIndex, old.watcher, record.id);
      if (old.partner !== undefined) unindex(this.byPartnerIndex, old.partner, record.id);
    }
    // An unchanged expiry keeps the heap entry it has: refreshing state alone costs no entry.
    const keepEntry = old !== undefined && old.expiresAt === record.expiresAt;
    const version = keepEntry ? old.version : this.nextVersion++;
    this.records.set(record.id, {
      role: record.role,
      watcher: record.watcher,
      presentity: record.presentity,
      partner: record.partner,
      expiresAt: record.expiresAt,
      version,
      json,
    });
    index(this.byPresentityIndex, record.presentity, record.id);
    index(this.byWatcherIndex, record.watcher, record.id);
    if (record.partner !== undefined) index(this.byPartnerIndex, record.partner, record.id);
    if (!keepEntry) {
      this.heapPush({ at: record.expiresAt, version, id: record.id });
      this.compactIfStale();
    }
  }

  async get<D>(id: string): Promise<SubscriptionRecord<D> | undefined> {
    this.ensureOpen();
    const held = this.records.get(id);
    return held ? revive<D>(held) : undefined;
  }

  async delete(id: string): Promise<boolean> {
    this.ensureOpen();
    return this.remove(id) !== undefined;
  }

  async byPresentity<D>(presentity: string, role?: SubscriptionRole): Promise<SubscriptionRecord<D>[]> {
    this.ensureOpen();
    return this.collect<D>(this.byPresentityIndex.get(presentity), role);
  }

  async byWatcher<D>(watcher: string, role?: SubscriptionRole): Promise<SubscriptionRecord<D>[]> {
    this.ensureOpen();
    return this.collect<D>(this.byWatcherIndex.get(watcher), role);
  }

  async list<D>(role: SubscriptionRole, limit: number): Promise<SubscriptionRecord<D>[]> {
    this.ensureOpen();
    const out: SubscriptionRecord<D>[] = [];
    for (const held of this.records.values()) {
      if (out.length >= limit) break;
      if (held.role === role) out.push(revive<D>(held));
    }
    return out;
  }

  async takeExpired<D>(now: number, limit: number): Promise<SubscriptionRecord<D>[]> {
    this.ensureOpen();
    const out: SubscriptionRecord<D>[] = [];
    while (out.length < limit) {
      const top = this.liveTop();
      if (!top || top.at > now) break;
      const held = this.remove(top.id);
      if (held) out.push(revive<D>(held));
    }
    return out;
  }

  async nextExpiry(): Promise<number | undefined> {
    this.ensureOpen();
    return this.liveTop()?.at;
  }

  async size(): Promise<number> {
    this.ensureOpen();
    return this.records.size;
  }

  async countByPartner(partner: string): Promise<number> {
    this.ensureOpen();
    return this.byPartnerIndex.get(partner)?.size ?? 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.records.clear();
    this.byPresentityIndex.clear();
    this.byWatcherIndex.clear();
    this.byPartnerIndex.clear();
    this.heap = [];
  }

  /** Heap entries held, live and stale: for tests of the bound. */
  get heapSize(): number {
    return this.heap.length;
  }

  private ensureOpen(): void {
    if (this.closed) {
      throw new BridgeError('STATE_CLOSED', 'the subscription store is closed', { condition: 'service-unavailable', retryable: true });
    }
  }

  private collect<D>(ids: Set<string> | undefined, role: SubscriptionRole | undefined): SubscriptionRecord<D>[] {
    const out: SubscriptionRecord<D>[] = [];
    for (const id of ids ?? []) {
      const held = this.records.get(id);
      if (held && (role === undefined || held.role === role)) out.push(revive<D>(held));
    }
    return out;
  }

  /** Removes a record and its index entries; its heap entry turns stale. */
  private remove(id: string): Held | undefined {
    const held = this.records.get(id);
    if (!held) return undefined;
    this.records.delete(id);
    unindex(this.byPresentityIndex, held.presentity, id);
    unindex(this.byWatcherIndex, held.watcher, id);
    if (held.partner !== undefined) unindex(this.byPartnerIndex, held.partner, id);
    this.compactIfStale();
    return held;
  }

  /** The earliest heap entry that is some record's own, discarding stale ones above it. */
  private liveTop(): HeapEntry | undefined {
    for (;;) {
      const top = this.heap[0];
      if (!top || this.records.get(top.id)?.version === top.version) return top;
      this.heapPop();
    }
  }

  /** Every live record has exactly one entry, so the rest are stale. */
  private compactIfStale(): void {
    const stale = this.heap.length - this.records.size;
    if (stale <= 2 * this.records.size) return;
    this.heap = [...this.records].map(([id, held]) => ({ at: held.expiresAt, version: held.version, id }));
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private heapPush(entry: HeapEntry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private heapPop(): void {
    const last = this.heap.pop();
    if (last === undefined || this.heap.length === 0) return;
    this.heap[0] = last;
    this.siftDown(0);
  }

  private siftDown(start: number): void {
    const heap = this.heap;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < heap.length && before(heap[left]!, heap[least]!)) least = left;
      if (right < heap.length && before(heap[right]!, heap[least]!)) least = right;
      if (least === i) return;
      [heap[i], heap[least]] = [heap[least]!, heap[i]!];
      i = least;
    }
  }
}

/** Earlier expiry first; among equal ones, the older put. */
function before(a: HeapEntry, b: HeapEntry): boolean {
  return a.at < b.at || (a.at === b.at && a.version < b.version);
}

function revive<D>(held: Held): SubscriptionRecord<D> {
  return JSON.parse(held.json) as SubscriptionRecord<D>;
}

function index(map: Map<string, Set<string>>, key: string, id: string): void {
  let ids = map.get(key);
  if (!ids) {
    ids = new Set();
    map.set(key, ids);
  }
  ids.add(id);
}

function unindex(map: Map<string, Set<string>>, key: string, id: string): void {
  const ids = map.get(key);
  if (!ids) return;
  ids.delete(id);
  if (ids.size === 0) map.delete(key);
}
