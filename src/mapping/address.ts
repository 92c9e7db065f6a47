/**
 * Address translation between the sides (RFC 7247 §6, "Address Mapping"; the brief's "§5").
 *
 * How SIP users appear on XMPP: as a JID on the bridge's component domain whose localpart is
 * the XEP-0106-escaped `user@host` (`alice\40corp.example@sip.example.com`), or, for numbers in
 * the identity table, `+15551234567@sip.example.com`. XMPP users appear on SIP under their own
 * domain (`sip:juliet@xmpp.example.org`), which the SIP side routes to the bridge.
 *
 * SIP user parts here are unescaped (the codec decodes and re-encodes %XX, RFC 7247 §6.4 step 3
 * and §6.5 step 5); JID localparts are as on the wire (XEP-0106 escaped).
 *
 * Case: hosts are lower-cased. JID localparts are prepared as XMPP servers prepare them (PRECIS
 * UsernameCaseMapped, RFC 7622 §3.3 / RFC 8265 §3.3, in ./precis.ts): width-mapped, lower-cased,
 * NFC. So `sip:Juliet@xmpp.example.org` reaches juliet, and a SIP user `Alice@corp.example` is
 * shown as `alice\40corp.example@<component>`: the JID the XMPP user sees is the one its
 * server routes replies to. SIP user parts are case-sensitive (RFC 3261 §19.1.4), so a reply
 * goes to sip:alice@corp.example; a SIP domain whose user parts differ only by case cannot be
 * told apart through XMPP, which no XMPP server can do either.
 *
 * Telephone numbers (a `tel:` URI or `user=phone`, marked `telephone` on the address) are
 * resolved by the identity chain in the router, not here; `numberToXmpp` gives the JID a SIP
 * sender's number appears as (`+15551234567@<component>`), the same JID XMPP users write to.
 */
import { BridgeError } from '../core/errors.js';
import type { Address, Side } from '../core/events.js';
import { normalizeHost } from './domain.js';
import { escapeNode, unescapeNode } from './jid-escape.js';
import { LocalpartError, prepareLocalpart } from './precis.js';

export interface TranslatorOptions {
  /** The component's JID domain (XEP-0114), e.g. `sip.example.com`. */
  componentDomain: string;
  /** Domains of the XMPP users that SIP users may write to. */
  xmppDomains: readonly string[];
}

/**
 * Whom an XMPP user writes to on the component domain: a SIP address spelled in the localpart,
 * or a telephone number that an identity source must resolve (the router does, asynchronously).
 */
export type XmppRecipient = { readonly kind: 'sip'; readonly address: Address } | { readonly kind: 'number'; readonly number: string };

export class AddressTranslator {
  private readonly componentDomain: string;
  private readonly xmppDomains: ReadonlySet<string>;

  /** @throws BridgeError `IDENTITY_INVALID` for a bad identity entry, `DOMAIN_INVALID` for a bad domain. */
  constructor(opts: TranslatorOptions) {
    this.componentDomain = configuredDomain(opts.componentDomain, 'xmpp.component');
    this.xmppDomains = new Set(opts.xmppDomains.map((d, i) => configuredDomain(d, `mapping.xmppDomains[${i}]`)));
  }

  /**
   * What `to` on the component domain names, without resolving numbers: an escaped SIP
   * address (`alice\40corp.example`) or a number (any localpart without an escaped `@`, e.g.
   * `+15551234567`), which the caller normalises and resolves.
   */
  xmppRecipient(to: Address): XmppRecipient {
    expectSide(to, 'xmpp');
    if (to.domain.toLowerCase() !== this.componentDomain) {
      throw new BridgeError('DOMAIN_NOT_SERVED', `${to.domain} is not the bridge's domain ${this.componentDomain}`, {
        condition: 'item-not-found',
      });
    }
    if (to.user === '') {
      throw new BridgeError('ADDRESS_UNMAPPED', `${to.domain} itself is not a SIP user; write to number@ or user\\40host@`, {
        condition: 'item-not-found',
      });
    }
    const sipAddress = this.unescapeCanonical(prepared(to.user));
    const at = sipAddress.lastIndexOf('@');
    if (at === -1) return { kind: 'number', number: sipAddress };
    // A SIP user part may hold an escaped "@" (%40) but a host never does: split at the last.
    const user = sipAddress.slice(0, at);
    const domain = normalizeHost(sipAddress.slice(at + 1));
    if (user === '' || domain === undefined) {
      throw jidMalformed(`"${to.user}" is not an escaped SIP address such as alice\\40corp.example`);
    }
    return { kind: 'sip', address: { side: 'sip', user, domain } };
  }

  /**
   * How a SIP user sees an XMPP sender: `juliet@xmpp.example.org/balcony` → sip:juliet@xmpp.example.org.
   * The localpart is unescaped (RFC 7247 §6.5 step 3, all of XEP-0106 §4.3 rather than only
   * \26 \27 \2f); the codec percent-encodes what a SIP user part may not hold (§6.5 step 5).
   */
  xmppSenderToSip(from: Address): Address {
    expectSide(from, 'xmpp');
    const localpart = prepared(from.user, 'sender localpart');
    const domain = normalizeHost(from.domain);
    if (domain === undefined) throw jidMalformed(`sender domain "${from.domain}" cannot appear in a SIP URI`);
    return { side: 'sip', user: unescapeNode(localpart), domain };
  }

  /**
   * The XMPP user a SIP Request-URI names: sip:bob@xmpp.example.org → bob@xmpp.example.org when
   * the domain is one of `xmppDomains`. The user part is XEP-0106-escaped (RFC 7247 §6.4 step 5,
   * e.g. o'malley → o\27malley) and must then be a possible localpart.
   */
  sipRecipientToXmpp(to: Address): Address {
    expectSide(to, 'sip');
    const domain = to.domain.toLowerCase();
    if (!this.xmppDomains.has(domain)) {
      throw new BridgeError('DOMAIN_NOT_SERVED', `${to.domain} is not an XMPP domain this bridge serves`, {
        condition: 'item-not-found',
        sipStatus: 404,
      });
    }
    // 404 rather than the table's 400 for jid-malformed: no such user can exist (RFC 3261 §21.4.5).
    return { side: 'xmpp', user: this.sipUserToLocalpart(to.user, 404), domain };
  }

  /** How an XMPP user sees a SIP sender: sip:alice@corp.example → alice\40corp.example@<component>. */
  sipSenderToXmpp(from: Address): Address {
    expectSide(from, 'sip');
    const domain = normalizeHost(from.domain);
    if (from.user === '' || domain === undefined) {
      throw jidMalformed(`SIP sender "${from.user}@${from.domain}" has no user or no valid host`);
    }
    return { side: 'xmpp', user: this.sipUserToLocalpart(`${from.user}@${domain}`), domain: this.componentDomain };
  }

  /** The JID a telephone number (E.164, `+` form) has on the component domain: `+15551234567@<component>`. */
  numberToXmpp(e164: string): Address {
    return { side: 'xmpp', user: prepared(e164), domain: this.componentDomain };
  }

  /**
   * An XMPP user an identity source named (`jdoe@chat.corp.example`), when its domain is one
   * this bridge serves; undefined otherwise (the directory points elsewhere).
   */
  servedXmppUser(bareJid: string): Address | undefined {
    const at = bareJid.lastIndexOf('@');
    if (at <= 0 || bareJid.includes('/')) return undefined;
    const domain = normalizeHost(bareJid.slice(at + 1));
    if (domain === undefined || !this.xmppDomains.has(domain)) return undefined;
    try {
      const user = prepared(bareJid.slice(0, at));
      return localpartProblem(user) === undefined ? { side: 'xmpp', user, domain } : undefined;
    } catch {
      return undefined;
    }
  }

  /** True when `domain` is the bridge's own component domain. */
  isComponentDomain(domain: string): boolean {
    return domain.toLowerCase() === this.componentDomain;
  }

  /** True when `domain` is one of the XMPP domains SIP users write to. */
  servesXmppDomain(domain: string): boolean {
    return this.xmppDomains.has(domain.toLowerCase());
  }

  private sipUserToLocalpart(sipUser: string, sipStatus?: number): string {
    let localpart: string;
    try {
      localpart = prepareLocalpart(escapeNode(sipUser));
    } catch (err) {
      const why = err instanceof LocalpartError ? err.message : 'starts or ends with a space (XEP-0106 §5.1)';
      throw jidMalformed(`"${sipUser}" cannot be a JID localpart: it ${why}`, sipStatus);
    }
    const problem = localpartProblem(localpart);
    if (problem !== undefined) throw jidMalformed(`"${sipUser}" cannot be a JID localpart: it ${problem}`, sipStatus);
    return localpart;
  }

  /**
   * Unescapes a localpart the bridge could have written. Two wire forms can unescape alike
   * (`a\5cb` and `a\b`, XEP-0106 §7): only the canonical one is accepted, so one SIP address
   * has one JID and XEP-0106's "MUST NOT compare unescaped versions" is kept.
   */
  private unescapeCanonical(localpart: string): string {
    const problem = localpartProblem(localpart);
    if (problem !== undefined) throw jidMalformed(`"${localpart}" ${problem}`);
    const unescaped = unescapeNode(localpart);
    let canonical: string;
    try {
      canonical = escapeNode(unescaped);
    } catch {
      throw jidMalformed(`"${localpart}" starts or ends with \\20 (XEP-0106 §5.1)`);
    }
    if (canonical !== localpart) {
      throw jidMalformed(`"${localpart}" is not in XEP-0106 canonical form (expected "${canonical}")`);
    }
    return unescaped;
  }
}

// RFC 7622 §3.3.1: a localpart is 1 to 1023 octets.
const MAX_LOCALPART_OCTETS = 1023;
// RFC 7622 §3.3.1 forbids " & ' / : < > @ outright.
const FORBIDDEN_ASCII = /["&'/:<>@]/u;
// PRECIS IdentifierClass (RFC 8264 §4.2) disallows controls, ignorables and other format
// characters, spaces, unassigned and private-use code points, and symbols and punctuation
// outside ASCII. Lone surrogates cannot be UTF-8 at all.
const DISALLOWED = /[\p{Cc}\p{Cf}\p{Cn}\p{Co}\p{Cs}\p{White_Space}]|(?![\x21-\x7e])[\p{S}\p{P}]/u;

/** Why `localpart` (wire form) cannot be a JID localpart, or undefined when it can. */
export function localpartProblem(localpart: string): string | undefined {
  if (localpart.length === 0) return 'is empty';
  if (Buffer.byteLength(localpart, 'utf8') > MAX_LOCALPART_OCTETS) return 'is longer than 1023 octets (RFC 7622 §3.3.1)';
  const forbidden = FORBIDDEN_ASCII.exec(localpart) ?? DISALLOWED.exec(localpart);
  if (forbidden !== null) return `holds ${describe(forbidden[0])}, not allowed in a localpart (RFC 7622 §3.3.1)`;
  return undefined;
}

/** The localpart prepared (./precis.ts), or jid-malformed naming the rule it breaks. */
function prepared(localpart: string, what = 'localpart'): string {
  try {
    return prepareLocalpart(localpart);
  } catch (err) {
    if (err instanceof LocalpartError) throw jidMalformed(`${what} "${localpart}" ${err.message}`);
    throw err;
  }
}

function describe(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

function jidMalformed(message: string, sipStatus?: number): BridgeError {
  return new BridgeError('JID_MALFORMED', message, { condition: 'jid-malformed', sipStatus });
}

function expectSide(a: Address, side: Side): void {
  if (a.side !== side) {
    throw new BridgeError('ADDRESS_WRONG_SIDE', `expected a ${side} address, got a ${a.side} one`, {
      condition: 'internal-server-error',
    });
  }
}

function configuredDomain(domain: string, key: string): string {
  const normalized = normalizeHost(domain);
  if (normalized === undefined) {
    throw new BridgeError('DOMAIN_INVALID', `${key}: "${domain}" is not a host name`, { condition: 'internal-server-error' });
  }
  return normalized;
}
