/**
 * The telephone numbers the operator owns (issue 6 item 6, toll-fraud guard): an E.164 target
 * resolves only inside them, so no partner can reach a number the bridge does not serve, and
 * there is no route from a partner to the PSTN. Configured as strings:
 *
 * ```yaml
 * numberRanges:
 *   - "+1555123"                     # a prefix: every number starting with it
 *   - "+15551230000-+15551239999"    # a range: numbers of that length from start to end
 * ```
 *
 * Entries may not overlap: two entries claiming the same number are a mistake in the config
 * (usually a typo widening a range), so it is refused with both entries named.
 */
import { z } from 'zod';

/** A prefix owns every number that starts with it, itself included. */
interface Prefix {
  readonly kind: 'prefix';
  readonly entry: string;
  readonly digits: string;
}

/** A range owns the numbers with as many digits as its ends, from `start` to `end`. */
interface Range {
  readonly kind: 'range';
  readonly entry: string;
  readonly start: string;
  readonly end: string;
}

type NumberRange = Prefix | Range;

// ITU-T E.164 §6: a country code never starts with 0, and a number has at most 15 digits.
const PREFIX = /^\+([1-9][0-9]{0,14})$/;
const RANGE = /^\+([1-9][0-9]{1,14})\s*-\s*\+([1-9][0-9]{1,14})$/;
const NUMBER = /^\+([1-9][0-9]{1,14})$/;

/** The config key: entries checked at boot exactly as the constructor checks them. */
export const numberRangesSchema = z.array(z.string()).superRefine((entries, ctx) => {
  try {
    new NumberRanges(entries);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

export class NumberRanges {
  private readonly prefixes = new Set<string>();
  /** Per number length, sorted by start: disjoint, so at most one can hold a number. */
  private readonly ranges = new Map<number, Range[]>();

  /** @throws Error naming the entry that is not a prefix or range, or the two that overlap. */
  constructor(entries: readonly string[]) {
    const parsed = entries.map((entry, index) => parseEntry(entry, index));
    for (let i = 0; i < parsed.length; i++) {
      for (let j = i + 1; j < parsed.length; j++) {
        const a = parsed[i] as NumberRange;
        const b = parsed[j] as NumberRange;
        if (overlap(a, b)) throw new Error(`numberRanges: "${a.entry}" and "${b.entry}" overlap: a number belongs to one entry only`);
      }
    }
    for (const r of parsed) {
      if (r.kind === 'prefix') {
        this.prefixes.add(r.digits);
      } else {
        const list = this.ranges.get(r.start.length) ?? [];
        list.push(r);
        this.ranges.set(r.start.length, list);
      }
    }
    for (const list of this.ranges.values()) list.sort((x, y) => compare(x.start, y.start));
  }

  /** Whether `e164` (`+` and digits, no separators) is the operator's; anything else is not. */
  owns(e164: string): boolean {
    const digits = NUMBER.exec(e164)?.[1];
    if (digits === undefined) return false;
    for (let length = 1; length <= digits.length; length++) {
      if (this.prefixes.has(digits.slice(0, length))) return true;
    }
    return this.inRange(digits);
  }

  private inRange(digits: string): boolean {
    const list = this.ranges.get(digits.length);
    if (list === undefined) return false;
    // The last range starting at or before the number is the only candidate.
    let lo = 0;
    let hi = list.length - 1;
    let candidate: Range | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = list[mid] as Range;
      if (compare(r.start, digits) <= 0) {
        candidate = r;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return candidate !== undefined && compare(digits, candidate.end) <= 0;
  }
}

function parseEntry(raw: string, index: number): NumberRange {
  const entry = raw.trim();
  const prefix = PREFIX.exec(entry);
  if (prefix) return { kind: 'prefix', entry, digits: prefix[1] as string };
  const range = RANGE.exec(entry);
  if (range) {
    const start = range[1] as string;
    const end = range[2] as string;
    if (start.length !== end.length) {
      throw new Error(`numberRanges[${index}]: "${entry}" has ends of different lengths; a range spans numbers of one length (use prefixes for the rest)`);
    }
    if (compare(start, end) > 0) throw new Error(`numberRanges[${index}]: "${entry}" starts after it ends`);
    return { kind: 'range', entry, start, end };
  }
  throw new Error(`numberRanges[${index}]: "${raw}" is neither a prefix such as +1555123 nor a range such as +15551230000-+15551239999`);
}

/** Equal-length digit strings compare as numbers; digit strings of one length sort lexically. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function overlap(a: NumberRange, b: NumberRange): boolean {
  if (a.kind === 'prefix' && b.kind === 'prefix') return a.digits.startsWith(b.digits) || b.digits.startsWith(a.digits);
  if (a.kind === 'range' && b.kind === 'range') {
    return a.start.length === b.start.length && compare(a.start, b.end) <= 0 && compare(b.start, a.end) <= 0;
  }
  const p = (a.kind === 'prefix' ? a : b) as Prefix;
  const r = (a.kind === 'range' ? a : b) as Range;
  const length = r.start.length;
  if (p.digits.length > length) return false;
  // The numbers of the range's length under the prefix run from prefix·00… to prefix·99….
  const low = p.digits.padEnd(length, '0');
  const high = p.digits.padEnd(length, '9');
  return compare(low, r.end) <= 0 && compare(r.start, high) <= 0;
}
