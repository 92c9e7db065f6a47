/**
 * Large non-ASCII bodies under load, both directions through a real Prosody. xmpp.js decodes
 * each TCP read by itself, so without the stream guard a character split between reads turns
 * into U+FFFD; here every body must arrive byte-for-byte.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import xml from '@xmpp/xml';
import { messageEvent, type MessageEvent } from '../../src/core/events.js';
import { waitFor } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { connectUser, type TestUser } from '../support/xmpp-client.js';
import { adapterHarness, type AdapterHarness } from '../support/xmpp-adapter-harness.js';

const MESSAGES = 80;
const BODY_BYTES = 100_000;
/** 1-, 2-, 3- and 4-byte UTF-8 characters. */
const POOL = ['a', 'Z', ' ', 'é', 'ü', 'ß', 'Ж', '€', '中', '☕', 'ア', '😀', '𝄞', '🎉', '𠜎'];

/** Deterministic body n of about BODY_BYTES bytes (mulberry32, so a failure can be replayed). */
function body(n: number): string {
  let seed = (n + 1) * 0x9e3779b9;
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const parts: string[] = [`#${n} `];
  let bytes = parts[0]!.length;
  while (bytes < BODY_BYTES) {
    const ch = POOL[Math.floor(random() * POOL.length)]!;
    parts.push(ch);
    bytes += Buffer.byteLength(ch);
  }
  return parts.join('');
}

let prosody: Prosody;
let bridge: AdapterHarness;
let juliet: TestUser;

beforeAll(async () => {
  prosody = await startProsody();
  bridge = adapterHarness({ component: prosody.component, secret: prosody.secret, server: { host: prosody.host, port: prosody.componentPort } });
  await bridge.adapter.start();
  juliet = await connectUser(prosody, prosody.users[0]!);
});

afterAll(async () => {
  await juliet?.stop();
  await bridge?.adapter.stop();
  await prosody?.stop();
});

describe('UTF-8 under load', () => {
  it(`given ${MESSAGES} bodies of ~${BODY_BYTES / 1000} KB of mixed 1-4 byte characters from a user, then the component receives every one exactly`, async () => {
    for (let n = 0; n < MESSAGES; n++) {
      await juliet.client.send(xml('message', { to: `load@${prosody.component}`, type: 'chat', id: `up-${n}` }, xml('body', {}, body(n))));
    }
    const inbound = (): MessageEvent[] => bridge.events.filter((e): e is MessageEvent => e.kind === 'message' && (e.originRef ?? '').startsWith('up-'));
    await waitFor(`${MESSAGES} inbound messages`, () => (inbound().length >= MESSAGES ? true : undefined), 90_000, 50);
    const wrong = inbound().filter((e) => e.body !== body(Number(e.originRef?.slice(3))));
    expect(wrong.map((e) => e.originRef)).toEqual([]);
    expect(inbound().length).toBe(MESSAGES);
  }, 120_000);

  it(`given ${MESSAGES} such bodies sent by the adapter at once, then the user receives every one exactly`, async () => {
    const events = Array.from({ length: MESSAGES }, (_, n) =>
      messageEvent({
        origin: 'sip',
        from: { side: 'xmpp', user: 'load', domain: prosody.component },
        to: { side: 'xmpp', user: 'juliet', domain: prosody.domain, resource: 'test' },
        body: body(n),
        dedupeKey: `down-${n}`,
        createdAt: Date.now(),
      }),
    );
    await Promise.all(events.map((e) => bridge.adapter.send(e)));
    const ids = new Map(events.map((e, n) => [e.id, n]));
    const got = () => juliet.received.filter((el) => el.name === 'message' && ids.has(el.attrs['id'] ?? ''));
    await waitFor(`${MESSAGES} messages at the user`, () => (got().length >= MESSAGES ? true : undefined), 90_000, 50);
    const wrong = got().filter((el) => el.getChildText('body') !== body(ids.get(el.attrs['id'] ?? '') ?? -1));
    expect(wrong.map((el) => el.attrs['id'])).toEqual([]);
  }, 120_000);
});
