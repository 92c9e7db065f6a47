import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BridgeError } from '../../src/core/errors.js';
import type { Address } from '../../src/core/events.js';
import { AddressTranslator, localpartProblem } from '../../src/mapping/address.js';
import { refusal } from '../support/refusal.js';

const COMPONENT = 'sip.example.com';
const XMPP_DOMAIN = 'xmpp.example.org';

const translator = new AddressTranslator({
  componentDomain: COMPONENT,
  xmppDomains: [XMPP_DOMAIN, 'chat.example.net'],
});

const xmpp = (user: string, domain: string, resource?: string): Address =>
  resource === undefined ? { side: 'xmpp', user, domain } : { side: 'xmpp', user, domain, resource };
const sip = (user: string, domain: string): Address => ({ side: 'sip', user, domain });

/** The SIP address an escaped localpart names (numbers go to the identity chain, tested there). */
function sipAddressAt(to: Address): Address {
  const recipient = translator.xmppRecipient(to);
  if (recipient.kind !== 'sip') throw new Error(`expected an escaped SIP address, got the number ${recipient.number}`);
  return recipient.address;
}

// The odd characters, each inside a SIP user part, with its XEP-0106 wire form.
const ODD_USERS: readonly [string, string][] = [
  ['a@b', 'a\\40b'],
  ['a/b', 'a\\2fb'],
  ["o'malley", 'o\\27malley'],
  ['say"hi"', 'say\\22hi\\22'],
  ['m&m', 'm\\26m'],
  ['<tag>', '\\3ctag\\3e'],
  ['c:d', 'c\\3ad'],
  ['first last', 'first\\20last'],
  ['tsch\u00fcss', 'tsch\u00fcss'],
  ['\u5f20\u4f1f', '\u5f20\u4f1f'],
  ['f\u00fc', 'f\u00fc'],
];

describe('AddressTranslator.sipSenderToXmpp: how XMPP users see SIP senders', () => {
  it('shows sip:alice@corp.example as alice\\40corp.example@<component>', () => {
    expect(translator.sipSenderToXmpp(sip('alice', 'corp.example'))).toEqual(xmpp('alice\\40corp.example', COMPONENT));
  });

  it('prepares the localpart as XMPP servers do: the host and the user part lower-cased (RFC 7622 §3.3)', () => {
    expect(translator.sipSenderToXmpp(sip('Alice', 'Corp.Example'))).toEqual(xmpp('alice\\40corp.example', COMPONENT));
  });

  it('keeps an E.164 user as a number inside the escaped address', () => {
    expect(translator.sipSenderToXmpp(sip('+15550001111', 'corp.example'))).toEqual(
      xmpp('+15550001111\\40corp.example', COMPONENT),
    );
  });

  it('accepts a user part ending in a space: the escaped localpart ends in the host, not in \\20', () => {
    expect(translator.sipSenderToXmpp(sip('alice ', 'corp.example')).user).toBe('alice\\20\\40corp.example');
  });

  it.each(ODD_USERS)('escapes the user %j to %j (XEP-0106)', (user, escaped) => {
    expect(translator.sipSenderToXmpp(sip(user, 'corp.example')).user).toBe(`${escaped}\\40corp.example`);
  });

  it.each([
    ['', 'corp.example'],
    [' alice', 'corp.example'],
    ['tab\there', 'corp.example'],
    ['smile\u{1F600}', 'corp.example'],
    ['alice', 'bad host'],
    ['alice', ''],
  ])('refuses %j at %j as jid-malformed', (user, domain) => {
    const err = refusal(() => translator.sipSenderToXmpp(sip(user, domain)));
    expect(err.code).toBe('JID_MALFORMED');
    expect(err.condition).toBe('jid-malformed');
  });
});

describe('AddressTranslator.xmppRecipient: whom XMPP users reach', () => {
  it('reaches sip:alice@corp.example at alice\\40corp.example@<component>', () => {
    expect(sipAddressAt(xmpp('alice\\40corp.example', COMPONENT))).toEqual(sip('alice', 'corp.example'));
  });

  it.each(['+15551234567', '5551234567', 'bob', '+1555abc'])(
    'hands the localpart %j without an escaped @ to the identity chain as a number',
    (user) => {
      expect(translator.xmppRecipient(xmpp(user, COMPONENT))).toEqual({ kind: 'number', number: user });
    },
  );

  it('ignores the resource and the case of the component domain', () => {
    expect(sipAddressAt(xmpp('alice\\40corp.example', 'SIP.Example.com', 'phone'))).toEqual(
      sip('alice', 'corp.example'),
    );
  });

  it.each(ODD_USERS)('unescapes %j from %j', (user, escaped) => {
    expect(sipAddressAt(xmpp(`${escaped}\\40corp.example`, COMPONENT))).toEqual(sip(user, 'corp.example'));
  });

  it('splits at the last @ so a user part may hold an escaped @', () => {
    expect(sipAddressAt(xmpp('a\\40b\\40corp.example', COMPONENT))).toEqual(sip('a@b', 'corp.example'));
  });

  it.each([
    ['', 'ADDRESS_UNMAPPED', 'item-not-found'],
    ['\\40corp.example', 'JID_MALFORMED', 'jid-malformed'],
    ['alice\\40', 'JID_MALFORMED', 'jid-malformed'],
    ['alice\\40bad\\20host', 'JID_MALFORMED', 'jid-malformed'],
    ['\\20alice\\40corp.example', 'JID_MALFORMED', 'jid-malformed'],
    ['alice\\5cb\\40corp.example', 'JID_MALFORMED', 'jid-malformed'],
    ['alice@corp.example', 'JID_MALFORMED', 'jid-malformed'],
  ])('refuses the localpart %j with %s', (user, code, condition) => {
    const err = refusal(() => sipAddressAt(xmpp(user, COMPONENT)));
    expect(err.code).toBe(code);
    expect(err.condition).toBe(condition);
  });

  it('refuses a recipient that is not on the component domain as item-not-found', () => {
    const err = refusal(() => sipAddressAt(xmpp('alice\\40corp.example', XMPP_DOMAIN)));
    expect(err.code).toBe('DOMAIN_NOT_SERVED');
    expect(err.condition).toBe('item-not-found');
  });

  it('refuses a SIP address given where an XMPP one belongs', () => {
    expect(refusal(() => sipAddressAt(sip('alice', COMPONENT))).code).toBe('ADDRESS_WRONG_SIDE');
  });
});

describe('AddressTranslator.sipRecipientToXmpp: whom SIP users reach', () => {
  it('reaches bob@<xmpp domain> at sip:bob@<xmpp domain>', () => {
    expect(translator.sipRecipientToXmpp(sip('bob', XMPP_DOMAIN))).toEqual(xmpp('bob', XMPP_DOMAIN));
  });

  it('compares the domain case-insensitively and answers in lower case', () => {
    expect(translator.sipRecipientToXmpp(sip('bob', 'Chat.Example.NET'))).toEqual(xmpp('bob', 'chat.example.net'));
  });

  it.each([
    ["o'malley", 'o\\27malley'],
    ['m&m', 'm\\26m'],
    ['a/b', 'a\\2fb'],
    ['f\u00fc', 'f\u00fc'],
  ])('escapes the user %j to the localpart %j (RFC 7247 §6.4 step 5)', (user, localpart) => {
    expect(translator.sipRecipientToXmpp(sip(user, XMPP_DOMAIN))).toEqual(xmpp(localpart, XMPP_DOMAIN));
  });

  it('refuses a domain the bridge does not serve with item-not-found and SIP 404', () => {
    const err = refusal(() => translator.sipRecipientToXmpp(sip('bob', 'elsewhere.example')));
    expect(err).toMatchObject({ code: 'DOMAIN_NOT_SERVED', condition: 'item-not-found', sipStatus: 404 });
  });

  it.each(['', ' bob', 'bob ', 'nul\u0000', 'zero\u200bwidth', 'nbsp\u00a0x', 'bullet\u2022', 'x'.repeat(1024)])(
    'refuses the user %j, which cannot be a localpart, as jid-malformed with SIP 404',
    (user) => {
      const err = refusal(() => translator.sipRecipientToXmpp(sip(user, XMPP_DOMAIN)));
      expect(err).toMatchObject({ code: 'JID_MALFORMED', condition: 'jid-malformed', sipStatus: 404 });
    },
  );
});

describe('AddressTranslator.xmppSenderToSip: how SIP users see XMPP senders', () => {
  it('shows juliet@xmpp.example.org/balcony as sip:juliet@xmpp.example.org (resource dropped)', () => {
    expect(translator.xmppSenderToSip(xmpp('juliet', XMPP_DOMAIN, 'balcony'))).toEqual(sip('juliet', XMPP_DOMAIN));
  });

  it.each([
    ['m\\26m', 'm&m'],
    ['o\\27malley', "o'malley"],
    ['a\\2fb', 'a/b'],
    ['tsch\u00fcss', 'tsch\u00fcss'],
    ['space\\20cadet', 'space cadet'],
  ])('unescapes the localpart %j to the SIP user %j (RFC 7247 §6.5 step 3)', (localpart, user) => {
    expect(translator.xmppSenderToSip(xmpp(localpart, XMPP_DOMAIN))).toEqual(sip(user, XMPP_DOMAIN));
  });

  it.each([
    ['', XMPP_DOMAIN],
    ['juliet', 'b\u00fccher.example'],
    ['a b', XMPP_DOMAIN],
  ])('refuses the sender %j at %j as jid-malformed', (user, domain) => {
    expect(refusal(() => translator.xmppSenderToSip(xmpp(user, domain))).condition).toBe('jid-malformed');
  });
});

describe('AddressTranslator construction', () => {
  it('refuses a component domain that is not a host name', () => {
    const err = refusal(
      () => new AddressTranslator({ componentDomain: 'not a host', xmppDomains: [XMPP_DOMAIN] }),
    );
    expect(err.code).toBe('DOMAIN_INVALID');
    expect(err.message).toContain('xmpp.component');
  });
});

// Generators for SIP users that can be localparts: letters, digits, the odd characters,
// and non-ASCII letters, never a space at either end.
const userChar = fc.constantFrom(
  ...'abcXYZ019+-_.!~*()$,;?=%#[]^`{|}'.split(''),
  '@', '/', "'", '"', '&', '<', '>', ':', ' ', '\\',
  '\u00fc', '\u00e9', '\u5f20', '\u0416', '\u{20BB7}',
);
const sipUser = fc
  .array(userChar, { minLength: 1, maxLength: 24 })
  .map((cs) => cs.join(''))
  .filter((u) => !u.startsWith(' ') && !u.endsWith(' '));
const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/);
const sipHost = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));

describe('AddressTranslator properties', () => {
  it('an XMPP user replying to a SIP sender reaches that same SIP user', () => {
    fc.assert(
      fc.property(sipUser, sipHost, (user, domain) => {
        const from = sip(user, domain);
        // The user part comes back as the XMPP server keeps it: lower case (RFC 7622 §3.3).
        expect(sipAddressAt(translator.sipSenderToXmpp(from))).toEqual(sip(user.toLowerCase(), domain));
      }),
      { numRuns: 1000 },
    );
  });

  it('a SIP user replying to an XMPP sender reaches that same bare JID', () => {
    fc.assert(
      fc.property(sipUser, fc.constantFrom(XMPP_DOMAIN, 'chat.example.net'), (user, domain) => {
        const jid = translator.sipRecipientToXmpp(sip(user, domain));
        expect(translator.sipRecipientToXmpp(translator.xmppSenderToSip({ ...jid, resource: 'r' }))).toEqual(jid);
      }),
      { numRuns: 1000 },
    );
  });

  it('every JID it makes for a SIP sender has a valid localpart', () => {
    fc.assert(
      fc.property(sipUser, sipHost, (user, domain) => {
        expect(localpartProblem(translator.sipSenderToXmpp(sip(user, domain)).user)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  it('any string as a SIP user either maps and comes back or is refused as jid-malformed', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 24 }), sipHost, (user, domain) => {
        const from = sip(user, domain);
        let jid: Address;
        try {
          jid = translator.sipSenderToXmpp(from);
        } catch (err) {
          expect(err).toBeInstanceOf(BridgeError);
          expect((err as BridgeError).condition).toBe('jid-malformed');
          return;
        }
        // Mapped once, an address is a fixed point: its reply address maps to the same JID.
        const back = sipAddressAt(jid);
        expect(back.domain).toBe(from.domain);
        expect(translator.sipSenderToXmpp(back)).toEqual(jid);
      }),
      { numRuns: 1000 },
    );
  });

  it('any string as a localpart on the component domain is mapped or refused with a BridgeError', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 24 }), (user) => {
        try {
          const to = translator.xmppRecipient(xmpp(user, COMPONENT));
          expect(to.kind === 'number' || to.address.side === 'sip').toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(BridgeError);
          expect(['jid-malformed', 'item-not-found']).toContain((err as BridgeError).condition);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
