/**
 * A SIP watcher for presence tests (RFC 3856): SUBSCRIBEs from its own UDP socket, answers
 * every NOTIFY with 200 and keeps them, in order, for the test to look through.
 */
import { randomBytes } from 'node:crypto';
import { waitFor } from './ports.js';
import { header, newBranch, RawUdpPeer } from './raw-sip.js';

/** A SIP watcher: SUBSCRIBEs from a UDP socket and answers every NOTIFY with 200, keeping them. */
export class SipWatcher {
  readonly notifies: string[] = [];
  private readonly callId = `${randomBytes(8).toString('hex')}@127.0.0.1`;
  private readonly tag = randomBytes(4).toString('hex');
  private cseq = 0;
  private toTag: string | undefined;
  private readonly responses: string[] = [];

  private constructor(
    private readonly peer: RawUdpPeer,
    private readonly port: number,
    private readonly user: string,
    private readonly presentity: string,
  ) {}

  /** SUBSCRIBEs `user` (user@domain) to `presentity` at the SIP listener on loopback `port`. */
  static async subscribe(port: number, user: string, presentity: string, expires = 600): Promise<SipWatcher> {
    const w = new SipWatcher(await RawUdpPeer.open(), port, user, presentity);
    void w.pump();
    const ok = await w.request(expires);
    w.toTag = /;tag=([^;>\s]+)/.exec(header(ok, 'To') ?? '')?.[1];
    return w;
  }

  /** SUBSCRIBE (initial or in the dialog), resolving with its final response. */
  async request(expires: number): Promise<string> {
    const to = `<sip:${this.presentity}>${this.toTag === undefined ? '' : `;tag=${this.toTag}`}`;
    const text = [
      `SUBSCRIBE sip:${this.presentity} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.peer.port};branch=${newBranch()};rport`,
      'Max-Forwards: 70',
      `From: <sip:${this.user}>;tag=${this.tag}`,
      `To: ${to}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${++this.cseq} SUBSCRIBE`,
      `Contact: <sip:${this.user.split('@')[0]}@127.0.0.1:${this.peer.port}>`,
      'Event: presence',
      'Accept: application/pidf+xml',
      `Expires: ${expires}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    await this.peer.send(text, this.port);
    const cseq = this.cseq;
    return waitFor(`final response to SUBSCRIBE ${cseq}`, () =>
      this.responses.find((r) => /^SIP\/2\.0 [2-6]\d\d/.test(r) && header(r, 'CSeq') === `${cseq} SUBSCRIBE`),
    );
  }

  /** The first NOTIFY received (in order) that `match` accepts. */
  notify(what: string, match: (notify: string) => boolean, timeoutMs = 10_000): Promise<string> {
    return waitFor(what, () => this.notifies.find(match), timeoutMs);
  }

  close(): Promise<void> {
    return this.peer.close();
  }

  private async pump(): Promise<void> {
    for (;;) {
      let msg: string;
      try {
        msg = await this.peer.next(60_000);
      } catch {
        return;
      }
      if (msg.startsWith('SIP/2.0')) {
        this.responses.push(msg);
        continue;
      }
      if (!msg.startsWith('NOTIFY')) continue;
      this.notifies.push(msg);
      const copy = ['Via', 'From', 'To', 'Call-ID', 'CSeq'].map((h) => `${h}: ${header(msg, h) ?? ''}`);
      await this.peer.send(['SIP/2.0 200 OK', ...copy, 'Content-Length: 0', '', ''].join('\r\n'), this.port).catch(() => undefined);
    }
  }
}

/** The Subscription-State of a NOTIFY, e.g. `active;expires=600`. */
export const subscriptionState = (notify: string): string => header(notify, 'Subscription-State') ?? '';
/** The body of a SIP message text. */
export const sipBody = (notify: string): string => notify.slice(notify.indexOf('\r\n\r\n') + 4);

