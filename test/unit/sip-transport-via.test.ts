/**
 * Via stamping of received requests (RFC 3261 §18.2.1, RFC 3581 §4) and where responses go
 * (RFC 3261 §18.2.2 with the RFC 3581 rport step).
 */
import { describe, expect, it } from 'vitest';
import type { SipRequest } from '../../src/adapters/sip/codec/message.js';
import { parseVia } from '../../src/adapters/sip/codec/uri.js';
import { responseDestination, stampReceived, topVia } from '../../src/adapters/sip/transport/via.js';

function withVia(...values: string[]): SipRequest {
  return {
    kind: 'request',
    method: 'MESSAGE',
    uri: 'sip:bob@example.org',
    headers: [...values.map((value) => ({ name: 'Via', value })), { name: 'CSeq', value: '1 MESSAGE' }],
    body: Buffer.alloc(0),
  };
}

describe('stampReceived', () => {
  it.each([
    {
      name: 'sent-by equals the source, no rport: unchanged params',
      via: 'SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKa',
      source: { host: '192.0.2.4', port: 5060 },
      params: { branch: 'z9hG4bKa' },
    },
    {
      name: 'sent-by differs from the source: received added (§18.2.1)',
      via: 'SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKa',
      source: { host: '192.0.2.4', port: 5060 },
      params: { branch: 'z9hG4bKa', received: '192.0.2.4' },
    },
    {
      name: 'empty rport: filled with the source port and received always added (RFC 3581 §4)',
      via: 'SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKa',
      source: { host: '10.1.1.1', port: 9988 },
      params: { rport: '9988', branch: 'z9hG4bKa', received: '10.1.1.1' },
    },
    {
      name: 'IPv6 sent-by equal to the source in brackets: nothing added',
      via: 'SIP/2.0/UDP [::1]:5060;branch=z9hG4bKa',
      source: { host: '::1', port: 5060 },
      params: { branch: 'z9hG4bKa' },
    },
  ])('$name', ({ via, source, params }) => {
    const stamped = topVia(stampReceived(withVia(via), source));
    expect({ ...stamped?.params }).toEqual(params);
  });

  it('only the top Via value is touched, the others keep their order', () => {
    const req = withVia('SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/UDP b.example;branch=z9hG4bK0', 'SIP/2.0/TCP c.example;branch=z9hG4bKc');
    const stamped = stampReceived(req, { host: '192.0.2.7', port: 1 });
    const vias = stamped.headers.filter((h) => h.name === 'Via').flatMap((h) => parseVia(h.value));
    expect(vias.map((v) => [v.host, v.params['received']])).toEqual([
      ['a.example', '192.0.2.7'],
      ['b.example', undefined],
      ['c.example', undefined],
    ]);
  });
});

describe('responseDestination', () => {
  it.each([
    { via: 'SIP/2.0/UDP 10.1.1.1:4540;rport=9988;received=192.0.2.1;branch=z9hG4bKa', to: { host: '192.0.2.1', port: 9988 } },
    { via: 'SIP/2.0/UDP bobspc.biloxi.com:5070;received=192.0.2.4;branch=z9hG4bKa', to: { host: '192.0.2.4', port: 5070 } },
    { via: 'SIP/2.0/UDP bobspc.biloxi.com;received=192.0.2.4;branch=z9hG4bKa', to: { host: '192.0.2.4', port: 5060 } },
    { via: 'SIP/2.0/UDP 192.0.2.4:5080;branch=z9hG4bKa', to: { host: '192.0.2.4', port: 5080 } },
    { via: 'SIP/2.0/UDP [::1]:5080;branch=z9hG4bKa', to: { host: '::1', port: 5080 } },
    { via: 'SIP/2.0/UDP 192.0.2.4:5080;rport;branch=z9hG4bKa', to: { host: '192.0.2.4', port: 5080 } },
  ])('$via → $to.host:$to.port', ({ via, to }) => {
    expect(responseDestination(parseVia(via)[0]!)).toEqual(to);
  });
});
