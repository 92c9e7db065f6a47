/**
 * What a request says about who sent it, beyond From: the names the peer's certificate vouches
 * for (mutual TLS, RFC 5922 §7.1) and the hosts of P-Asserted-Identity (RFC 3325 §9.1). The
 * router's federation policy holds the sender's domain against both (issue 6 item 3).
 */
import type { CanonicalEvent } from '../../core/events.js';
import { headerValues, type SipRequest } from './codec/message.js';
import { parseNameAddr, parseUri, splitHeaderList } from './codec/uri.js';
import type { ReceivedFrom } from './transport/transport.js';

export type PeerFacts = Pick<CanonicalEvent, 'peer' | 'assertedDomains'>;

/** At most this many asserted identities are read (RFC 3325 allows one sip: and one tel:). */
const MAX_ASSERTED = 4;

export function peerFacts(req: SipRequest, from: ReceivedFrom): PeerFacts {
  const asserted: string[] = [];
  for (const value of headerValues(req, 'P-Asserted-Identity').slice(0, MAX_ASSERTED)) {
    for (const part of splitHeaderList(value).slice(0, MAX_ASSERTED)) {
      try {
        const uri = parseUri(parseNameAddr(part).uri);
        if (uri.scheme === 'sip' || uri.scheme === 'sips') asserted.push(uri.host.toLowerCase());
      } catch {
        // an unreadable identity asserts nothing
      }
    }
  }
  return {
    ...(from.identities === undefined ? {} : { peer: { certificateIdentities: [...from.identities] } }),
    ...(asserted.length === 0 ? {} : { assertedDomains: asserted }),
  };
}
