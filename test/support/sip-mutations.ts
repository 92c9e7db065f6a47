/**
 * A small mutation fuzzer for SIP (issue 6 item 7): deterministic for a seed, bounded by a
 * count. Each output is one corpus message with one to three mutations of the kinds hostile
 * peers and broken stacks produce: flipped and cut bytes, CRLF or NUL injected into a header
 * value, a header repeated many times, a Content-Length that lies, invalid UTF-8 in the body,
 * an over-long line, two messages spliced.
 */

/** xorshift32: a tiny deterministic generator, so a failing seed replays exactly. */
export function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

type Mutation = (msg: Buffer, rnd: () => number) => Buffer;


export const pick = <T>(items: readonly T[], rnd: () => number): T => items[Math.floor(rnd() * items.length)] as T;

const MUTATIONS: readonly Mutation[] = [
  // Flip a few bytes anywhere.
  (m, rnd) => {
    const out = Buffer.from(m);
    for (let i = 0; i < 1 + Math.floor(rnd() * 4); i++) out[Math.floor(rnd() * out.length)] = Math.floor(rnd() * 256);
    return out;
  },
  // Cut it short.
  (m, rnd) => m.subarray(0, Math.floor(rnd() * m.length)),
  // CRLF (header injection) or NUL inside a header line.
  (m, rnd) => {
    const text = m.toString('latin1');
    const at = text.indexOf('\r\n', Math.floor(rnd() * Math.max(1, text.indexOf('\r\n\r\n'))));
    if (at < 0) return m;
    const inject = pick(['\r\nX-Injected: yes', '\r\n\r\n', '\u0000', '\r', '\n'], rnd);
    return Buffer.from(text.slice(0, at - 1) + inject + text.slice(at - 1), 'latin1');
  },
  // One header repeated many times (absurd header counts).
  (m, rnd) => {
    const text = m.toString('latin1');
    const lines = text.split('\r\n');
    const end = lines.indexOf('');
    if (end < 2) return m;
    const line = lines[1 + Math.floor(rnd() * (end - 1))] as string;
    lines.splice(end, 0, ...Array.from({ length: 50 + Math.floor(rnd() * 2000) }, () => line));
    return Buffer.from(lines.join('\r\n'), 'latin1');
  },
  // Content-Length that lies (longer, shorter, negative, absurd).
  (m, rnd) => {
    const value = pick(['0', '1', '99999', '-5', '18446744073709551616', 'abc', ''], rnd);
    return Buffer.from(m.toString('latin1').replace(/Content-Length: *\d+/i, `Content-Length: ${value}`), 'latin1');
  },
  // Invalid UTF-8 in the body.
  (m) => Buffer.concat([m, Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80])]),
  // An over-long header value.
  (m, rnd) => {
    const text = m.toString('latin1');
    const at = text.indexOf('\r\n');
    return Buffer.from(`${text.slice(0, at)}\r\nSubject: ${'A'.repeat(1000 + Math.floor(rnd() * 70_000))}${text.slice(at)}`, 'latin1');
  },
  // Two messages glued together.
  (m, rnd) => Buffer.concat([m, m.subarray(0, Math.floor(rnd() * m.length))]),
];

export function* mutations(corpus: readonly string[], opts: { seed: number; count: number }): Generator<Buffer> {
  const rnd = random(opts.seed);
  for (let i = 0; i < opts.count; i++) {
    let msg: Buffer = Buffer.from(pick(corpus, rnd), 'utf8');
    for (let j = 0; j < 1 + Math.floor(rnd() * 3); j++) msg = pick(MUTATIONS, rnd)(msg, rnd);
    // UDP carries at most 65,507 bytes; a larger datagram could not even be sent.
    yield msg.length > 65_000 ? msg.subarray(0, 65_000) : msg;
  }
}
