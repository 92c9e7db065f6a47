/**
 * Checks a stanza before it is written. The server answers a bad stanza from a component by
 * closing the whole component stream (every conversation at once), so what it would refuse is
 * refused here, for that one stanza, with a BridgeError.
 */
import type { Element } from '@xmpp/xml';
import { BridgeError } from '../../core/errors.js';
import { parseJid } from './stanza.js';

export interface StanzaLimits {
  /** The component's domain: the only domain a stanza may come from. */
  readonly component: string;
  readonly maxStanzaBytes: number;
}

/**
 * XML 1.0 §2.2 Char production; anything else (C0 controls, U+FFFE/U+FFFF, lone surrogates)
 * is not well-formed and the server closes the stream with <not-well-formed/> (RFC 6120 §11.1).
 */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/**
 * Returns the serialized stanza if the server will accept it from the component, else throws a
 * non-retryable BridgeError.
 */
export function validateOutbound(stanza: Element, limits: StanzaLimits): string {
  const from = stanza.attrs['from'];
  const fromJid = from === undefined ? undefined : parseJid(from);
  // Prosody mod_component compares the from domain with the component host exactly (no
  // subdomains, no case folding) and answers a mismatch with the <invalid-from/> stream error
  // (RFC 6120 §4.9.3.9). XEP-0114 §3: every stanza from a component carries from and to.
  if (fromJid === undefined || fromJid.domain !== limits.component) {
    throw new BridgeError(
      'XMPP_FOREIGN_FROM',
      `refusing to send a stanza from '${from ?? ''}': a component may only send from its own domain ${limits.component}`,
      // RFC 6120 §8.3.3.12: the server's local policy on component addresses is what is violated.
      { condition: 'policy-violation', retryable: false },
    );
  }
  const to = stanza.attrs['to'];
  if (to === undefined || parseJid(to) === undefined) {
    throw new BridgeError('XMPP_BAD_TO', `refusing to send a stanza to '${to ?? ''}': not a valid JID`, {
      condition: 'jid-malformed',
      retryable: false,
    });
  }
  const serialized = stanza.toString();
  const bad = NOT_XML_CHAR.exec(serialized);
  if (bad !== null) {
    const code = bad[0].codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0') ?? '';
    throw new BridgeError('XMPP_ILLEGAL_CHARACTER', `refusing to send a stanza holding U+${code}, which XML 1.0 does not allow`, {
      condition: 'not-acceptable',
      retryable: false,
    });
  }
  const bytes = Buffer.byteLength(serialized, 'utf8');
  if (bytes > limits.maxStanzaBytes) {
    throw new BridgeError(
      'XMPP_STANZA_TOO_LARGE',
      `refusing to send a ${bytes}-byte stanza: the limit is ${limits.maxStanzaBytes} bytes (xmpp.maxStanzaBytes)`,
      // RFC 6120 §8.3.3.9 not-acceptable ("modify"): its own example is a message carrying a
      // too-large body. policy-violation is the stream-level name (§4.9.3.14); for one
      // stanza the sender can fix by shortening, not-acceptable says so. SIP: 413.
      { condition: 'not-acceptable', sipStatus: 413, retryable: false },
    );
  }
  return serialized;
}
