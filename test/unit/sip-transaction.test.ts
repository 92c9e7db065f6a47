/**
 * Non-INVITE client and server transactions (RFC 3261 §17.1.2, §17.2.2) driven on a manual
 * clock: every timer is walked in virtual time, nothing waits.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { SipRequest, SipResponse } from '../../src/adapters/sip/codec/message.js';
import { NonInviteClientTransaction } from '../../src/adapters/sip/transaction/client.js';
import { NonInviteServerTransaction } from '../../src/adapters/sip/transaction/server.js';
import type { TimerValues } from '../../src/adapters/sip/transaction/timers.js';
import { ManualScheduler } from '../support/manual-scheduler.js';

const DEFAULTS: TimerValues = { t1Ms: 500, t2Ms: 4000, t4Ms: 5000 };

const REQUEST: SipRequest = {
  kind: 'request',
  method: 'MESSAGE',
  uri: 'sip:bob@example.org',
  headers: [
    { name: 'Via', value: 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc;rport' },
    { name: 'CSeq', value: '1 MESSAGE' },
  ],
  body: Buffer.alloc(0),
};

function response(status: number): SipResponse {
  return { kind: 'response', status, reason: 'R', headers: REQUEST.headers, body: Buffer.alloc(0) };
}

/** Lets promise callbacks (the transport's send results) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function client(opts: { reliable?: boolean; timers?: TimerValues; send?: () => Promise<void> } = {}) {
  const clock = new ManualScheduler();
  const sentAt: number[] = [];
  const told: string[] = [];
  const tx = new NonInviteClientTransaction({
    request: REQUEST,
    reliable: opts.reliable ?? false,
    timers: opts.timers ?? DEFAULTS,
    scheduler: clock,
    send: () => {
      sentAt.push(clock.now);
      return opts.send ? opts.send() : Promise.resolve();
    },
    user: {
      onProvisional: (r) => told.push(`provisional ${r.status}`),
      onFinal: (r) => told.push(`final ${r.status}`),
      onTimeout: () => told.push('timeout'),
      onTransportError: (_err, sentBefore) => told.push(`transport-error sentBefore=${sentBefore}`),
      onTerminated: () => told.push('terminated'),
    },
  });
  return { clock, tx, sentAt, told };
}

/** RFC 3261 §17.1.2.2 read directly: intervals T1, 2·T1, 4·T1, … capped at T2, until 64·T1. */
function expectedSendTimes(t: TimerValues): number[] {
  const times = [0];
  let interval = t.t1Ms;
  for (let at = interval; at < 64 * t.t1Ms; at += interval) {
    times.push(at);
    interval = Math.min(2 * interval, t.t2Ms);
  }
  return times;
}

describe('non-INVITE client transaction (RFC 3261 §17.1.2)', () => {
  it.each([
    { name: 'RFC defaults', timers: DEFAULTS, firstTimes: [0, 500, 1500, 3500, 7500, 11500] },
    { name: 'shortened for tests', timers: { t1Ms: 10, t2Ms: 40, t4Ms: 50 }, firstTimes: [0, 10, 30, 70, 110, 150] },
  ])('given UDP with $name, when no response comes, then Timer E retransmits at T1 doubling to T2', ({ timers, firstTimes }) => {
    const { clock, tx, sentAt } = client({ timers });
    tx.start();
    clock.advance(64 * timers.t1Ms - 1);
    expect(sentAt.slice(0, firstTimes.length)).toEqual(firstTimes);
    expect(sentAt).toEqual(expectedSendTimes(timers));
  });

  it('given UDP, when Timer F fires, then the user hears one timeout and nothing more is sent', () => {
    const { clock, tx, sentAt, told } = client();
    tx.start();
    clock.advance(64 * DEFAULTS.t1Ms);
    const sends = sentAt.length;
    clock.advance(60_000);
    expect(told).toEqual(['terminated', 'timeout']);
    expect(tx.state).toBe('terminated');
    expect(sentAt.length).toBe(sends);
    expect(clock.armed).toBe(0);
  });

  it('given a provisional response, when Timer E fires in Proceeding, then it retransmits every T2', () => {
    const { clock, tx, sentAt } = client();
    tx.start();
    clock.advance(100);
    tx.receiveResponse(response(100));
    expect(tx.state).toBe('proceeding');
    clock.advance(400); // first Timer E at T1 (armed in Trying) now fires in Proceeding
    clock.advance(3 * DEFAULTS.t2Ms);
    expect(sentAt).toEqual([0, 500, 4500, 8500, 12500]);
  });

  it('given a final response, then the user hears it once and retransmissions of it are absorbed', () => {
    const { clock, tx, told } = client();
    tx.start();
    tx.receiveResponse(response(202));
    tx.receiveResponse(response(202));
    tx.receiveResponse(response(500));
    expect(told).toEqual(['final 202']);
    expect(tx.state).toBe('completed');
    clock.advance(DEFAULTS.t4Ms - 1);
    expect(tx.state).toBe('completed');
    clock.advance(1); // Timer K = T4 on UDP
    expect(tx.state).toBe('terminated');
    expect(told).toEqual(['final 202', 'terminated']);
  });

  it('given TCP, then nothing is retransmitted and a final response terminates at once (Timer K = 0)', () => {
    const { clock, tx, sentAt, told } = client({ reliable: true });
    tx.start();
    clock.advance(10 * DEFAULTS.t1Ms);
    expect(sentAt).toEqual([0]);
    tx.receiveResponse(response(404));
    expect(told).toEqual(['final 404', 'terminated']);
  });

  it('given TCP and no answer, when Timer F fires, then the user hears a timeout', () => {
    const { clock, tx, told } = client({ reliable: true });
    tx.start();
    clock.advance(64 * DEFAULTS.t1Ms);
    expect(told).toEqual(['terminated', 'timeout']);
  });

  it('given the first send fails, then the user hears a transport error with nothing sent before', async () => {
    const { tx, told } = client({ reliable: true, send: () => Promise.reject(new Error('ECONNREFUSED')) });
    tx.start();
    await settle();
    expect(told).toEqual(['terminated', 'transport-error sentBefore=false']);
  });

  it('given a retransmission fails after a first copy left, then the transport error says something was sent', async () => {
    let calls = 0;
    const { clock, tx, told } = client({ send: () => (++calls === 1 ? Promise.resolve() : Promise.reject(new Error('EHOSTUNREACH'))) });
    tx.start();
    await settle();
    clock.advance(DEFAULTS.t1Ms);
    await settle();
    expect(told).toEqual(['terminated', 'transport-error sentBefore=true']);
  });

  it('property: retransmission intervals never shrink, never exceed T2, and stop by Timer F', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 2000 }), (t1Ms, t2Extra) => {
        const timers = { t1Ms, t2Ms: t1Ms + t2Extra, t4Ms: 1 };
        const { clock, tx, sentAt, told } = client({ timers });
        tx.start();
        clock.advance(64 * t1Ms + timers.t2Ms);
        const gaps = sentAt.slice(1).map((at, i) => at - sentAt[i]!);
        expect(gaps[0]).toBe(t1Ms);
        for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]!);
        for (const g of gaps) expect(g).toBeLessThanOrEqual(timers.t2Ms);
        expect(sentAt.every((at) => at < 64 * t1Ms)).toBe(true);
        expect(told).toEqual(['terminated', 'timeout']);
      }),
      { numRuns: 200 },
    );
  });
});

function server(opts: { reliable?: boolean } = {}) {
  const clock = new ManualScheduler();
  const sent: number[] = [];
  let terminated = 0;
  const tx = new NonInviteServerTransaction({
    reliable: opts.reliable ?? false,
    timers: DEFAULTS,
    scheduler: clock,
    send: (r) => {
      sent.push(r.status);
      return Promise.resolve();
    },
    onTerminated: () => terminated++,
  });
  return { clock, tx, sent, terminated: () => terminated };
}

describe('non-INVITE server transaction (RFC 3261 §17.2.2)', () => {
  it('given Trying, when the request is retransmitted, then it is absorbed without an answer', () => {
    const { tx, sent } = server();
    tx.receiveRetransmission();
    tx.receiveRetransmission();
    expect(sent).toEqual([]);
    expect(tx.retransmissions).toEqual({ absorbed: 2, answered: 0 });
  });

  it('given Proceeding, when the request is retransmitted, then the last provisional is sent again', () => {
    const { tx, sent } = server();
    tx.respond(response(100));
    tx.receiveRetransmission();
    expect(tx.state).toBe('proceeding');
    expect(sent).toEqual([100, 100]);
  });

  it('given Completed, when the request is retransmitted, then the final response is sent again', () => {
    const { tx, sent } = server();
    tx.respond(response(202));
    tx.receiveRetransmission();
    tx.receiveRetransmission();
    expect(sent).toEqual([202, 202, 202]);
    expect(tx.retransmissions).toEqual({ absorbed: 0, answered: 2 });
  });

  it('given Completed, when the user passes another final response, then it is discarded', () => {
    const { tx, sent } = server();
    tx.respond(response(202));
    tx.respond(response(500));
    tx.receiveRetransmission();
    expect(sent).toEqual([202, 202]);
  });

  it('given UDP, then the transaction stays Completed until Timer J (64·T1) and then ends', () => {
    const { clock, tx, terminated } = server();
    tx.respond(response(202));
    clock.advance(64 * DEFAULTS.t1Ms - 1);
    expect(tx.state).toBe('completed');
    clock.advance(1);
    expect(tx.state).toBe('terminated');
    expect(terminated()).toBe(1);
  });

  it('given TCP, then a final response ends the transaction at once (Timer J = 0)', () => {
    const { tx, terminated } = server({ reliable: true });
    tx.respond(response(202));
    expect(tx.state).toBe('terminated');
    expect(terminated()).toBe(1);
  });

  it('given sending the response fails, then the transaction ends and reports the error', async () => {
    const errors: string[] = [];
    const tx = new NonInviteServerTransaction({
      reliable: false,
      timers: DEFAULTS,
      scheduler: new ManualScheduler(),
      send: () => Promise.reject(new Error('EPIPE')),
      onTransportError: (e) => errors.push(e.message),
    });
    tx.respond(response(202));
    await settle();
    expect(tx.state).toBe('terminated');
    expect(errors).toEqual(['EPIPE']);
  });
});
