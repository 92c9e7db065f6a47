/**
 * The component stream's input path without a network: the real @xmpp/xml parser behind the
 * stream guard (src/adapters/xmpp/stream-guard.ts), fed bytes as a socket would, with the
 * stream header already read. What the guard writes back (stream errors) is kept.
 */
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import xml, { type Element } from '@xmpp/xml';
import { installStreamGuard, type GuardedEntity } from '../../src/adapters/xmpp/stream-guard.js';

export interface GuardedStream {
  readonly e: GuardedEntity;
  readonly stanzas: Element[];
  readonly errors: Error[];
  readonly written: string[];
}

export function guardedStream(maxHeldChars?: number): GuardedStream {
  const e = new EventEmitter() as GuardedEntity;
  const stanzas: Element[] = [];
  const errors: Error[] = [];
  const written: string[] = [];
  const parser = new xml.Parser();
  parser.on('element', (el: Element) => stanzas.push(el));
  parser.on('error', (err: Error) => e._onParserError(err));
  const socket = new PassThrough();
  socket.on('data', (d: Buffer) => written.push(d.toString()));
  Object.assign(e, {
    socket,
    parser,
    _detachParser() {
      parser.removeAllListeners();
      e.parser = null;
    },
  });
  e.on('error', (err: Error) => errors.push(err));
  installStreamGuard(e, maxHeldChars);
  e._onData(Buffer.from(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>`));
  return { e, stanzas, errors, written };
}
