/**
 * Federation over real TLS, the whole bridge (issue 6, "How it is shown"): `createBridge` with a
 * config naming three SIP partners, Prosody with its users behind the component, and the
 * partners on loopback with certificates made for the run:
 *
 * - acme (direct): Kamailio as its edge proxy, relaying its users' MESSAGEs (sipp over UDP) to
 *   the bridge over mutual TLS; a Node TLS client with the same certificate for the rest;
 * - beta (direct, 5 msg/s, burst 10): a Node TLS client that floods;
 * - hub (clearinghouse for one.example and two.example): a Node TLS client inbound, and a TLS
 *   listener the test runs as its `nextHop` for what the bridge sends to its members.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import xml, { type Element } from '@xmpp/xml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge, type BridgeWithIdentities } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { startKamailioTls, type KamailioTls } from '../support/kamailio-tls.js';
import { freePort, waitFor } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { header, newBranch, RawUdpPeer, statusOf } from '../support/raw-sip.js';
import { startSipp } from '../support/sipp.js';
import { createTestCa, type IssuedCert, type TestCa } from '../support/test-ca.js';
import { connectUser, type TestUser } from '../support/xmpp-client.js';
import { recordingLogger } from '../support/recording-logger.js';
import { answerTo, SipTlsPeer, sipFramer } from '../support/sip-tls-peer.js';

const XMPP_DOMAIN = 'xmpp.test';
const COMPONENT = 'sip.xmpp.test';
const BETA_LIMITS = { messagesPerSecond: 5, burst: 10 };
/** Bodies carry it, so a stanza from another file's run can never be mistaken for ours. */
const RUN = randomBytes(4).toString('hex');

let ca: TestCa;
let rogue: TestCa;
/** The bridge's server certificate: the name `localhost`, what the partners dial. */
let bridgeCert: IssuedCert;
/** acme's edge: DNS name sip.acme.example (its RFC 5922 identity, no sip: URI given). */
let acmeCert: IssuedCert;
/** beta: the SIP domain identity sip:beta.example (RFC 5922 §7.1). */
let betaCert: IssuedCert;
/** The clearinghouse: hub.example, and localhost for its listener, which the bridge dials by that name. */
let hubCert: IssuedCert;
/** Signed by our CA, but for a name no partner has. */
let strangerCert: IssuedCert;
/** acme's name, signed by another CA. */
let impostorCert: IssuedCert;

let prosody: Prosody;
let kamailio: KamailioTls;
/** The same edge proxy with acme's name on a certificate from another CA. */
let rogueKamailio: KamailioTls;
let bridge: BridgeWithIdentities;
let hub: HubListener;
let juliet: TestUser;
let romeo: TestUser;
let nora: TestUser;
let bridgePort: number;
let identitiesDir: string;
const log = recordingLogger();

beforeAll(async () => {
  ca = createTestCa('Federation Test CA');
  rogue = createTestCa('Rogue CA');
  bridgeCert = ca.issue('bridge', { cn: 'localhost', dns: ['localhost'] });
  acmeCert = ca.issue('acme', { cn: 'sip.acme.example', dns: ['sip.acme.example'] });
  betaCert = ca.issue('beta', { cn: 'beta', uris: ['sip:beta.example'] });
  hubCert = ca.issue('hub', { cn: 'hub.example', dns: ['hub.example', 'localhost'] });
  strangerCert = ca.issue('stranger', { cn: 'stranger', uris: ['sip:stranger.example'] });
  impostorCert = rogue.issue('impostor', { cn: 'sip.acme.example', dns: ['sip.acme.example'] });

  prosody = await startProsody({
    domain: XMPP_DOMAIN,
    component: COMPONENT,
    users: { juliet: 'juliet-pass', romeo: 'romeo-pass', nora: 'nora-pass' },
  });
  hub = await HubListener.start(hubCert);
  bridgePort = await freePort();
  identitiesDir = await mkdtemp(join(tmpdir(), 'federation-tls-'));
  const identities = join(identitiesDir, 'people.csv');
  // Both numbers name nora: only the owned range tells them apart.
  await writeFile(identities, `e164,sip,xmpp\n+15551230001,sip:nora@corp.example,nora@${XMPP_DOMAIN}\n+15559990000,sip:nora2@corp.example,nora@${XMPP_DOMAIN}\n`);

  const config = parseConfig({
    sip: {
      listen: [{ transport: 'tls', host: '127.0.0.1', port: bridgePort }],
      advertisedHost: 'localhost',
      timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
      tls: { cert: bridgeCert.certFile, key: bridgeCert.keyFile, ca: ca.caFile, requireClientCert: true },
    },
    xmpp: {
      component: prosody.component,
      server: { host: prosody.host, port: prosody.componentPort },
      secret: prosody.secret,
      reconnect: { initialMs: 100, maxMs: 1000 },
    },
    mapping: {
      xmppDomains: [prosody.domain],
      sipDomains: ['corp.example'],
      ownNumbers: ['+1555123'],
      sources: [{ type: 'static', file: identities }],
    },
    queue: { maxAttempts: 3, backoffMs: 100 },
    federation: {
      mode: 'closed',
      partners: [
        { name: 'acme', model: 'direct', side: 'sip', domains: ['acme.example'], trust: { certificateNames: ['sip.acme.example'] }, limits: { messagesPerSecond: 100, burst: 100 } },
        { name: 'beta', model: 'direct', side: 'sip', domains: ['beta.example'], trust: { certificateNames: ['beta.example'] }, limits: BETA_LIMITS },
        {
          name: 'hub',
          model: 'clearinghouse',
          side: 'sip',
          domains: ['hub.example'],
          members: ['one.example', 'two.example'],
          trust: { certificateNames: ['hub.example'] },
          nextHop: `sips:localhost:${hub.port}`,
        },
      ],
    },
  });
  bridge = createBridge(config, log.logger);
  await bridge.start();
  const toBridge = `sip:127.0.0.1:${bridgePort};transport=tls`;
  kamailio = await startKamailioTls({ cert: acmeCert, caFile: ca.caFile, target: toBridge });
  rogueKamailio = await startKamailioTls({ cert: impostorCert, caFile: ca.caFile, target: toBridge, frTimerMs: 2000 });
  const [j, r, n] = prosody.users;
  juliet = await connectUser(prosody, j!);
  romeo = await connectUser(prosody, r!);
  nora = await connectUser(prosody, n!);
});

afterAll(async () => {
  await juliet?.stop();
  await romeo?.stop();
  await nora?.stop();
  await kamailio?.stop();
  await rogueKamailio?.stop();
  await bridge?.stop();
  await hub?.stop();
  await prosody?.stop();
  if (identitiesDir !== undefined) await rm(identitiesDir, { recursive: true, force: true });
  ca?.remove();
  rogue?.remove();
});

// ---------------------------------------------------------------------------------------------
// Helpers



interface Outgoing {
  method?: string;
  /** `user@domain` of the sender. */
  from: string;
  /** `user@domain` of the recipient (To), and the Request-URI unless `uri` is given. */
  to: string;
  uri?: string;
  body?: string;
  /** The top Via's transport and port; default TLS from port 9 (answers come back on the connection). */
  via?: { transport: 'UDP' | 'TLS'; port: number };
}

/** A partner's TLS connection to the bridge, with its client certificate. */
class PartnerConnection extends SipTlsPeer {
  static open(cert: IssuedCert): Promise<PartnerConnection> {
    return SipTlsPeer.connect({ port: bridgePort, ca: ca.caCert, cert: cert.cert, key: cert.key }, (socket) => new PartnerConnection(socket));
  }

  /** Sends a request; resolves with its final response (a 1xx is skipped). */
  send(o: Outgoing, timeoutMs = 15_000): Promise<string> {
    return this.request(requestText(o).text, timeoutMs);
  }
}

/** The ACK for a non-2xx final response to an INVITE: its Via, From, To (with tag) and Call-ID, CSeq method ACK. */
function ackFor(uri: string, response: string): string {
  const head = response.slice(0, response.indexOf('\r\n\r\n')).split('\r\n').slice(1);
  const copied = head.filter((l) => /^(Via|From|To|Call-ID):/i.test(l));
  const cseq = (header(response, 'CSeq') ?? '1 INVITE').replace(/INVITE$/, 'ACK');
  return [`ACK ${uri} SIP/2.0`, ...copied, 'Max-Forwards: 70', `CSeq: ${cseq}`, 'Content-Length: 0', '', ''].join('\r\n');
}

function requestText(o: Outgoing): { text: string; callId: string } {
  const method = o.method ?? 'MESSAGE';
  const body = o.body ?? '';
  const callId = `${randomBytes(8).toString('hex')}@partner.test`;
  const lines = [
    `${method} ${o.uri ?? `sip:${o.to}`} SIP/2.0`,
    `Via: SIP/2.0/${o.via?.transport ?? 'TLS'} 127.0.0.1:${o.via?.port ?? 9};branch=${newBranch()};rport`,
    'Max-Forwards: 70',
    `From: <sip:${o.from}>;tag=${randomBytes(4).toString('hex')}`,
    `To: <${o.uri ?? `sip:${o.to}`}>`,
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    ...(method === 'INVITE' ? [`Contact: <sip:${o.from.split('@')[0] ?? 'x'}@127.0.0.1:9;transport=tls>`] : []),
    ...(method === 'REFER' ? [`Refer-To: <sip:someone@elsewhere.example>`] : []),
    'Content-Type: text/plain;charset=UTF-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ];
  return { text: lines.join('\r\n'), callId };
}

/**
 * The clearinghouse's own SIP server (the partner's `nextHop`): TLS with the hub's certificate,
 * asking the bridge for its client certificate; answers every MESSAGE 202 and keeps it.
 */
class HubListener {
  private constructor(
    private readonly server: Server,
    readonly port: number,
    /** Every request received, in order. */
    readonly requests: readonly string[],
    /** The CN of the client certificate each connection showed. */
    readonly clientNames: readonly string[],
  ) {}

  static async start(cert: IssuedCert): Promise<HubListener> {
    const requests: string[] = [];
    const clientNames: string[] = [];
    const server = createServer({ cert: cert.cert, key: cert.key, ca: ca.caCert, requestCert: true, rejectUnauthorized: true }, (socket) => {
      const subject = socket.getPeerCertificate().subject as { CN?: string } | undefined;
      clientNames.push(subject?.CN ?? '');
      socket.on('error', () => undefined);
      sipFramer(socket, (text) => {
        if (text.startsWith('SIP/2.0')) return;
        requests.push(text);
        socket.write(answerTo(text, 202, 'Accepted'));
      });
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new HubListener(server, (server.address() as { port: number }).port, requests, clientNames);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}


const bodyOf = (el: Element): string | undefined => el.getChildText('body') ?? undefined;
const messageWith = (body: string) => (el: Element) => el.is('message') && bodyOf(el) === body;
/** sipp ends every scenario line with CRLF, the body's last one too (XML parsing makes it LF). */
const sippBody = (el: Element): string | undefined => el.getChildText('body')?.replace(/\r?\n$/, '');

/**
 * Proves refused messages went nowhere: a good message from acme, sent after them, arrives at
 * `user`, and by then none of `refused` has (each was answered with a final refusal before
 * anything was queued, so nothing of theirs is still on its way).
 */
async function onlyTheGoodOneArrives(user: TestUser, refused: readonly string[], label: string): Promise<void> {
  const acme = await PartnerConnection.open(acmeCert);
  try {
    const good = `good after ${label} ${RUN}`;
    const to = `${user.jid.split('@')[0] ?? ''}@${XMPP_DOMAIN}`;
    expect(statusOf(await acme.send({ from: 'alice@acme.example', to, body: good }))).toBe(202);
    await user.next(messageWith(good));
    const bodies = user.received.map(bodyOf);
    for (const body of refused) expect(bodies).not.toContain(body);
  } finally {
    acme.close();
  }
}

const denials = (): Record<string, unknown>[] => log.lines().filter((l) => l['audit'] === 'denial');

// ---------------------------------------------------------------------------------------------

describe('federation over mutual TLS, the whole bridge (issue 6)', () => {
  it('a. given Kamailio as acme\'s edge proxy, when alice@acme.example sends through it (sipp over UDP, then mutual TLS to the bridge), then juliet receives the message', async () => {
    const body = `hello from acme via kamailio ${RUN}`;
    // The bridge listens on TLS only and acme must show its certificate: accepted means Kamailio
    // relayed over mutual TLS with acme's client certificate.
    const uac = await startSipp({
      scenario: 'e2e-uac-message.xml',
      role: 'uac',
      transport: 'udp',
      target: { host: kamailio.host, port: kamailio.port },
      service: 'juliet',
      keys: { from_user: 'alice', from_domain: 'acme.example', to_domain: XMPP_DOMAIN, body },
    });
    try {
      const msg = await juliet.next((el) => el.is('message') && sippBody(el) === body, 15_000);
      expect(msg.attrs['from']).toBe(`alice\\40acme.example@${COMPONENT}`);
      const result = await uac.done;
      expect(result.code, `${result.output}${result.errors}\n${kamailio.output().slice(-2000)}`).toBe(0);
    } finally {
      await uac.stop();
    }
  });

  it('b0. given Kamailio as acme\'s edge but with a certificate from another CA, when alice sends through it, then the bridge refuses the handshake, Kamailio answers her with an error, and juliet receives nothing', async () => {
    const refusals = (): number => log.lines().filter((l) => l['msg'] === 'SIP TLS handshake refused').length;
    const before = refusals();
    const body = `through the rogue edge ${RUN}`;
    const alice = await RawUdpPeer.open();
    try {
      await alice.send(requestText({ from: 'alice@acme.example', to: `juliet@${XMPP_DOMAIN}`, body, via: { transport: 'UDP', port: alice.port } }).text, rogueKamailio.port);
      let response = await alice.next(15_000);
      while (statusOf(response) < 200) response = await alice.next(15_000);
      // Kamailio connects asynchronously, so the refused handshake is no transport error to it
      // (RFC 3261 §16.9 would make that 503) but an unanswered transaction: Timer F, then 408
      // (§17.1.2.2, §8.1.3).
      expect(statusOf(response), rogueKamailio.output().slice(-2000)).toBe(408);
    } finally {
      await alice.close();
    }
    await waitFor('the refused handshake in the bridge log', () => refusals() > before);
    await onlyTheGoodOneArrives(juliet, [body], 'the rogue edge');
  });

  it('b1. given a client with acme\'s name signed by another CA, when it connects and sends a MESSAGE, then the handshake is refused and juliet receives nothing', async () => {
    const body = `from the impostor ${RUN}`;
    const impostor = await PartnerConnection.open(impostorCert);
    impostor.write(requestText({ from: 'alice@acme.example', to: `juliet@${XMPP_DOMAIN}`, body }).text);
    await waitFor('the impostor\'s connection to be closed', () => impostor.closed);
    // TLS 1.3: the client finishes first, so the refusal shows as an alert or the server hanging up.
    expect(impostor.error?.code ?? 'ended').toMatch(/UNKNOWN_CA|ECONNRESET|^ended$/);
    await onlyTheGoodOneArrives(juliet, [body], 'the impostor');
  });

  it('b2. given a client whose certificate (our CA) names no partner, when it sends as alice@acme.example, then 403 and juliet receives nothing', async () => {
    const body = `from the stranger ${RUN}`;
    const stranger = await PartnerConnection.open(strangerCert);
    try {
      expect(stranger.error).toBeUndefined();
      const response = await stranger.send({ from: 'alice@acme.example', to: `juliet@${XMPP_DOMAIN}`, body });
      expect(statusOf(response)).toBe(403);
    } finally {
      stranger.close();
    }
    await onlyTheGoodOneArrives(juliet, [body], 'the stranger');
  });

  it('c. given acme\'s authenticated connection, when it sends From someone@beta.example, then 403 and a structured denial line names the rule and the certificate', async () => {
    const body = `spoofed as beta ${RUN}`;
    const acme = await PartnerConnection.open(acmeCert);
    try {
      expect(statusOf(await acme.send({ from: 'someone@beta.example', to: `juliet@${XMPP_DOMAIN}`, body }))).toBe(403);
    } finally {
      acme.close();
    }
    const line = await waitFor('the spoofing denial in the log', () =>
      denials().find((l) => l['rule'] === 'spoofed-identity' && /someone@beta\.example$/.test(String(l['who']))),
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; denials: ${JSON.stringify(denials())}`);
    });
    expect(line).toMatchObject({ what: 'message', peer: ['sip.acme.example'] });
    expect(String(line['reason'])).toMatch(/beta\.example/);
    await onlyTheGoodOneArrives(juliet, [body], 'the spoof');
  });

  it.each(['INVITE', 'REFER'])('d. given a partner over TLS, when it sends %s, then 405 with an Allow header, and nothing reaches XMPP', async (method) => {
    const body = `${method} body ${RUN}`;
    const acme = await PartnerConnection.open(acmeCert);
    try {
      const uri = `sip:juliet@${XMPP_DOMAIN}`;
      const response = await acme.send({ method, from: 'alice@acme.example', to: `juliet@${XMPP_DOMAIN}`, body });
      expect(statusOf(response)).toBe(405);
      // RFC 3261 §17.1.1.3: the client transaction ACKs a non-2xx final response to an INVITE.
      if (method === 'INVITE') acme.write(ackFor(uri, response));
      const allow = header(response, 'Allow') ?? '';
      expect(allow).toMatch(/\bMESSAGE\b/);
      expect(allow).not.toMatch(/\bINVITE\b|\bREFER\b/);
      const denial = log.lines().find((l) => l['audit'] === 'denial' && l['rule'] === 'toll-fraud-method' && l['what'] === method);
      expect(denial).toMatchObject({ who: 'tls:127.0.0.1', peer: ['sip.acme.example'] });
    } finally {
      acme.close();
    }
    await onlyTheGoodOneArrives(juliet, [body], method);
  });

  it.each([
    ['a tel: URI', 'tel:+15559990000', 'tel-sender'],
    ['a user=phone SIP URI', `sip:+15559990000@${XMPP_DOMAIN};user=phone`, 'phone-sender'],
  ])('e1. given a number outside ownNumbers (though an identity row names nora), when a partner sends a MESSAGE to it as %s, then 404, a toll-fraud denial line, and nora receives nothing', async (_form, uri, sender) => {
    const body = `to a number not ours (${uri}) ${RUN}`;
    const acme = await PartnerConnection.open(acmeCert);
    try {
      const response = await acme.send({ from: `${sender}@acme.example`, to: 'x@x', uri, body });
      // NUMBER_NOT_OURS: item-not-found, SIP 404 (router.ts ownNumber), before any identity lookup.
      expect(statusOf(response)).toBe(404);
    } finally {
      acme.close();
    }
    const line = await waitFor('the toll-fraud denial in the log', () =>
      denials().find((l) => l['rule'] === 'number-not-ours' && String(l['who']).includes(`${sender}@acme.example`)),
    );
    expect(String(line['reason'])).toMatch(/\+15559990000/);
    await onlyTheGoodOneArrives(nora, [body], `number ${uri}`);
  });

  it('e2. given a number inside ownNumbers with an identity row, when a partner sends to it (user=phone), then nora receives it', async () => {
    const body = `to nora's number ${RUN}`;
    const acme = await PartnerConnection.open(acmeCert);
    try {
      const response = await acme.send({ from: 'alice@acme.example', to: 'x@x', uri: `sip:+15551230001@${XMPP_DOMAIN};user=phone`, body });
      expect(statusOf(response)).toBe(202);
    } finally {
      acme.close();
    }
    const msg = await nora.next(messageWith(body));
    expect(msg.attrs['from']).toBe(`alice\\40acme.example@${COMPONENT}`);
  });

  it('f. given beta flooding its own connection while acme sends 20 at once, then every acme message is accepted and delivered, and beta gets 503 with Retry-After past its bucket', async () => {
    const FLOOD = 400;
    const ACME = 20;
    const beta = await PartnerConnection.open(betaCert);
    const acme = await PartnerConnection.open(acmeCert);
    try {
      expect(beta.error).toBeUndefined();
      const started = performance.now();
      const flood = Array.from({ length: FLOOD }, (_, i) =>
        beta.send({ from: 'flood@beta.example', to: `romeo@${XMPP_DOMAIN}`, body: `flood ${i} ${RUN}` }, 30_000),
      );
      const acmeBodies = Array.from({ length: ACME }, (_, i) => `acme during the flood ${i} ${RUN}`);
      const acmeAnswers = await Promise.all(acmeBodies.map((body) => acme.send({ from: 'alice@acme.example', to: `juliet@${XMPP_DOMAIN}`, body }, 30_000)));
      const floodAnswers = await Promise.all(flood);
      const elapsedS = (performance.now() - started) / 1000;

      expect(acmeAnswers.map(statusOf)).toEqual(acmeBodies.map(() => 202));
      for (const body of acmeBodies) await juliet.next(messageWith(body));

      const statuses = floodAnswers.map(statusOf);
      const accepted = statuses.filter((s) => s === 202).length;
      const limited = floodAnswers.filter((r) => statusOf(r) === 503);
      expect(accepted + limited.length).toBe(FLOOD);
      for (const r of limited) expect(Number(header(r, 'Retry-After'))).toBeGreaterThanOrEqual(1);
      // The bucket's bound over the measured time (a count bound, not a timing assertion).
      expect(accepted).toBeGreaterThanOrEqual(BETA_LIMITS.burst);
      expect(accepted).toBeLessThanOrEqual(BETA_LIMITS.burst + BETA_LIMITS.messagesPerSecond * elapsedS + 1);
      // The refusals are audited, folded: one line per 10 s window for beta's sender, not hundreds.
      const audited = denials().filter((l) => l['rule'] === 'rate-limited' && String(l['who']).includes('flood@beta.example'));
      expect(audited.length).toBeGreaterThanOrEqual(1);
      expect(audited.length).toBeLessThanOrEqual(1 + Math.ceil(elapsedS / 10));
      // What was accepted is what romeo gets.
      const acceptedBodies = floodAnswers.flatMap((r, i) => (statusOf(r) === 202 ? [`flood ${i} ${RUN}`] : []));
      for (const body of acceptedBodies) await romeo.next(messageWith(body));
      console.info(`flood: ${accepted} of ${FLOOD} accepted from beta in ${elapsedS.toFixed(2)} s, ${ACME}/${ACME} from acme`);
    } finally {
      beta.close();
      acme.close();
    }
  });

  it('g. given the clearinghouse\'s connection (its certificate), when it sends from its members one.example and two.example, then both are delivered; from three.example, 403', async () => {
    const hubConn = await PartnerConnection.open(hubCert);
    try {
      const one = `from one via the hub ${RUN}`;
      const two = `from two via the hub ${RUN}`;
      const three = `from three via the hub ${RUN}`;
      expect(statusOf(await hubConn.send({ from: 'u1@one.example', to: `romeo@${XMPP_DOMAIN}`, body: one }))).toBe(202);
      expect(statusOf(await hubConn.send({ from: 'u2@two.example', to: `romeo@${XMPP_DOMAIN}`, body: two }))).toBe(202);
      expect(statusOf(await hubConn.send({ from: 'u3@three.example', to: `romeo@${XMPP_DOMAIN}`, body: three }))).toBe(403);
      expect((await romeo.next(messageWith(one))).attrs['from']).toBe(`u1\\40one.example@${COMPONENT}`);
      expect((await romeo.next(messageWith(two))).attrs['from']).toBe(`u2\\40two.example@${COMPONENT}`);
      await onlyTheGoodOneArrives(romeo, [three], 'three.example');
    } finally {
      hubConn.close();
    }
  });

  it('h. given the clearinghouse\'s nextHop, when juliet writes to users at one.example and two.example, then both MESSAGEs arrive at the hub\'s TLS listener', async () => {
    const toOne = `to bob at one ${RUN}`;
    const toTwo = `to carol at two ${RUN}`;
    await juliet.client.send(xml('message', { to: `bob\\40one.example@${COMPONENT}`, type: 'chat', id: `h1-${RUN}` }, xml('body', {}, toOne)));
    await juliet.client.send(xml('message', { to: `carol\\40two.example@${COMPONENT}`, type: 'chat', id: `h2-${RUN}` }, xml('body', {}, toTwo)));

    // Either the MESSAGE reaches the hub, or juliet hears why not (an error stanza ends the wait).
    const atHub = (body: string, id: string): Promise<string> =>
      waitFor(
        `the MESSAGE "${body}" at the hub`,
        () => {
          const error = juliet.received.find((el) => el.attrs['type'] === 'error' && el.attrs['id'] === id);
          if (error !== undefined) throw new Error(`juliet got an error instead of delivery: ${error.toString()}`);
          return hub.requests.find((r) => r.endsWith(body));
        },
        15_000,
      );
    const one = await atHub(toOne, `h1-${RUN}`);
    const two = await atHub(toTwo, `h2-${RUN}`);
    expect(one).toMatch(/^MESSAGE sip:bob@one\.example SIP\/2\.0\r\n/);
    expect(two).toMatch(/^MESSAGE sip:carol@two\.example SIP\/2\.0\r\n/);
    expect(one).toMatch(/^Via: SIP\/2\.0\/TLS /m);
    expect(one).toMatch(/^From: .*sip:juliet@xmpp\.test/m);
    // The bridge showed its own certificate to the hub (mutual TLS both ways).
    expect(hub.clientNames).toContain('localhost');
  });
});
