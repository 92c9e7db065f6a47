import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { messageEvent } from '../../src/core/events.js';
import { SentStanzas } from '../../src/adapters/xmpp/sent-stanzas.js';

const event = messageEvent({
  origin: 'sip',
  from: { side: 'xmpp', user: 'a', domain: 'sip.xmpp.test' },
  to: { side: 'xmpp', user: 'b', domain: 'xmpp.test' },
  body: 'x',
  dedupeKey: 'k',
  createdAt: 0,
});

describe('SentStanzas', () => {
  it('given a remembered id, then take returns the event once', () => {
    const log = new SentStanzas(10, 1000);
    log.remember('s1', event, 0);
    expect(log.take('s1', 10)).toBe(event);
    expect(log.take('s1', 10)).toBeUndefined();
  });

  it('given an entry older than the ttl, then it is gone', () => {
    const log = new SentStanzas(10, 1000);
    log.remember('s1', event, 0);
    expect(log.take('s1', 1000)).toBeUndefined();
  });

  it('given more ids than the bound, then the oldest are dropped first', () => {
    const log = new SentStanzas(2, 1000);
    log.remember('s1', event, 0);
    log.remember('s2', event, 1);
    log.remember('s3', event, 2);
    expect([log.take('s1', 3), log.take('s2', 3), log.take('s3', 3)]).toEqual([undefined, event, event]);
  });

  it('never holds more than its bound (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.tuple(fc.string(), fc.nat(5000)), { maxLength: 200 }), (max, ops) => {
        const log = new SentStanzas(max, 1000);
        let now = 0;
        for (const [id, step] of ops) {
          now += step;
          log.remember(id, event, now);
          if (log.size > max) return false;
        }
        return true;
      }),
    );
  });
});
