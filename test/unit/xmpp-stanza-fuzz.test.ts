/**
 * Issue 6 item 7, the XMPP side: mutated real stanzas through the stream guard, the parser and
 * the adapter's first handling (fromStanza, answerIq), with a fixed seed and a bounded count.
 * The long run is `npx tsx scripts/fuzz-xmpp.ts`.
 */
import { describe, expect, it } from 'vitest';
import { fuzzStanza } from '../support/xmpp-fuzz.js';
import { STANZA_CORPUS, stanzaMutations } from '../support/xmpp-mutations.js';

const COMPONENT = 'sip.xmpp.test';

describe('the component stream under mutated stanzas', () => {
  it('given the unmutated corpus, then every stanza comes through and nothing fails', () => {
    for (const stanza of STANZA_CORPUS) expect(fuzzStanza(Buffer.from(stanza), COMPONENT)).toEqual({ stanzas: 1, streamFailed: false });
  });

  it('given 3,000 mutations (seed 11), then nothing throws, every refused stream gets a stream error, and both outcomes occur', () => {
    const outcomes = [...stanzaMutations({ seed: 11, count: 3000 })].map((input, i) => fuzzStanza(input, COMPONENT, [i % 97, (i * 31) % 211]));
    expect(outcomes.filter((o) => o.unexpected !== undefined).map((o) => o.unexpected).slice(0, 3)).toEqual([]);
    // The fuzzer reaches both paths: stanzas handled, and streams refused.
    expect(outcomes.filter((o) => o.stanzas > 0).length).toBeGreaterThan(300);
    expect(outcomes.filter((o) => o.streamFailed).length).toBeGreaterThan(300);
  });
});
