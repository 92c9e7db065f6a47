/**
 * One XMPP user's presence change fanned out to N SIP watchers through the SIP adapter's
 * notifier: N NOTIFYs over UDP on loopback, each answered 200 by one socket playing all the
 * watchers. Also the heap held per active subscription (memory store, records + indexes).
 *
 *   npm run bench:presence   (node --expose-gc --import tsx bench/presence-fanout.bench.ts 1000 10000)
 */
import { createSocket } from 'node:dgram';
import { SipAdapter } from '../src/adapters/sip/adapter.js';
import { sipSchema } from '../src/config/schema.js';
import { presenceEvent, subscriptionEvent, type Address } from '../src/core/events.js';
import { MemorySubscriptionStore } from '../src/core/state/memory-subscriptions.js';
import { silentLogger } from '../src/telemetry/logger.js';

const JULIET: Address = { side: 'sip', user: 'juliet', domain: 'xmpp.example.org' };
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const heap = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(n: number): Promise<void> {
  const store = new MemorySubscriptionStore({ maxRecords: n + 10 });
  const config = sipSchema.parse({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 } });
  const adapter = new SipAdapter(config, { onEvent: () => Promise.resolve() }, silentLogger(), { subscriptions: store });
  await adapter.start();
  const port = adapter.boundPorts()[0]!.port;

  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const me = sock.address().port;
  let ok200 = 0;
  const answered = new Set<string>();
  let notifies = 0;
  let marked = 0;
  sock.on('message', (buf) => {
    const text = buf.toString('utf8');
    if (text.startsWith('SIP/2.0 200')) {
      const callId = /^Call-ID: (.*)$/m.exec(text)?.[1] ?? '';
      if (!answered.has(callId)) ok200++;
      answered.add(callId);
      return;
    }
    if (!text.startsWith('NOTIFY ')) return;
    notifies++;
    if (text.includes('fanout-mark')) marked++;
    const copy = ['Via', 'From', 'To', 'Call-ID', 'CSeq'].map((h) => new RegExp(`^${h}: .*$`, 'm').exec(text)?.[0]).join('\r\n');
    sock.send(`SIP/2.0 200 OK\r\n${copy}\r\nContent-Length: 0\r\n\r\n`, port, '127.0.0.1');
  });
  const subscribe = (i: number): void => {
    const lines = [
      'SUBSCRIBE sip:juliet@xmpp.example.org SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bKb${i};rport`,
      'Max-Forwards: 70',
      `From: <sip:w${i}@corp.example>;tag=t${i}`,
      'To: <sip:juliet@xmpp.example.org>',
      `Call-ID: bench-${i}@127.0.0.1`,
      'CSeq: 1 SUBSCRIBE',
      `Contact: <sip:w${i}@127.0.0.1:${me}>`,
      'Event: presence',
      'Expires: 3600',
      'Content-Length: 0',
      '',
      '',
    ];
    sock.send(lines.join('\r\n'), port, '127.0.0.1');
  };

  const before = heap();
  const progress = setInterval(() => console.error({ ok200, notifies, marked }), 2000);
  // Batches of 50, each SUBSCRIBE sent again (same branch: a retransmission) until answered.
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, (_, k) => i + k);
    for (let round = 0; batch.some((j) => !answered.has(`bench-${j}@127.0.0.1`)); round++) {
      if (round > 100) throw new Error('SUBSCRIBEs not answered');
      for (const j of batch) if (!answered.has(`bench-${j}@127.0.0.1`)) subscribe(j);
      await wait(100);
    }
  }
  const watchers = (i: number): Address => ({ side: 'sip', user: `w${i}`, domain: 'corp.example' });
  const event = (kind: 'approve' | 'presence', i: number, note = ''): Parameters<SipAdapter['send']>[0] =>
    kind === 'approve'
      ? subscriptionEvent({ origin: 'xmpp', from: JULIET, to: watchers(i), action: 'approve', dedupeKey: `a${i}`, createdAt: Date.now() })
      : presenceEvent({ origin: 'xmpp', from: { ...JULIET, resource: 'desk' }, to: watchers(i), availability: 'away', note, dedupeKey: `p${i}`, createdAt: Date.now() });
  await Promise.all(Array.from({ length: n }, (_, i) => adapter.send(event('approve', i))));
  await wait(64 * 100 + 1500); // server and client transactions of the set-up run out (Timer J/K)
  const held = heap() - before;

  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: n }, (_, i) => adapter.send(event('presence', i, 'fanout-mark'))));
  while (marked < n) await wait(1);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `${n} watchers: ${n} NOTIFYs in ${ms.toFixed(0)} ms = ${((n / ms) * 1000).toFixed(0)} NOTIFY/s ` +
      `(CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms); heap per active subscription ≈ ${(held / n).toFixed(0)} B ` +
      `(records ${await store.size()}, NOTIFYs seen ${notifies})`,
  );
  clearInterval(progress);
  await adapter.stop();
  sock.close();
}

for (const n of process.argv.slice(2).map(Number)) await run(n);
