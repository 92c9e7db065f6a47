import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { randomToken } from '../../src/core/ids.js';

describe('randomToken', () => {
  it('gives base64url text of exactly the bytes asked for, at any size, across pool refills', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), (bytes) => {
        const token = randomToken(bytes);
        expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(Buffer.from(token, 'base64url')).toHaveLength(bytes);
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  it('never repeats a token over 20,000 draws (each pooled byte is used once)', () => {
    const tokens = new Set(Array.from({ length: 20_000 }, () => randomToken(12)));
    expect(tokens.size).toBe(20_000);
  });
});
