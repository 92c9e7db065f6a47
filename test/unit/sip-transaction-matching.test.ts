/**
 * Matching of requests to server transactions (RFC 3261 §17.2.3) and of responses to client
 * transactions (§17.1.3), on messages parsed by the real codec.
 */
import { describe, expect, it } from 'vitest';
import type { SipRequest, SipResponse } from '../../src/adapters/sip/codec/message.js';
import { parseMessage } from '../../src/adapters/sip/codec/parse.js';
import { clientKey, serverKey, TransactionLayer } from '../../src/adapters/sip/transaction/layer.js';
import type { ReceivedFrom } from '../../src/adapters/sip/transport/transport.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { ManualScheduler } from '../support/manual-scheduler.js';

function request(opts: { method?: string; via?: string; cseq?: string; fromTag?: string } = {}): SipRequest {
  const method = opts.method ?? 'MESSAGE';
  const text = [
    `${method} sip:bob@example.org SIP/2.0`,
    `Via: ${opts.via ?? 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-one'}`,
    'Max-Forwards: 70',
    `From: <sip:alice@example.com>;tag=${opts.fromTag ?? 'f1'}`,
    'To: <sip:bob@example.org>',
    'Call-ID: call-1@192.0.2.1',
    `CSeq: ${opts.cseq ?? `1 ${method}`}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const msg = parseMessage(Buffer.from(text));
  if (msg.kind !== 'request') throw new Error('expected a request');
  return msg;
}

function response(status: number, via: string, cseq: string): SipResponse {
  const text = [
    `SIP/2.0 ${status} Whatever`,
    `Via: ${via}`,
    'From: <sip:alice@example.com>;tag=f1',
    'To: <sip:bob@example.org>;tag=t1',
    'Call-ID: call-1@192.0.2.1',
    `CSeq: ${cseq}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const msg = parseMessage(Buffer.from(text));
  if (msg.kind !== 'response') throw new Error('expected a response');
  return msg;
}

const BASE = request();

describe('server transaction matching (RFC 3261 §17.2.3)', () => {
  it.each([
    { name: 'an exact retransmission', other: request(), same: true },
    { name: 'the same branch from another sent-by', other: request({ via: 'SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-one' }), same: false },
    { name: 'the same branch and sent-by with another port', other: request({ via: 'SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-one' }), same: false },
    { name: 'another branch', other: request({ via: 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-two' }), same: false },
    { name: 'another method with the same branch', other: request({ method: 'OPTIONS' }), same: false },
    { name: 'a received= added by the transport', other: request({ via: 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-one;received=10.0.0.1' }), same: true },
  ])('$name matches: $same', ({ other, same }) => {
    expect(serverKey(other) === serverKey(BASE)).toBe(same);
  });

  it('an ACK matches the INVITE transaction with its branch', () => {
    expect(serverKey(request({ method: 'ACK', cseq: '1 ACK' }))).toBe(serverKey(request({ method: 'INVITE' })));
  });

  it.each([
    { name: 'an exact retransmission', other: request({ via: 'SIP/2.0/UDP 192.0.2.1:5060' }), same: true },
    { name: 'another CSeq', other: request({ via: 'SIP/2.0/UDP 192.0.2.1:5060', cseq: '2 MESSAGE' }), same: false },
    { name: 'another From tag', other: request({ via: 'SIP/2.0/UDP 192.0.2.1:5060', fromTag: 'f2' }), same: false },
  ])('RFC 2543 request without magic cookie: $name matches: $same', ({ other, same }) => {
    const legacy = request({ via: 'SIP/2.0/UDP 192.0.2.1:5060' });
    expect(serverKey(other) === serverKey(legacy)).toBe(same);
  });
});

describe('client transaction matching (RFC 3261 §17.1.3)', () => {
  const via = 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-out;rport=5060;received=127.0.0.1';
  const sent = request({ via: 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-out;rport' });
  it.each([
    { name: 'same branch and CSeq method', res: response(202, via, '1 MESSAGE'), same: true },
    { name: 'same branch, CSeq method CANCEL', res: response(200, via, '1 CANCEL'), same: false },
    { name: 'another branch', res: response(202, 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-x', '1 MESSAGE'), same: false },
  ])('$name matches: $same', ({ res, same }) => {
    expect(clientKey(res) === clientKey(sent)).toBe(same);
  });
});

describe('transaction layer', () => {
  const from: ReceivedFrom = { transport: 'udp', remote: { host: '192.0.2.1', port: 5060 }, local: { host: '127.0.0.1', port: 5060 } };

  function layer(overrides: Partial<ConstructorParameters<typeof TransactionLayer>[0]> = {}) {
    const delivered: SipRequest[] = [];
    const responses: number[] = [];
    const acks: SipRequest[] = [];
    const l = new TransactionLayer({
      timers: { t1Ms: 500, t2Ms: 4000, t4Ms: 5000 },
      scheduler: new ManualScheduler(),
      transport: {
        sendRequest: () => Promise.resolve(),
        sendResponse: (r) => {
          responses.push(r.status);
          return Promise.resolve();
        },
      },
      logger: silentLogger(),
      onRequest: (req, tx) => {
        delivered.push(req);
        tx.respond({ kind: 'response', status: 202, reason: 'Accepted', headers: req.headers, body: Buffer.alloc(0) });
      },
      onAck: (req) => acks.push(req),
      maxServerTransactions: 2,
      ...overrides,
    });
    return { l, delivered, responses, acks };
  }

  it('given a request was answered, when it is retransmitted, then the user sees it once and the answer is repeated', () => {
    const { l, delivered, responses } = layer();
    l.receive(BASE, from);
    l.receive(request(), from);
    expect(delivered).toHaveLength(1);
    expect(responses).toEqual([202, 202]);
  });

  it('given an ACK without an INVITE transaction, then it goes to onAck and gets no response', () => {
    const { l, delivered, responses, acks } = layer();
    l.receive(request({ method: 'ACK', cseq: '1 ACK' }), from);
    expect(acks).toHaveLength(1);
    expect(delivered).toHaveLength(0);
    expect(responses).toEqual([]);
  });

  it('given the server transaction table is full, then a new request goes to onOverload, not the user', () => {
    const overloaded: string[] = [];
    const { l: full, delivered } = layer({ onOverload: (req) => overloaded.push(req.method) });
    full.receive(request({ via: 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-a' }), from);
    full.receive(request({ via: 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-b' }), from);
    full.receive(request({ via: 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-c' }), from);
    expect(delivered).toHaveLength(2);
    expect(overloaded).toEqual(['MESSAGE']);
  });

  it('given a client transaction, when its response and a stray one arrive, then only the matching one is delivered', () => {
    const { l } = layer();
    const finals: number[] = [];
    const out = request({ via: 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-out;rport' });
    l.request(out, { transport: 'udp', host: '192.0.2.1', port: 5060 }, {
      onFinal: (r) => finals.push(r.status),
      onTimeout: () => finals.push(-1),
      onTransportError: () => finals.push(-2),
    });
    l.receive(response(486, 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-other', '1 MESSAGE'), from);
    l.receive(response(202, 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-out;rport=5060', '1 MESSAGE'), from);
    expect(finals).toEqual([202]);
  });
});
