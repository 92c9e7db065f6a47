/**
 * The PIDF data model (RFC 3863 with the RPID person extension, RFC 4480) and the presence
 * mapping of RFC 8048 §6 between it and canonical availability. Pure values: no XML here
 * (src/adapters/sip/pidf.ts reads and writes the documents).
 *
 * XMPP → SIP (RFC 8048 §6.2). A user with several XMPP resources becomes ONE document with one
 * tuple per available resource, highest XMPP priority first (ties by resource name, since which
 * resource changed last is not known here), so SIP clients that read only the first tuple see
 * the best one. The person-level RPID activity and note come from that top resource. When no
 * resource is available the document has one tuple with basic `closed`. Each open tuple carries
 * the XMPP `<show/>` in the `jabber:client` namespace (§6.2 note 7, RECOMMENDED) as well as the
 * RPID activity, so a SIP client gets whichever it understands and a gateway gets `show` exactly.
 *
 * SIP → XMPP (RFC 8048 §6.3). Any open tuple makes the user available; the best open tuple
 * (highest contact priority, then document order) gives `<show/>` if it has one (§6.3 note 3),
 * otherwise the RPID activities do (ACTIVITY_AVAILABILITY). No open tuple: unavailable.
 */
import { createHash } from 'node:crypto';
import type { Availability } from '../core/events.js';

/** XMPP `<show/>` values (RFC 6121 §4.7.2.1), carried in PIDF as `<show xmlns='jabber:client'>`. */
export type Show = 'away' | 'chat' | 'dnd' | 'xa';

export const SHOWS: readonly Show[] = ['away', 'chat', 'dnd', 'xa'];

export interface PidfTuple {
  readonly id: string;
  readonly basic: 'open' | 'closed';
  readonly note?: string;
  readonly contact?: string;
  /** Contact priority, 0..1 with at most three decimals (RFC 3863 §4.1.5). */
  readonly priority?: number;
  readonly timestamp?: string;
  /** XMPP `<show/>` inside `<status/>` (RFC 8048 §6.2 note 7). */
  readonly show?: Show;
}

export interface PidfDocument {
  readonly entity: string;
  readonly tuples: readonly PidfTuple[];
  /** Presence-level and person-level notes. */
  readonly notes: readonly string[];
  /** RPID activity element names, e.g. 'away', 'busy', 'on-the-phone', 'meeting'. */
  readonly activities: readonly string[];
}

/** What one XMPP resource of a user says. */
export interface ResourcePresence {
  readonly resource?: string;
  readonly availability: Availability;
  readonly note?: string;
  /** XMPP priority, -128..127; absent means 0 (RFC 6121 §4.7.2.3). */
  readonly priority?: number;
}

/** The activities of RFC 4480 §3.2 (schema order). */
export type Activity =
  | 'appointment'
  | 'away'
  | 'breakfast'
  | 'busy'
  | 'dinner'
  | 'holiday'
  | 'in-transit'
  | 'looking-for-work'
  | 'meal'
  | 'meeting'
  | 'on-the-phone'
  | 'performance'
  | 'permanent-absence'
  | 'playing'
  | 'presentation'
  | 'shopping'
  | 'sleeping'
  | 'spectator'
  | 'steering'
  | 'travel'
  | 'tv'
  | 'unknown'
  | 'vacation'
  | 'working'
  | 'worship'
  | 'other';

/**
 * How each RFC 4480 §3.2 activity reads in XMPP terms. RFC 8048 leaves richer mappings to the
 * implementation (§6.2 note 7); `dnd` in XMPP "merely means busy", so activities that make a
 * call unwelcome map to it, activities away from the devices to `away`, long absences to `xa`.
 * `undefined`: the activity says nothing about availability (the tuple's basic status decides).
 */
export const ACTIVITY_AVAILABILITY: Readonly<Record<Activity, Show | undefined>> = {
  appointment: 'dnd',
  away: 'away',
  breakfast: 'away',
  busy: 'dnd',
  dinner: 'away',
  holiday: 'xa',
  'in-transit': 'away',
  'looking-for-work': undefined,
  meal: 'away',
  meeting: 'dnd',
  'on-the-phone': 'dnd',
  performance: 'dnd',
  // RFC 4480 §3.2: "all services will report a status of CLOSED"; until they do, the longest absence.
  'permanent-absence': 'xa',
  playing: 'away',
  presentation: 'dnd',
  shopping: 'away',
  sleeping: 'xa',
  spectator: 'away',
  steering: 'dnd',
  travel: 'away',
  tv: 'away',
  unknown: undefined,
  vacation: 'xa',
  working: undefined,
  worship: 'away',
  other: undefined,
};

/** The RPID activity written for each XMPP show (RFC 4480 has no "chat" or "extended away"). */
export const SHOW_ACTIVITY: Readonly<Record<Show, Activity | undefined>> = {
  away: 'away',
  chat: undefined,
  dnd: 'busy',
  xa: 'away',
};

/** When several activities apply at once, the one that discourages contact most wins. */
const SHOW_WEIGHT: Readonly<Record<Show, number>> = { chat: 0, away: 1, xa: 2, dnd: 3 };

/** What a PIDF document says in XMPP terms. */
export interface PidfPresence {
  readonly availability: Availability;
  readonly note?: string;
  /** XMPP priority of the best open tuple, when it gave a contact priority. */
  readonly priority?: number;
}

/** PIDF → one availability, note and XMPP priority (RFC 8048 §6.3 Table 2, RFC 4480 §3.2). */
export function presenceFromPidf(doc: PidfDocument): PidfPresence {
  // RFC 8048 §6.3 note 1: open → no type, closed → unavailable; one open tuple is enough.
  const open = doc.tuples
    .map((tuple, index) => ({ tuple, index }))
    .filter(({ tuple }) => tuple.basic === 'open')
    .sort((a, b) => (b.tuple.priority ?? 0) - (a.tuple.priority ?? 0) || a.index - b.index)
    .map(({ tuple }) => tuple);
  const note = [...doc.notes, ...open.map((t) => t.note), ...doc.tuples.map((t) => t.note)].find((n) => n !== undefined && n !== '');
  const best = open[0];
  const availability: Availability = best === undefined ? 'unavailable' : (best.show ?? showOfActivities(doc.activities) ?? 'available');
  // RFC 8048 §6.3 note 2 → §6.2 note 6: PIDF 0..1 ↔ XMPP 0..127.
  const priority = best?.priority === undefined ? undefined : xmppPriority(best.priority);
  return {
    availability,
    ...(note === undefined ? {} : { note }),
    ...(priority === undefined ? {} : { priority }),
  };
}

/** XMPP resources of one user → one PIDF document (RFC 8048 §6.2 Table 1). */
export function pidfFromPresence(entity: string, resources: readonly ResourcePresence[]): PidfDocument {
  const ordered = [...resources].sort(
    (a, b) => (b.priority ?? 0) - (a.priority ?? 0) || compareNames(a.resource ?? '', b.resource ?? ''),
  );
  const available = ordered.filter((r) => r.availability !== 'unavailable');
  const top = available[0];
  if (top === undefined) {
    // RFC 8048 §6.2 note 4/5: unavailable → basic closed.
    const first = ordered[0];
    const note = ordered.find((r) => r.note !== undefined && r.note !== '')?.note;
    const tuple: PidfTuple = { id: tupleId(first?.resource), basic: 'closed', ...(note === undefined ? {} : { note }) };
    return { entity, tuples: [tuple], notes: note === undefined ? [] : [note], activities: [] };
  }
  const tuples = available.map((r): PidfTuple => {
    const show = showOf(r.availability);
    const priority = r.priority === undefined ? undefined : pidfPriority(r.priority);
    return {
      id: tupleId(r.resource),
      basic: 'open',
      // The contact priority needs a contact: the presentity's own address reaches every resource.
      ...(priority === undefined ? {} : { contact: entity, priority }),
      ...(r.note === undefined || r.note === '' ? {} : { note: r.note }),
      ...(show === undefined ? {} : { show }),
    };
  });
  const topShow = showOf(top.availability);
  const activity = topShow === undefined ? undefined : SHOW_ACTIVITY[topShow];
  return {
    entity,
    tuples,
    notes: top.note === undefined || top.note === '' ? [] : [top.note],
    activities: activity === undefined ? [] : [activity],
  };
}

/**
 * XMPP priority → PIDF contact priority. RFC 8048 §6.2 note 6: negative values MUST NOT be
 * mapped; 0 → 0, 127 → 1, in between unique (steps of 1/127 survive rounding to 0.001).
 */
export function pidfPriority(xmpp: number): number | undefined {
  if (!Number.isFinite(xmpp) || xmpp < 0) return undefined;
  return Math.round((Math.min(xmpp, 127) * 1000) / 127) / 1000;
}

/** PIDF contact priority → XMPP priority, the inverse of pidfPriority. */
export function xmppPriority(pidf: number): number | undefined {
  if (!Number.isFinite(pidf) || pidf < 0 || pidf > 1) return undefined;
  return Math.round(pidf * 127);
}

/**
 * A tuple id for an XMPP resource: a valid xs:ID (an NCName), the same for the same resource.
 * RFC 8048 §6.2 note 2 RECOMMENDS "ID-" + resourcepart; that is used when the resourcepart is
 * plain ASCII name characters. Other resources get a different prefix, a readable part and a
 * hash of the full resource, so the two forms never collide with each other.
 */
export function tupleId(resource: string | undefined): string {
  if (resource === undefined) return 'ID';
  if (/^[A-Za-z0-9._-]{1,64}$/.test(resource)) return `ID-${resource}`;
  const readable = resource.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 32);
  const hash = createHash('sha256').update(resource, 'utf8').digest('hex').slice(0, 12);
  return `IH-${readable}.${hash}`;
}

function showOf(availability: Availability): Show | undefined {
  return availability === 'available' || availability === 'unavailable' ? undefined : availability;
}

function showOfActivities(activities: readonly string[]): Show | undefined {
  let show: Show | undefined;
  for (const name of activities) {
    const candidate = isActivity(name) ? ACTIVITY_AVAILABILITY[name] : undefined;
    if (candidate !== undefined && (show === undefined || SHOW_WEIGHT[candidate] > SHOW_WEIGHT[show])) show = candidate;
  }
  return show;
}

export function isActivity(name: string): name is Activity {
  return Object.hasOwn(ACTIVITY_AVAILABILITY, name);
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
