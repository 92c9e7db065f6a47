import { describe, expect, it } from 'vitest';
import { readiness } from '../../src/telemetry/health.js';

describe('readiness', () => {
  it('is ready only when every check passes, and keeps each check\'s answer', async () => {
    expect(await readiness({ a: () => ({ ok: true }), b: async () => ({ ok: true, detail: 'fine' }) })).toEqual({
      ready: true,
      checks: { a: { ok: true }, b: { ok: true, detail: 'fine' } },
    });
    expect(await readiness({ a: () => ({ ok: true }), b: () => ({ ok: false, detail: 'down' }) })).toMatchObject({ ready: false, checks: { b: { detail: 'down' } } });
  });

  it('turns a check that throws into a failure with its message', async () => {
    expect(await readiness({ redis: () => Promise.reject(new Error('connection refused')) })).toEqual({
      ready: false,
      checks: { redis: { ok: false, detail: 'connection refused' } },
    });
  });

  it('fails a check that does not answer in time, without waiting for it', async () => {
    const result = await readiness({ hung: () => new Promise(() => undefined), fine: () => ({ ok: true }) }, 20);
    expect(result).toEqual({ ready: false, checks: { hung: { ok: false, detail: 'no answer within 20 ms' }, fine: { ok: true } } });
  });

  it('is ready with no checks at all (a router has no adapter)', async () => {
    expect(await readiness({})).toEqual({ ready: true, checks: {} });
  });
});
