import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCommonNameAddr, isCommonVia } from '../../src/adapters/sip/codec/common-form.js';
import { parseNameAddr, parseVia } from '../../src/adapters/sip/codec/uri.js';

/** Whether the full parser accepts `text`. */
function accepts(parse: (text: string) => unknown, text: string): boolean {
  try {
    parse(text);
    return true;
  } catch {
    return false;
  }
}

const VIA_SEEDS = [
  'SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-524287-1---6a8b1e4c2d9f3a70;rport',
  'SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5060',
  'SIP/2.0/TCP h.example:65535;branch=z9hG4bK1;Branch=2',
];
const NAME_ADDR_SEEDS = [
  '"Alice Example" <sip:alice@corp.example>;tag=8c2f7a1e90;epid=01010101',
  '<sip:bob@xmpp.example.org>',
  'Bob Smith <sips:bob@h.example:5061;transport=tls>;tag=x;TAG=y',
  '"a \\" b" <tel:+1-555>;x',
];
/** Characters that matter to the Via and name-addr grammars, plus a few that must never pass. */
const GRAMMAR_CHARS = [...' \t;=",<>:\\@[]/%*?&aZ09.-_~\'!', 'é', '\x7f', '\x00', '\r'];

/** A seed with up to six characters replaced, inserted or deleted. */
function mutated(seeds: readonly string[]): fc.Arbitrary<string> {
  const edit = fc.record({
    op: fc.constantFrom('set', 'insert', 'delete'),
    at: fc.nat(),
    ch: fc.constantFrom(...GRAMMAR_CHARS),
  });
  return fc.tuple(fc.constantFrom(...seeds), fc.array(edit, { maxLength: 6 })).map(([seed, edits]) => {
    const chars = [...seed];
    for (const e of edits) {
      const at = e.at % (chars.length + 1);
      if (e.op === 'set') chars[at] = e.ch;
      else if (e.op === 'insert') chars.splice(at, 0, e.ch);
      else chars.splice(at, 1);
    }
    return chars.join('');
  });
}

describe('isCommonVia', () => {
  it.each(VIA_SEEDS.slice(0, 2))('recognises the common Via %j', (via) => {
    expect(isCommonVia(via)).toBe(true);
  });

  it.each([
    ['an IPv6 sent-by', 'SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1'],
    ['a quoted parameter value', 'SIP/2.0/UDP h.example;branch="z9hG4bK1"'],
    ['two Via values on one line', 'SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/UDP b.example;branch=z9hG4bK2'],
    ['whitespace around the slashes', 'SIP / 2.0 / UDP h.example;branch=z9hG4bK1'],
    ['a repeated parameter in another case', VIA_SEEDS[2] as string],
    ['a port above 65535', 'SIP/2.0/UDP h.example:65536;branch=z9hG4bK1'],
  ])('leaves %s to the full parser', (_name, via) => {
    expect(isCommonVia(via)).toBe(false);
  });

  it('recognises only values that parseVia accepts', () => {
    fc.assert(
      fc.property(mutated(VIA_SEEDS), (via) => !isCommonVia(via) || accepts(parseVia, via)),
      { numRuns: 5000 },
    );
  });
});

describe('isCommonNameAddr', () => {
  it.each(NAME_ADDR_SEEDS.slice(0, 2))('recognises the common name-addr %j', (value) => {
    expect(isCommonNameAddr(value)).toBe(true);
  });

  it.each([
    ['an addr-spec without angle brackets', 'sip:alice@x.example;tag=1'],
    ['Contact: *', '*'],
    ['a repeated parameter in another case', NAME_ADDR_SEEDS[2] as string],
    ['a space inside the URI', '<sip:alice@x.example ;lr>'],
    ['an unterminated display name', '"Alice <sip:alice@x.example>'],
    ['trailing white space', '<sip:alice@x.example> '],
  ])('leaves %s to the full parser', (_name, value) => {
    expect(isCommonNameAddr(value)).toBe(false);
  });

  it('recognises only values that parseNameAddr accepts', () => {
    fc.assert(
      fc.property(mutated(NAME_ADDR_SEEDS), (value) => !isCommonNameAddr(value) || accepts(parseNameAddr, value)),
      { numRuns: 5000 },
    );
  });

  it('recognises only values that parseNameAddr accepts, on arbitrary strings', () => {
    const text = fc.string({ unit: fc.constantFrom(...GRAMMAR_CHARS, 's', 'i', 'p'), maxLength: 40 });
    fc.assert(
      fc.property(text, (value) => !isCommonNameAddr(value) || accepts(parseNameAddr, value)),
      { numRuns: 5000 },
    );
  });
});
