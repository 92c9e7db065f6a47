import { describe, expect, it } from 'vitest';
import { AuditLog, type Denial } from '../../src/core/audit.js';

interface Line {
  details: Record<string, unknown>;
  message: string;
}

function harness(options: { windowMs?: number; maxKeys?: number } = {}) {
  const lines: Line[] = [];
  let now = 1_000;
  const audit = new AuditLog({ warn: (details: object, message?: string) => lines.push({ details: details as Record<string, unknown>, message: message ?? '' }) } as never, {
    ...options,
    now: () => now,
  });
  return {
    audit,
    lines,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const spoof: Denial = { rule: 'spoofed-identity', who: 'mallory@beta.example', what: 'message', reason: 'beta.example is not proved by the certificate', event: 'e1' };

describe('the audit log of denials', () => {
  it('given one denial, then one warn line with audit, rule, who, what, reason and event', () => {
    const { audit, lines } = harness();
    audit.deny({ ...spoof, details: { peer: ['acme.example'] } });
    expect(lines).toEqual([
      {
        details: { audit: 'denial', rule: 'spoofed-identity', who: 'mallory@beta.example', what: 'message', reason: spoof.reason, event: 'e1', peer: ['acme.example'] },
        message: 'denied: message from mallory@beta.example (spoofed-identity)',
      },
    ]);
  });

  it('given details naming a field of the line, then the line keeps its own field', () => {
    const { audit, lines } = harness();
    audit.deny({ ...spoof, details: { rule: 'forged', audit: 'nothing' } });
    expect(lines[0]?.details).toMatchObject({ audit: 'denial', rule: 'spoofed-identity' });
  });

  it.each([
    { name: 'inside the window', gapMs: 9_999, written: 1, suppressed: undefined },
    { name: 'after the window', gapMs: 10_000, written: 2, suppressed: undefined },
  ])('given the same denial twice, $name, then $written line(s)', ({ gapMs, written, suppressed }) => {
    const { audit, lines, advance } = harness();
    audit.deny(spoof);
    advance(gapMs);
    audit.deny(spoof);
    expect(lines).toHaveLength(written);
    expect(lines.at(-1)?.details['suppressed']).toBe(suppressed);
  });

  it('given a flood of 1,000 identical denials over 25 s, then 3 lines, the later ones counting what they folded', () => {
    const { audit, lines, advance } = harness();
    for (let i = 0; i < 1_000; i++) {
      audit.deny(spoof);
      advance(25);
    }
    expect(lines.map((l) => l.details['suppressed'])).toEqual([undefined, 399, 399]);
  });

  it.each([
    { field: 'rule', other: { ...spoof, rule: 'federation-denied' } },
    { field: 'who', other: { ...spoof, who: 'eve@beta.example' } },
    { field: 'what', other: { ...spoof, what: 'subscription' } },
  ])('given two denials differing in $field, then both are written', ({ other }) => {
    const { audit, lines } = harness();
    audit.deny(spoof);
    audit.deny(other);
    expect(lines).toHaveLength(2);
  });

  it('given a counting hook, then it hears every denial, the folded ones too', () => {
    const heard: string[] = [];
    const audit = new AuditLog({ warn: () => undefined } as never, { onDeny: (d) => heard.push(d.rule), now: () => 0 });
    for (let i = 0; i < 5; i++) audit.deny(spoof);
    audit.deny({ ...spoof, rule: 'toll-fraud-method' });
    expect(heard).toEqual([...Array<string>(5).fill('spoofed-identity'), 'toll-fraud-method']);
  });

  it('given more distinct parties than maxKeys, then memory stays bounded and the forgotten one is written again', () => {
    const { audit, lines } = harness({ maxKeys: 2 });
    audit.deny({ ...spoof, who: 'a' });
    audit.deny({ ...spoof, who: 'b' });
    audit.deny({ ...spoof, who: 'c' }); // forgets a
    audit.deny({ ...spoof, who: 'c' }); // folded
    audit.deny({ ...spoof, who: 'a' }); // written again
    expect(lines.map((l) => l.details['who'])).toEqual(['a', 'b', 'c', 'a']);
  });
});
