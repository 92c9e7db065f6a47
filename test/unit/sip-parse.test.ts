import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COMPACT_FORMS } from '../../src/adapters/sip/codec/header-names.js';
import { headerValue, type SipRequest, type SipResponse } from '../../src/adapters/sip/codec/message.js';
import { SipParseError, isKeepAlive, parseCSeq, parseMessage } from '../../src/adapters/sip/codec/parse.js';

const CRLF = '\r\n';

/** Message text from header lines and a body; the body is appended after the empty line. */
function raw(lines: readonly string[], body = ''): Buffer {
  return Buffer.from(lines.join(CRLF) + CRLF + CRLF + body, 'utf8');
}

const REQUEST_HEADERS: Record<string, string> = {
  Via: 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport',
  'Max-Forwards': '70',
  From: '"Alice" <sip:alice@corp.example>;tag=1928301774',
  To: '<sip:bob@xmpp.example.org>',
  'Call-ID': 'a84b4c76e66710@pc33.corp.example',
  CSeq: '1 MESSAGE',
};

function messageLines(omit: readonly string[] = [], extra: readonly string[] = []): string[] {
  const lines = ['MESSAGE sip:bob@xmpp.example.org SIP/2.0'];
  for (const [name, value] of Object.entries(REQUEST_HEADERS)) if (!omit.includes(name)) lines.push(`${name}: ${value}`);
  return [...lines, ...extra];
}

function responseLines(omit: readonly string[] = []): string[] {
  const lines = ['SIP/2.0 200 OK'];
  for (const [name, value] of Object.entries(REQUEST_HEADERS)) {
    if (name !== 'Max-Forwards' && !omit.includes(name)) lines.push(`${name}: ${value}`);
  }
  return lines;
}

function parseError(data: Buffer, opts?: Parameters<typeof parseMessage>[1]): SipParseError {
  try {
    parseMessage(data, opts);
  } catch (err) {
    if (err instanceof SipParseError) return err;
    throw err;
  }
  throw new Error('expected parseMessage to throw');
}

describe('parseMessage: valid messages', () => {
  it('reads a MESSAGE with a UTF-8 body whose Content-Length counts bytes', () => {
    const body = 'héllo ✓ 你好';
    const msg = parseMessage(raw(messageLines([], [`Content-Length: ${Buffer.byteLength(body)}`]), body));
    expect(msg.kind).toBe('request');
    const req = msg as SipRequest;
    expect(req.method).toBe('MESSAGE');
    expect(req.uri).toBe('sip:bob@xmpp.example.org');
    expect(req.body.toString('utf8')).toBe(body);
    expect(headerValue(req, 'call-id')).toBe(REQUEST_HEADERS['Call-ID']);
  });

  it('reads a response status line with its reason phrase', () => {
    const msg = parseMessage(raw(responseLines())) as SipResponse;
    expect(msg).toMatchObject({ kind: 'response', status: 200, reason: 'OK' });
  });

  it.each([
    ['empty reason phrase after SP', 'SIP/2.0 202 ', ''],
    ['reason with UTF-8 and spaces', 'SIP/2.0 480 Nicht verfügbar jetzt', 'Nicht verfügbar jetzt'],
    ['lower-case version', 'sip/2.0 404 Not Found', 'Not Found'],
  ])('reads a status line with %s', (_name, line, reason) => {
    const msg = parseMessage(raw([line, ...responseLines().slice(1)])) as SipResponse;
    expect(msg.reason).toBe(reason);
  });

  it.each(Object.entries(COMPACT_FORMS))('expands the compact header name %s to %s', (compact, long) => {
    const lines = messageLines([long]);
    lines.push(long === 'Content-Length' ? `${compact}: 0` : `${compact}: ${REQUEST_HEADERS[long] ?? 'value'}`);
    const msg = parseMessage(raw(lines));
    expect(msg.headers.map((h) => h.name)).toContain(long);
    expect(msg.headers.map((h) => h.name)).not.toContain(compact);
  });

  it.each([
    ['call-id', 'Call-ID'],
    ['CSEQ', 'CSeq'],
    ['via', 'Via'],
    ['www-authenticate', 'WWW-Authenticate'],
    ['MAX-forwards', 'Max-Forwards'],
  ])('stores the header name %s in canonical form %s', (written, canonical) => {
    const lines = messageLines([canonical]);
    lines.push(`${written}: ${REQUEST_HEADERS[canonical] ?? 'Digest realm="x"'}`);
    expect(parseMessage(raw(lines)).headers.map((h) => h.name)).toContain(canonical);
  });

  it('keeps an unknown header name as written and in wire order', () => {
    const msg = parseMessage(raw(messageLines([], ['Ms-Conversation-ID: abc', 'X-a: 1', 'x-A: 2'])));
    expect(msg.headers.slice(-3)).toEqual([
      { name: 'Ms-Conversation-ID', value: 'abc' },
      { name: 'X-a', value: '1' },
      { name: 'x-A', value: '2' },
    ]);
  });

  it('joins folded header lines with one space (RFC 3261 §7.3.1)', () => {
    const msg = parseMessage(raw(messageLines([], ['Subject: lunch', ' \t at noon', '\ttoday'])));
    expect(headerValue(msg, 'Subject')).toBe('lunch at noon today');
  });

  it('accepts whitespace between a header name and its colon', () => {
    const msg = parseMessage(raw(messageLines(['Call-ID'], ['Call-ID \t:  abc@host'])));
    expect(headerValue(msg, 'Call-ID')).toBe('abc@host');
  });

  it('ignores CRLFs before the start line (RFC 3261 §7.5)', () => {
    const msg = parseMessage(Buffer.concat([Buffer.from('\r\n\r\n\r\n'), raw(messageLines())]));
    expect(msg.kind).toBe('request');
  });

  it('over UDP without Content-Length takes the body to the end of the datagram (§18.3)', () => {
    const msg = parseMessage(raw(messageLines(), 'to the end'));
    expect(msg.body.toString()).toBe('to the end');
  });

  it('over UDP discards bytes beyond Content-Length (§18.3)', () => {
    const msg = parseMessage(raw(messageLines([], ['Content-Length: 4']), 'bodyEXCESS'));
    expect(msg.body.toString()).toBe('body');
  });

  it('keeps a header line with several Via values as one entry', () => {
    const msg = parseMessage(raw(messageLines(['Via'], ['Via: SIP/2.0/TCP a.example;branch=z9hG4bK1, SIP/2.0/UDP b.example;branch=z9hG4bK2'])));
    expect(msg.headers.filter((h) => h.name === 'Via')).toHaveLength(1);
  });

  it('accepts a message of exactly maxBytes', () => {
    const data = raw(messageLines([], ['Content-Length: 3']), 'abc');
    expect(parseMessage(data, { maxBytes: data.length }).body.toString()).toBe('abc');
  });
});

describe('parseMessage: rejected messages', () => {
  it.each(['To', 'From', 'CSeq', 'Call-ID', 'Max-Forwards', 'Via'])(
    'answers 400 naming the missing request header %s (RFC 3261 §8.1.1)',
    (missing) => {
      const err = parseError(raw(messageLines([missing])));
      expect(err.status).toBe(400);
      expect(err.reason).toBe(`Missing ${missing} header`);
    },
  );

  it.each(['Via', 'From', 'To', 'Call-ID', 'CSeq'])('rejects a response without %s', (missing) => {
    expect(parseError(raw(responseLines([missing]))).reason).toBe(`Missing ${missing} header`);
  });

  it.each<[string, Buffer, number, string | RegExp, Parameters<typeof parseMessage>[1]?]>([
    ['another SIP version', raw(['MESSAGE sip:bob@x.example SIP/3.0', ...messageLines().slice(1)]), 505, 'Version Not Supported'],
    ['an HTTP request line', raw(['GET / HTTP/1.1', 'Host: x']), 400, 'Malformed request line'],
    ['a request line with an extra space', raw(['MESSAGE  sip:bob@x.example SIP/2.0', ...messageLines().slice(1)]), 400, 'Malformed request line'],
    ['a method that is not a token', raw(['MESS:AGE sip:bob@x.example SIP/2.0', ...messageLines().slice(1)]), 400, 'Malformed request line'],
    ['a Request-URI without scheme', raw(['MESSAGE bob@x.example SIP/2.0', ...messageLines().slice(1)]), 400, 'Malformed request line'],
    ['a status code of two digits', raw(['SIP/2.0 99 Odd', ...responseLines().slice(1)]), 400, 'Malformed status line'],
    ['a status code above 699', raw(['SIP/2.0 700 Odd', ...responseLines().slice(1)]), 400, 'Malformed status line'],
    ['a CSeq method other than the request method', raw(messageLines(['CSeq'], ['CSeq: 1 OPTIONS'])), 400, 'CSeq method does not match the request method'],
    ['a CSeq without number', raw(messageLines(['CSeq'], ['CSeq: MESSAGE'])), 400, 'Malformed CSeq'],
    ['a CSeq number of 2^31', raw(messageLines(['CSeq'], ['CSeq: 2147483648 MESSAGE'])), 400, 'Malformed CSeq'],
    ['a Max-Forwards above 255', raw(messageLines(['Max-Forwards'], ['Max-Forwards: 256'])), 400, 'Malformed Max-Forwards'],
    ['a Call-ID with a space', raw(messageLines(['Call-ID'], ['Call-ID: a b'])), 400, 'Malformed Call-ID'],
    ['two From headers', raw(messageLines([], ['From: <sip:eve@x.example>;tag=2'])), 400, 'Repeated From header'],
    ['a Via without SIP/2.0', raw(messageLines(['Via'], ['Via: SIP/1.0/UDP h.example;branch=z9hG4bK1'])), 400, 'Malformed Via'],
    ['a From that is not a name-addr', raw(messageLines(['From'], ['From: Alice <sip:alice@x.example'])), 400, 'Malformed name-addr'],
    ['a body shorter than Content-Length', raw(messageLines([], ['Content-Length: 10']), 'short'), 400, 'Body shorter than Content-Length'],
    ['a Content-Length that is not a number', raw(messageLines([], ['Content-Length: ten'])), 400, 'Malformed Content-Length'],
    ['no Content-Length over TCP', raw(messageLines()), 400, 'Missing Content-Length header', { transport: 'tcp' }],
    ['a message over maxBytes', raw(messageLines([], ['Content-Length: 100']), 'x'.repeat(100)), 413, 'Message Too Large', { maxBytes: 300 }],
    ['a header section over maxBytes', raw(messageLines([], ['Subject: ' + 'y'.repeat(400)])), 413, 'Message Too Large', { maxBytes: 300 }],
    ['a NUL byte in a header', raw(messageLines([], ['Subject: a\0b'])), 400, 'NUL byte in header section'],
    ['a bare LF in a header', raw(messageLines([], ['Subject: a\nVia: SIP/2.0/UDP evil'])), 400, 'Bare CR or LF in header section'],
    ['a bare CR in a header', raw(messageLines([], ['Subject: a\rb'])), 400, 'Bare CR or LF in header section'],
    ['a header line without colon', raw(messageLines([], ['Subject lunch'])), 400, 'Header line without a colon'],
    ['a header name with a space', raw(messageLines([], ['Sub ject: lunch'])), 400, 'Malformed header name'],
    ['a continuation line first', raw(['MESSAGE sip:bob@x.example SIP/2.0', ' folded', ...messageLines().slice(1)]), 400, 'Continuation line before any header'],
    ['no empty line after the headers', Buffer.from(messageLines().join(CRLF) + CRLF), 400, 'Header section not terminated by an empty line'],
    ['only CRLFs', Buffer.from('\r\n\r\n'), 400, 'Empty message'],
    ['a header section that is not UTF-8', Buffer.concat([Buffer.from(messageLines().join(CRLF) + CRLF + 'Subject: '), Buffer.from([0xff, 0xfe]), Buffer.from(CRLF + CRLF)]), 400, 'Header section is not UTF-8'],
  ])('rejects %s', (_name, data, status, reason, opts) => {
    const err = parseError(data, opts);
    expect(err.status).toBe(status);
    expect(err.reason).toMatch(reason);
  });

  it('keeps the parsed part of a request whose Call-ID is missing, for the 400 answer', () => {
    const err = parseError(raw(messageLines(['Call-ID'])));
    expect(err.partial).toMatchObject({ kind: 'request', method: 'MESSAGE', uri: 'sip:bob@xmpp.example.org' });
    expect(headerValue(err.partial as SipRequest, 'Via')).toBe(REQUEST_HEADERS['Via']);
    expect(headerValue(err.partial as SipRequest, 'CSeq')).toBe('1 MESSAGE');
  });

  it('keeps the headers of a request with another SIP version, for the 505 answer', () => {
    const err = parseError(raw(['MESSAGE sip:bob@x.example SIP/3.0', ...messageLines().slice(1)]));
    expect(headerValue(err.partial as SipRequest, 'Call-ID')).toBe(REQUEST_HEADERS['Call-ID']);
  });

  it('keeps the headers read before a bad line', () => {
    const err = parseError(raw([...messageLines().slice(0, 3), 'broken line', ...messageLines().slice(3)]));
    expect((err.partial as SipRequest).headers.map((h) => h.name)).toEqual(['Via', 'Max-Forwards']);
  });

  it('gives no partial request for a response', () => {
    expect(parseError(raw(responseLines(['CSeq']))).partial).toBeUndefined();
  });

  it('is a BridgeError carrying the SIP status', () => {
    const err = parseError(raw(messageLines(['To'])));
    expect(err).toMatchObject({ code: 'SIP_MALFORMED', sipStatus: 400, condition: 'bad-request' });
  });
});

describe('parseCSeq', () => {
  it.each([
    ['1 MESSAGE', 1, 'MESSAGE'],
    ['2147483647\tNOTIFY', 2147483647, 'NOTIFY'],
    ['0  SUBSCRIBE', 0, 'SUBSCRIBE'],
  ])('reads %j', (value, seq, method) => {
    expect(parseCSeq(value)).toEqual({ seq, method });
  });

  it.each(['', 'MESSAGE', '1', '1MESSAGE', '-1 MESSAGE', '1 MESS AGE', '12345678901 MESSAGE'])('rejects %j', (value) => {
    expect(() => parseCSeq(value)).toThrow(SipParseError);
  });
});

describe('isKeepAlive', () => {
  it.each([
    ['\r\n\r\n', true],
    ['\r\n', true],
    ['', false],
    ['\r\nOPTIONS', false],
  ])('%j is a keep-alive: %s', (text, expected) => {
    expect(isKeepAlive(Buffer.from(text))).toBe(expected);
  });
});

describe('parseMessage on hostile input', () => {
  const valid = raw(messageLines([], ['Content-Length: 5']), 'hello');

  function onlySipParseErrors(data: Buffer): boolean {
    try {
      parseMessage(data);
      return true;
    } catch (err) {
      return err instanceof SipParseError;
    }
  }

  it('throws nothing but SipParseError on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => onlySipParseErrors(Buffer.from(bytes))), {
      numRuns: 2000,
    });
  });

  it('throws nothing but SipParseError on a valid message with bytes changed', () => {
    const edit = fc.record({ at: fc.nat(valid.length - 1), byte: fc.integer({ min: 0, max: 255 }) });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 8 }), (edits) => {
        const copy = Buffer.from(valid);
        for (const e of edits) copy[e.at] = e.byte;
        return onlySipParseErrors(copy);
      }),
      { numRuns: 2000 },
    );
  });

  it('throws nothing but SipParseError on a valid message cut anywhere', () => {
    fc.assert(fc.property(fc.nat(valid.length), (cut) => onlySipParseErrors(valid.subarray(0, cut))), { numRuns: 500 });
  });
});
