/**
 * Test-side XMPP helpers: a logged-in @xmpp/client user (with the same stream guard the
 * adapter uses: @xmpp/client 0.14 has the same split-UTF-8 bug when it receives) and a stanza
 * parser for unit tests.
 */
import { client, type XmppClient } from '@xmpp/client';
import xml, { type Element } from '@xmpp/xml';
import { installStreamGuard, type GuardedEntity } from '../../src/adapters/xmpp/stream-guard.js';
import type { Prosody, ProsodyUser } from './prosody.js';

export interface TestUser {
  readonly client: XmppClient;
  /** Full JID bound by the server. */
  readonly jid: string;
  /** Every stanza received, in order. */
  readonly received: Element[];
  /** Resolves with the first received stanza (already received or future) matching `match`. */
  next(match: (el: Element) => boolean, timeoutMs?: number): Promise<Element>;
  stop(): Promise<void>;
}

export async function connectUser(prosody: Prosody, user: ProsodyUser, resource = 'test'): Promise<TestUser> {
  const c = client({
    service: `xmpp://${prosody.host}:${prosody.c2sPort}`,
    domain: prosody.domain,
    username: user.username,
    password: user.password,
    resource,
  });
  c.reconnect.stop();
  installStreamGuard(c as unknown as GuardedEntity);
  const errors: Error[] = [];
  c.on('error', (err: Error) => errors.push(err));
  const received: Element[] = [];
  const waiters: Array<{ match: (el: Element) => boolean; resolve: (el: Element) => void }> = [];
  c.on('stanza', (el: Element) => {
    received.push(el);
    for (const w of [...waiters]) {
      if (w.match(el)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(el);
      }
    }
  });
  await c.start();
  const jid = c.jid?.toString() ?? '';
  const testUser: TestUser = {
    client: c,
    jid,
    received,
    next(match, timeoutMs = 10_000) {
      const seen = received.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.findIndex((w) => w.resolve === done), 1);
          reject(new Error(`no matching stanza within ${timeoutMs} ms (client errors: ${errors.map((e) => e.message).join('; ')})`));
        }, timeoutMs);
        const done = (el: Element): void => {
          clearTimeout(timer);
          resolve(el);
        };
        waiters.push({ match, resolve: done });
      });
    },
    async stop() {
      await c.stop().catch(() => undefined);
    },
  };
  // Available presence so the server routes bare-JID messages to this resource (RFC 6121
  // §8.5.2.1); the server's echo of it to ourselves (§4.2.2) says it has taken effect.
  await c.send(xml('presence', {}));
  await testUser.next((el) => el.name === 'presence' && el.attrs['from'] === jid);
  return testUser;
}

/** Parses one stanza from its XML text, as the connection's stream parser would. */
export function parseStanza(text: string): Element {
  const parser = new xml.Parser();
  let stanza: Element | undefined;
  parser.on('element', (el: Element) => {
    stanza ??= el;
  });
  parser.write(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>${text}`);
  if (stanza === undefined) throw new Error(`not a complete stanza: ${text}`);
  return stanza;
}

/**
 * Fetches the user's roster (RFC 6121 §2.2), which makes the session an "interested resource":
 * the server then delivers subscription approvals and cancellations to it (§3.1.6, §3.2.3).
 */
export async function requestRoster(user: TestUser): Promise<Element> {
  const id = `roster-${Math.random().toString(36).slice(2)}`;
  await user.client.send(xml('iq', { type: 'get', id }, xml('query', { xmlns: 'jabber:iq:roster' })));
  return user.next((el) => el.name === 'iq' && el.attrs['id'] === id);
}
