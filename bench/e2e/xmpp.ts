/**
 * XMPP ends of the end-to-end bench: logged-in users that count bench messages by number (and
 * send them at a fixed rate), and a bare component that does the same straight through Prosody
 * (the server's own ceiling, no SIP at all).
 */
import { client } from '@xmpp/client';
import { Component } from '@xmpp/component-core';
import xml, { type Element } from '@xmpp/xml';
import { installStreamGuard, type GuardedEntity } from '../../src/adapters/xmpp/stream-guard.js';
import type { Prosody, ProsodyUser } from '../../test/support/prosody.js';

/** Bodies look like "bench STEP N SENT" with SENT in epoch seconds (sipp) or ms (ours). */
const BODY = /^bench (\S+) (\d+) (?:\S+\t\S+\t)?(\d+(?:\.\d+)?)/;

export function sentMs(stamp: string): number {
  return stamp.includes('.') ? Number(stamp) * 1000 : Number(stamp);
}

/** Counts bench messages of the current step by number, with each one's latency. */
export class Counter {
  private step = '';
  readonly latency = new Map<number, number>();

  begin(step: string): void {
    this.step = step;
    this.latency.clear();
  }

  onStanza(el: Element): void {
    if (!el.is('message')) return;
    const m = BODY.exec(el.getChildText('body') ?? '');
    if (m === null || m[1] !== this.step) return;
    const n = Number(m[2]);
    if (!this.latency.has(n)) this.latency.set(n, Date.now() - sentMs(m[3]!));
  }
}

export interface Endpoint {
  readonly counter: Counter;
  send(to: string, step: string, n: number): void;
  /** Stanzas whose write failed. */
  errors(): number;
  stop(): Promise<void>;
}

export async function connectBenchUser(prosody: Prosody, user: ProsodyUser): Promise<Endpoint> {
  const c = client({ service: `xmpp://${prosody.host}:${prosody.c2sPort}`, domain: prosody.domain, username: user.username, password: user.password, resource: 'bench' });
  c.reconnect.stop();
  installStreamGuard(c as unknown as GuardedEntity);
  c.on('error', () => undefined);
  const counter = new Counter();
  let errors = 0;
  let ready: (() => void) | undefined;
  const echoed = new Promise<void>((resolve) => (ready = resolve));
  c.on('stanza', (el: Element) => {
    if (el.is('presence') && el.attrs['from'] === c.jid?.toString()) ready?.();
    counter.onStanza(el);
  });
  await c.start();
  // Available presence, so Prosody routes bare-JID messages here (RFC 6121 §8.5.2.1); its echo
  // to ourselves (§4.2.2) says it took effect.
  await c.send(xml('presence', {}));
  await echoed;
  return {
    counter,
    send(to, step, n) {
      c.send(xml('message', { to, type: 'chat', id: `b${step}-${n}` }, xml('body', {}, `bench ${step} ${n} ${Date.now()}`))).catch(() => errors++);
    },
    errors: () => errors,
    stop: () => c.stop().then(() => undefined, () => undefined),
  };
}

/** A bare XEP-0114 component on Prosody: pushes to users, counts what users send it. */
export async function connectBenchComponent(prosody: Prosody, domain: string, secret: string): Promise<Endpoint & { readonly domain: string }> {
  const service = `xmpp://${prosody.host}:${prosody.componentPort}`;
  const c = new Component({ service, domain });
  installStreamGuard(c as unknown as GuardedEntity);
  c.on('error', () => undefined);
  const counter = new Counter();
  let errors = 0;
  c.on('stanza', (el: Element) => counter.onStanza(el));
  await c.connect(service);
  const header = await c.open({ domain });
  await c.authenticate(header.attrs['id'] ?? '', secret);
  return {
    domain,
    counter,
    send(to, step, n) {
      c.send(xml('message', { to, from: `alice@${domain}`, type: 'chat', id: `b${step}-${n}` }, xml('body', {}, `bench ${step} ${n} ${Date.now()}`))).catch(() => errors++);
    },
    errors: () => errors,
    stop: () => c.stop().then(() => undefined, () => undefined),
  };
}
