/**
 * Two fixes to how xmpp.js (0.13 and 0.14) reads a stream, installed on one connection entity
 * (component or client):
 *
 * 1. UTF-8 across reads. @xmpp/connection's `_onData` runs `data.toString('utf8')` on every TCP
 *    read by itself, so a multi-byte character split between two reads becomes two U+FFFD.
 *    Measured before this fix: 7 of 8 bodies of ~120 KB corrupted. A StringDecoder per socket
 *    keeps the incomplete tail of one read for the next.
 * 2. Quadratic text scans. ltx looks for the next '<' with indexOf at every character of a text
 *    run that has none, so a long body split over many reads costs O(n²) per read (measured:
 *    16.7 s of CPU for 40 bodies of 100 KB). The guard feeds the parser up to the last '>' of
 *    what has arrived and holds the rest (a text run or a tag in progress, which cannot complete
 *    an element before the next '>'), so each text run reaches ltx with the '<' that ends it.
 *    The held text is bounded: a peer that never sends '>' fails the stream.
 * 3. Hostile XML. ltx throws (not emits) on an undefined entity (`&foo;`) or a forbidden
 *    character reference, from inside the socket's 'data' listener: an uncaught exception
 *    that kills the process. Here the throw is caught and the stream is failed with
 *    <not-well-formed/> (RFC 6120 §4.9.3.13: an undeclared entity breaks well-formedness),
 *    the socket is closed, and the caller's reconnect logic takes over.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Socket } from 'node:net';
import type { EventEmitter } from 'node:events';

/** What the guard needs of an xmpp.js Connection (the private members it replaces). */
export interface GuardedEntity extends EventEmitter {
  socket: Socket | null;
  parser: { write(data: string): void } | null;
  _onData(data: Buffer): void;
  _onParserError(error: Error): void;
  _detachParser(): void;
}

/** Raised (as the entity's 'error' event) when the peer sent XML the parser cannot accept. */
export class HostileInputError extends Error {
  constructor(cause: unknown) {
    super(`peer sent XML that is not well-formed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'HostileInputError';
  }
}

const STREAM_ERROR_NOT_WELL_FORMED =
  "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>";

/** Grace for the stream error to be written before the socket is destroyed anyway. */
const CLOSE_GRACE_MS = 1000;

/**
 * Characters held without a '>' before the stream is failed: twice the largest stanza any
 * server in use accepts (Prosody: 512 KiB), as characters, so no legitimate stanza is near it.
 */
export const MAX_HELD_CHARS = 1024 * 1024;

export function installStreamGuard(entity: GuardedEntity, maxHeldChars = MAX_HELD_CHARS): void {
  let decoder = new StringDecoder('utf8');
  let decoderSocket: Socket | null = null;
  let held = '';

  const failStream = (cause: unknown): void => {
    const socket = entity.socket;
    // Later reads are dropped: the parser's state is unknown after a throw.
    if (entity.parser !== null) entity._detachParser();
    if (socket !== null && !socket.destroyed) {
      const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
      timer.unref();
      socket.write(STREAM_ERROR_NOT_WELL_FORMED, () => {
        clearTimeout(timer);
        socket.destroy();
      });
    }
    entity.emit('error', new HostileInputError(cause));
  };

  entity._onData = function onData(this: GuardedEntity, data: Buffer): void {
    if (this.socket !== decoderSocket) {
      // A new connection starts with no partial character and nothing held.
      decoder = new StringDecoder('utf8');
      decoderSocket = this.socket;
      held = '';
    }
    const text = decoder.write(data);
    if (this.parser === null || text === '') return;
    this.emit('input', text);
    const cut = text.lastIndexOf('>') + 1;
    if (cut === 0) {
      held += text;
      if (held.length > maxHeldChars) {
        held = '';
        failStream(new Error(`more than ${maxHeldChars} characters without a '>'`));
      }
      return;
    }
    const ready = held + text.slice(0, cut);
    held = text.slice(cut);
    try {
      this.parser.write(ready);
    } catch (err) {
      failStream(err);
    }
  };

  // The library's own handler ends the stream politely and waits for the peer to close it,
  // which a hostile peer never does; fail the same way as for a throw.
  entity._onParserError = (error: Error): void => failStream(error);
}
