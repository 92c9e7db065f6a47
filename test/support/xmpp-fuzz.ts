/**
 * One fuzz case for the component stream's input path: the bytes go through the stream guard
 * and the real parser (in up to three reads), and every stanza that comes out through what the
 * adapter does with it first — fromStanza, and answerIq for an iq. Nothing may throw; a stream
 * the guard or the parser refuses must be failed with a stream error written back.
 */
import { answerIq } from '../../src/adapters/xmpp/iq.js';
import { fromStanza } from '../../src/adapters/xmpp/stanza.js';
import { guardedStream } from './guarded-entity.js';

export interface StanzaFuzzOutcome {
  readonly stanzas: number;
  readonly streamFailed: boolean;
  /** What broke a rule above: a throw, or a failed stream with no stream error written. */
  readonly unexpected?: string;
}

export function fuzzStanza(input: Buffer, component: string, cuts: readonly number[] = []): StanzaFuzzOutcome {
  const stream = guardedStream();
  let handled = 0;
  try {
    let start = 0;
    for (const cut of [...cuts.map((c) => c % (input.length + 1)).sort((a, b) => a - b), input.length]) {
      stream.e._onData(input.subarray(start, Math.max(start, cut)));
      start = Math.max(start, cut);
    }
    for (const stanza of stream.stanzas) {
      handled++;
      if (stanza.name === 'iq') answerIq(stanza);
      else fromStanza(stanza, { component, now: 0 });
    }
  } catch (err) {
    return { stanzas: handled, streamFailed: stream.errors.length > 0, unexpected: `threw: ${(err as Error).stack ?? String(err)}` };
  }
  const streamFailed = stream.errors.length > 0;
  if (streamFailed && !stream.written.join('').includes('<stream:error')) {
    return { stanzas: handled, streamFailed, unexpected: `stream failed (${stream.errors[0]?.message ?? ''}) without a stream error written` };
  }
  return { stanzas: handled, streamFailed };
}
