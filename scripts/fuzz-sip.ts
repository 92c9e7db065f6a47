/**
 * The long run of the SIP fuzzer (test/integration/sip-fuzz.test.ts runs 1,800 mutations in the
 * test suite): COUNT mutated requests (default 100,000, SEED default 1) at a live SIP adapter
 * over UDP on loopback, paced so the kernel buffer keeps up, then checks it still answers, and
 * prints the count, the time, the RSS before and after, and the live transactions.
 *
 *   npx tsx scripts/fuzz-sip.ts            COUNT=200000 SEED=9 npx tsx scripts/fuzz-sip.ts
 */
import { SipAdapter } from '../src/adapters/sip/adapter.js';
import { sipSchema } from '../src/config/schema.js';
import { silentLogger } from '../src/telemetry/logger.js';
import { SIP_CORPUS } from '../test/fixtures/fuzz/sip-corpus.js';
import { newBranch, RawUdpPeer, rawRequest, statusOf } from '../test/support/raw-sip.js';
import { mutations } from '../test/support/sip-mutations.js';

const count = Number(process.env['COUNT'] ?? 100_000);
const seed = Number(process.env['SEED'] ?? 1);
const config = sipSchema.parse({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], timers: { t1Ms: 50, t2Ms: 200, t4Ms: 250 } });
let events = 0;
const adapter = new SipAdapter(config, { onEvent: () => ((events += 1), Promise.resolve()) }, silentLogger());
await adapter.start();
const port = adapter.boundPorts()[0]!.port;
const peer = await RawUdpPeer.open();
const rss0 = process.memoryUsage().rss;
const t0 = performance.now();
let sent = 0;
for (const datagram of mutations(SIP_CORPUS, { seed, count })) {
  await peer.send(datagram, port);
  sent++;
  // Let the adapter read what is queued every 50 datagrams (one event loop turn).
  if (sent % 50 === 0) await new Promise((r) => setImmediate(r));
  if (sent % 10_000 === 0) process.stderr.write(`\r${sent}/${count} sent, rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
}
const seconds = (performance.now() - t0) / 1000;
const probe = await RawUdpPeer.open();
const options = rawRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', branch: newBranch(), contentType: null });
let answered: number | undefined;
for (let i = 0; i < 40 && answered === undefined; i++) {
  await probe.send(options, port);
  answered = await probe.next(500).then(statusOf, () => undefined);
}
const rss1 = process.memoryUsage().rss;
process.stderr.write('\n');
console.log(
  JSON.stringify({
    seed,
    sent,
    seconds: Number(seconds.toFixed(1)),
    perSecond: Math.round(sent / seconds),
    crashes: 0,
    eventsHandedToCore: events,
    optionsAfter: answered ?? 'no answer',
    rssMBBefore: Math.round(rss0 / 1e6),
    rssMBAfter: Math.round(rss1 / 1e6),
    liveTransactions: adapter.transactionCounts,
  }),
);
await peer.close();
await probe.close();
await adapter.stop();
