import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SipStreamFramer } from '../../src/adapters/sip/codec/framer.js';
import { SipParseError, parseMessage } from '../../src/adapters/sip/codec/parse.js';

function message(n: number, body: string, lengthHeader = 'Content-Length'): Buffer {
  const bytes = Buffer.from(body, 'utf8');
  return Buffer.concat([
    Buffer.from(
      [
        'MESSAGE sip:bob@x.example SIP/2.0',
        `Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK${n}`,
        'Max-Forwards: 70',
        'From: "Alice" <sip:alice@corp.example>;tag=a',
        'To: <sip:bob@x.example>',
        `Call-ID: call-${n}`,
        `CSeq: ${n} MESSAGE`,
        `${lengthHeader}: ${bytes.length}`,
        '',
        '',
      ].join('\r\n'),
    ),
    bytes,
  ]);
}

function framerError(framer: SipStreamFramer, chunk: Buffer): SipParseError {
  try {
    framer.push(chunk);
  } catch (err) {
    if (err instanceof SipParseError) return err;
    throw err;
  }
  throw new Error('expected push to throw');
}

describe('SipStreamFramer', () => {
  it('cuts two messages arriving in one chunk', () => {
    const framer = new SipStreamFramer({ maxMessageBytes: 4096 });
    const [a, b] = [message(1, 'first'), message(2, 'zweite ✓')];
    expect(framer.push(Buffer.concat([a, b]))).toEqual([a, b]);
  });

  it('joins a message arriving one byte at a time', () => {
    const framer = new SipStreamFramer({ maxMessageBytes: 4096 });
    const m = message(1, 'héllo');
    const out: Buffer[] = [];
    for (let i = 0; i < m.length; i++) out.push(...framer.push(m.subarray(i, i + 1)));
    expect(out).toEqual([m]);
    expect(framer.bufferedBytes).toBe(0);
  });

  it('frames by the compact Content-Length name l', () => {
    const framer = new SipStreamFramer({ maxMessageBytes: 4096 });
    const m = message(1, 'abc', 'l');
    expect(framer.push(Buffer.concat([m, m]))).toEqual([m, m]);
  });

  it('frames a message with an empty body', () => {
    const framer = new SipStreamFramer({ maxMessageBytes: 4096 });
    expect(framer.push(message(3, ''))).toEqual([message(3, '')]);
  });

  it('keeps a partial message until its body is complete', () => {
    const framer = new SipStreamFramer({ maxMessageBytes: 4096 });
    const m = message(1, 'body text');
    expect(framer.push(m.subarray(0, m.length - 3))).toEqual([]);
    expect(framer.push(m.subarray(m.length - 3))).toEqual([m]);
  });

  it('reports a CRLFCRLF keep-alive ping between messages (RFC 5626 §3.5.1)', () => {
    let pings = 0;
    const framer = new SipStreamFramer({ maxMessageBytes: 4096, onKeepAlivePing: () => pings++ });
    const m = message(1, 'x');
    expect(framer.push(Buffer.concat([Buffer.from('\r\n\r\n'), m, Buffer.from('\r\n\r\n')]))).toEqual([m]);
    expect(pings).toBe(2);
  });

  it('reports a ping split across chunks, byte by byte', () => {
    let pings = 0;
    const framer = new SipStreamFramer({ maxMessageBytes: 4096, onKeepAlivePing: () => pings++ });
    for (const byte of Buffer.from('\r\n\r\n')) expect(framer.push(Buffer.from([byte]))).toEqual([]);
    expect(pings).toBe(1);
    expect(framer.bufferedBytes).toBe(0);
  });

  it('skips a single CRLF (a pong) without reporting a ping', () => {
    let pings = 0;
    const framer = new SipStreamFramer({ maxMessageBytes: 4096, onKeepAlivePing: () => pings++ });
    const m = message(1, 'x');
    expect(framer.push(Buffer.concat([Buffer.from('\r\n'), m]))).toEqual([m]);
    expect(pings).toBe(0);
  });

  it.each([
    ['a header section over the limit', Buffer.from('MESSAGE sip:a@b SIP/2.0\r\nSubject: ' + 'x'.repeat(300)), 413],
    ['a Content-Length over the limit', message(1, 'y'.repeat(250)), 413],
    ['no Content-Length', Buffer.from('MESSAGE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n'), 400],
    ['a Content-Length that is not a number', message(1, 'abc').toString().replace('Content-Length: 3', 'Content-Length: 3x'), 400],
    ['two different Content-Lengths', message(1, 'abc').toString().replace('Content-Length: 3', 'Content-Length: 3\r\nl: 4'), 400],
  ])('throws on %s', (_name, data, status) => {
    const framer = new SipStreamFramer({ maxMessageBytes: 256 });
    expect(framerError(framer, Buffer.from(data)).status).toBe(status);
  });

  it('stays failed after an error', () => {
    const framer = new SipStreamFramer({ maxMessageBytes: 4096 });
    const first = framerError(framer, Buffer.from('MESSAGE sip:a@b SIP/2.0\r\n\r\n'));
    expect(framerError(framer, message(1, 'ok'))).toBe(first);
  });

  it('never buffers more than maxMessageBytes', () => {
    const framer = new SipStreamFramer({ maxMessageBytes: 1000 });
    const chunk = Buffer.alloc(100, 0x61);
    let err: unknown;
    for (let i = 0; i < 20 && err === undefined; i++) {
      try {
        framer.push(chunk);
        expect(framer.bufferedBytes).toBeLessThanOrEqual(1000);
      } catch (e) {
        err = e;
      }
    }
    expect(err).toBeInstanceOf(SipParseError);
  });

  it('hands the parser exactly the messages sent, however the stream is cut', () => {
    const bodies = fc.array(fc.string({ unit: 'grapheme', maxLength: 60 }), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(bodies, fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 20 }), (texts, cuts) => {
        const messages = texts.map((t, i) => message(i + 1, t));
        const stream = Buffer.concat(messages.flatMap((m) => [Buffer.from('\r\n'), m]));
        const framer = new SipStreamFramer({ maxMessageBytes: 4096 });
        const out: Buffer[] = [];
        let at = 0;
        for (let k = 0; at < stream.length; k++) {
          const size = cuts[k % cuts.length] as number;
          out.push(...framer.push(stream.subarray(at, at + size)));
          at += size;
        }
        expect(out).toEqual(messages);
        expect(out.map((m) => parseMessage(m, { transport: 'tcp' }).body.toString('utf8'))).toEqual(texts);
      }),
      { numRuns: 200 },
    );
  });
});
