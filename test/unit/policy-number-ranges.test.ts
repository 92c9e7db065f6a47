import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NumberRanges, numberRangesSchema } from '../../src/core/policy/number-ranges.js';

describe('NumberRanges.owns', () => {
  const ranges = new NumberRanges(['+1555123', '+15559870000-+15559870999', ' +442079460000 - +442079460099 ']);

  it.each([
    ['+15551234567', true, 'under the prefix'],
    ['+1555123', true, 'the prefix itself'],
    ['+155512', false, 'shorter than the prefix'],
    ['+15551240000', false, 'next to the prefix'],
    ['+15559870000', true, 'the range start'],
    ['+15559870999', true, 'the range end'],
    ['+15559870500', true, 'inside the range'],
    ['+15559871000', false, 'one past the range end'],
    ['+15559869999', false, 'one before the range start'],
    ['+155598705001', false, 'inside the range by value prefix but one digit longer'],
    ['+1555987050', false, 'one digit shorter'],
    ['+442079460042', true, 'a range written with spaces'],
    ['+442079460100', false, 'past the second range'],
    ['15551234567', false, 'no +'],
    ['+1 555 123 4567', false, 'separators (normalise first)'],
    ['tel:+15551234567', false, 'a URI'],
    ['', false, 'empty'],
    ['+0555123', false, 'a leading 0'],
    ['+15551234567890123', false, 'more than 15 digits'],
  ])('%s → %s (%s)', (number, owned) => {
    expect(ranges.owns(number)).toBe(owned);
  });

  it('owns nothing when no ranges are configured', () => {
    expect(new NumberRanges([]).owns('+15551234567')).toBe(false);
  });
});

describe('NumberRanges config errors', () => {
  it.each([
    [['+'], /numberRanges\[0\]: "\+" is neither a prefix/],
    [['1555'], /is neither a prefix/],
    [['+1555x'], /is neither a prefix/],
    [['+0555'], /is neither a prefix/],
    [['+1234567890123456'], /is neither a prefix/],
    [['+1555', '+1555-'], /numberRanges\[1\]/],
    [['+15551230000-+1555123999'], /numberRanges\[0\]: .* ends of different lengths/],
    [['+15551239999-+15551230000'], /starts after it ends/],
    [['+1555--+1556'], /is neither a prefix/],
    [['+1555', '+15551'], /"\+1555" and "\+15551" overlap/],
    [['+1555', '+1555'], /overlap/],
    [['+15551230000-+15551239999', '+15551235000-+15551235999'], /overlap/],
    [['+15551230000-+15551239999', '+15551239999-+15551240000'], /overlap/],
    [['+15551230000-+15551239999', '+155512399'], /overlap/],
    [['+1555', '+15550000000-+15550000001'], /overlap/],
  ])('refuses %j', (entries, message) => {
    expect(() => new NumberRanges(entries)).toThrow(message);
  });

  it('names the overlap in the config schema too', () => {
    const result = numberRangesSchema.safeParse(['+1555', '+15551']);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(/"\+1555" and "\+15551" overlap/);
    expect(numberRangesSchema.parse(['+1555', '+1556'])).toEqual(['+1555', '+1556']);
  });

  it.each([
    [['+1555', '+1556']],
    [['+15551230000-+15551239999', '+15551240000-+15551249999']],
    [['+15551230000-+15551239999', '+155512300000-+155512399999']],
    [['+15551230000-+15551239999', '+155512400']],
    [['+155512345678901', '+15551234567890-+15551234567899']],
  ])('accepts %j', (entries) => {
    expect(() => new NumberRanges(entries)).not.toThrow();
  });
});

/**
 * A small universe where every number can be listed: +1 followed by 1 to 3 digits. Entries
 * are prefixes and ranges inside it; the naive model asks each entry about each number.
 */
describe('NumberRanges against a naive model', () => {
  const universe: string[] = [];
  for (let n = 0; n < 10; n++) universe.push(`+1${n}`);
  for (let n = 0; n < 100; n++) universe.push(`+1${String(n).padStart(2, '0')}`);
  for (let n = 0; n < 1000; n++) universe.push(`+1${String(n).padStart(3, '0')}`);

  const tail = (length: number) => fc.integer({ min: 0, max: 10 ** length - 1 }).map((n) => (length === 0 ? '' : String(n).padStart(length, '0')));
  const prefix = fc.integer({ min: 0, max: 3 }).chain(tail).map((t) => `+1${t}`);
  const range = fc
    .integer({ min: 1, max: 3 })
    .chain((length) => fc.tuple(tail(length), tail(length)))
    .map(([a, b]) => (a <= b ? `+1${a}-+1${b}` : `+1${b}-+1${a}`));
  const entries = fc.array(fc.oneof(prefix, range), { maxLength: 5 });

  /** Does `entry` own `number`, read the slow way? */
  const holds = (entry: string, number: string): boolean => {
    const [start, end] = entry.split('-');
    if (end === undefined) return number.startsWith(start as string);
    return number.length === end.length && BigInt(number) >= BigInt(start as string) && BigInt(number) <= BigInt(end);
  };

  it('accepts exactly the entry lists where no number of the universe belongs to two entries', () => {
    fc.assert(
      fc.property(entries, (list) => {
        const shared = universe.some((n) => list.filter((e) => holds(e, n)).length > 1);
        if (shared) expect(() => new NumberRanges(list)).toThrow(/overlap/);
        else expect(() => new NumberRanges(list)).not.toThrow();
      }),
      { numRuns: 300, seed: 6 },
    );
  });

  it('owns a number exactly when some entry holds it', () => {
    fc.assert(
      fc.property(entries, (list) => {
        let ranges: NumberRanges;
        try {
          ranges = new NumberRanges(list);
        } catch {
          return;
        }
        for (const n of universe) expect(ranges.owns(n)).toBe(list.some((e) => holds(e, n)));
      }),
      { numRuns: 300, seed: 6 },
    );
  });

  it('never throws on any string and owns nothing that is not E.164', () => {
    const ranges = new NumberRanges(['+1']);
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        const owned = ranges.owns(s);
        if (!/^\+1[0-9]{1,14}$/.test(s)) expect(owned).toBe(false);
      }),
      { numRuns: 500, seed: 6 },
    );
  });
});
