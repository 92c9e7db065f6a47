/**
 * The stream guard on an in-memory entity: the real @xmpp/xml parser, bytes handed in as a
 * socket would, no network (the real-socket proofs are in the integration tests).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HostileInputError } from '../../src/adapters/xmpp/stream-guard.js';
import { guardedStream } from '../support/guarded-entity.js';

const entity = guardedStream;

describe('installStreamGuard', () => {
  it('given a body whose characters are split across reads at every byte, then it is decoded exactly', () => {
    const body = 'é€😀ü中𝄞';
    const { e, stanzas } = entity();
    for (const byte of Buffer.from(`<message><body>${body}</body></message>`)) e._onData(Buffer.from([byte]));
    expect(stanzas.map((s) => s.getChildText('body'))).toEqual([body]);
  });

  it('decodes any text split at any points exactly (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), fc.array(fc.nat(400), { maxLength: 10 }), (raw, cuts) => {
        const body = raw.replace(/[<&\p{Cc}]/gu, '');
        const bytes = Buffer.from(`<message><body>${body}</body></message>`);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const { e, stanzas } = entity();
        let start = 0;
        for (const p of [...points, bytes.length]) {
          e._onData(bytes.subarray(start, p));
          start = p;
        }
        return stanzas.length === 1 && (stanzas[0]?.getChildText('body') ?? '') === body;
      }),
    );
  });

  it('given a stanza whose last byte arrives, then it is emitted at once, with no later data needed', () => {
    const { e, stanzas } = entity();
    e._onData(Buffer.from('<message><body>long text '));
    e._onData(Buffer.from('still text'));
    expect(stanzas).toHaveLength(0);
    e._onData(Buffer.from('</body></message>'));
    expect(stanzas.map((s) => s.getChildText('body'))).toEqual(['long text still text']);
  });

  it('given a peer that sends more than the bound without a closing >, then the stream is failed', () => {
    const { e, errors, written } = entity(1000);
    e._onData(Buffer.from('<message><body>'));
    for (let i = 0; i < 11; i++) e._onData(Buffer.from('x'.repeat(100)));
    expect(errors[0]).toBeInstanceOf(HostileInputError);
    expect(written.join('')).toContain('<not-well-formed');
  });

  it.each([
    ['an undefined entity', '<message><body>&foo;</body></message>'],
    ['an undefined entity in an attribute', "<message to='&foo;'/>"],
    ['a forbidden character reference', '<message><body>&#0;</body></message>'],
  ])('given %s, then no throw: the stream is failed with not-well-formed and an error event', (_what, text) => {
    const { e, errors, written } = entity();
    expect(() => e._onData(Buffer.from(text))).not.toThrow();
    expect(errors[0]).toBeInstanceOf(HostileInputError);
    expect(written.join('')).toContain('<not-well-formed');
    expect(e.parser).toBeNull();
    expect(() => e._onData(Buffer.from('<message><body>later</body></message>'))).not.toThrow();
  });
});
