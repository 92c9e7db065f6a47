import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  MAX_ERE_CHOICES,
  applySubstitution,
  backtrackingRisk,
  chooseEnumRules,
  enumDomain,
  enumServices,
  normalizeEnumSuffix,
  sipAddressOfRecord,
  xmppBareJid,
  type NaptrRecord,
} from '../../src/mapping/enum-rewrite.js';
import { refusal } from '../support/refusal.js';

function naptr(fields: Partial<NaptrRecord>): NaptrRecord {
  return { order: 100, preference: 10, flags: 'u', service: 'E2U+sip', regexp: '', replacement: '', ...fields };
}

describe('enumDomain (RFC 6116 §3.2 First Well Known Rule)', () => {
  it.each([
    ['+15551234567', undefined, '7.6.5.4.3.2.1.5.5.5.1.e164.arpa'],
    ['+442079460148', undefined, '8.4.1.0.6.4.9.7.0.2.4.4.e164.arpa'],
    ['+15551234567', 'enum.corp.example', '7.6.5.4.3.2.1.5.5.5.1.enum.corp.example'],
    ['+4930', '.ENUM.Corp.Example.', '0.3.9.4.enum.corp.example'],
  ])('given %s under suffix %s, then the key is %s', (e164, suffix, expected) => {
    expect(enumDomain(e164, suffix)).toBe(expected);
  });

  it.each(['15551234567', '+0555', '+1', '+1234567890123456', '+1-555-123', 'tel:+15551234567', ''])(
    'given the non-E.164 string "%s", then it is refused with ENUM_BAD_NUMBER',
    (input) => {
      expect(refusal(() => enumDomain(input)).code).toBe('ENUM_BAD_NUMBER');
    },
  );

  it.each(['', '.', 'e164..arpa', '-bad.example', 'under_score.example', 'sp ace.example'])(
    'given the suffix "%s", then it is refused with ENUM_BAD_SUFFIX',
    (suffix) => {
      expect(refusal(() => normalizeEnumSuffix(suffix)).code).toBe('ENUM_BAD_SUFFIX');
    },
  );

  it('property: the key is the reversed digits joined by dots, then the suffix', () => {
    const e164 = fc
      .tuple(fc.integer({ min: 1, max: 9 }), fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 14 }))
      .map(([first, rest]) => `+${first}${rest.join('')}`);
    fc.assert(
      fc.property(e164, (number) => {
        const domain = enumDomain(number, 'e164.arpa');
        const labels = domain.split('.');
        expect(labels.slice(-2)).toEqual(['e164', 'arpa']);
        const digitLabels = labels.slice(0, -2);
        expect(digitLabels.every((l) => /^[0-9]$/.test(l))).toBe(true);
        expect(digitLabels.reverse().join('')).toBe(number.slice(1));
      }),
    );
  });
});

describe('applySubstitution (RFC 3402 §3.2 regexp rewrite)', () => {
  it.each([
    ['whole match', '!^.*$!sip:alice@corp.example!', '+15551234567', 'sip:alice@corp.example'],
    ['one backref', '!^\\+1(.*)$!sip:\\1@corp.example!', '+15551234567', 'sip:5551234567@corp.example'],
    [
      'several backrefs',
      '!^\\+(1)(555)(.*)$!sip:\\3-\\2-\\1@corp.example!',
      '+15551234567',
      'sip:1234567-555-1@corp.example',
    ],
    ['empty backref', '!^\\+1(x?)(.*)$!sip:a\\1b@\\2.example!', '+1555', 'sip:ab@555.example'],
    ['other delimiter #', '#^.*$#xmpp:bob@chat.example#', '+4930123', 'xmpp:bob@chat.example'],
    ['other delimiter /', '/^\\+49(.*)$/sip:\\1@de.example/', '+4930123', 'sip:30123@de.example'],
    ['escaped delimiter in repl', '!^.*$!sip:hi\\!there@corp.example!', '+1555', 'sip:hi!there@corp.example'],
    ['escaped delimiter in ERE', '/^\\+1(5\\/?55)$/sip:\\1@x.example/', '+1555', 'sip:555@x.example'],
    ['i flag', '!^\\+1(.*)$!sip:\\1@Corp.Example!i', '+1555', 'sip:555@Corp.Example'],
    ['upper-case I flag', '!^.*$!sip:a@b.example!I', '+1555', 'sip:a@b.example'],
    ['sed-style partial match', '!^\\+1!sip:!', '+1555', 'sip:555'],
    ['POSIX bracket class', '!^\\+1([[:digit:]]{3})$!sip:\\1@x.example!', '+1555', 'sip:555@x.example'],
    ['static text keeps its case', '!^.*$!sip:Alice.Smith@corp.example!', '+1555', 'sip:Alice.Smith@corp.example'],
    ['literal dollar in repl', '!^.*$!sip:$1@x.example!', '+1555', 'sip:$1@x.example'],
  ])('given %s (%s) applied to %s, then the result is %s', (_name, field, aus, expected) => {
    expect(applySubstitution(field, aus)).toBe(expected);
  });

  it('given an ERE that does not match the number, then the rule does not apply', () => {
    expect(applySubstitution('!^\\+44(.*)$!sip:\\1@uk.example!', '+15551234567')).toBeUndefined();
  });

  it.each([
    ['too few delimiters', '!^.*$!sip:a@b.example'],
    ['too many delimiters', '!^.*$!sip:a!b@c.example!'],
    ['digit delimiter', '1^.*$1sip:a@b.example1'],
    ['flag character as delimiter', 'i^.*$isip:a@b.examplei'],
    ['backslash delimiter', '\\^.*$\\sip:a@b.example\\'],
    ['unknown flag', '!^.*$!sip:a@b.example!g'],
    ['backref \\0', '!^(.*)$!sip:\\0@b.example!'],
    ['backref past the groups', '!^(.*)$!sip:\\2@b.example!'],
    ['unknown escape in repl', '!^.*$!sip:\\a@b.example!'],
    ['ERE that does not compile', '!^(.*$!sip:a@b.example!'],
    ['empty ERE', '!!sip:a@b.example!'],
    ['lone trailing backslash', '!^.*$!sip:a@b.example\\'],
  ])('given a malformed field (%s), then it is refused with a reason', (_name, field) => {
    const result = applySubstitution(field, '+15551234567');
    expect(result).toEqual({ refused: expect.any(String) });
  });
});

describe('backtrackingRisk (an ERE from the DNS must not freeze the bridge)', () => {
  it.each([
    '^.*$',
    '^\\+1(.*)$',
    '^\\+1(\\d{3})(\\d{3})(\\d{4})$',
    '^\\+(1|44)(.*)$',
    '^\\+1([0-9])*$',
    '^\\+1(\\d+)?$',
    '^\\+1([*+|(]+)$',
    '^\\+1([]*+])$',
    '^\\+1([[:digit:]]*)$',
  ])('given the everyday ERE %s, then it is accepted', (ere) => {
    expect(backtrackingRisk(ere)).toBeUndefined();
  });

  it.each([
    ['((\\d*)*)*x', /repeated group/],
    ['(\\d+)+x', /repeated group/],
    ['(\\d|\\d)*x', /repeated group/],
    ['((\\d)|1)*x', /repeated group/],
    ['(\\d*){15}x', /repeated group/],
    ['\\d*'.repeat(MAX_ERE_CHOICES + 1) + 'x', /more than/],
  ])('given the exponential ERE %s, then it is refused', (ere, reason) => {
    expect(backtrackingRisk(ere)).toMatch(reason);
  });

  it('given a record with a refused ERE, then the rewrite refuses it without running it', () => {
    expect(applySubstitution('!((\\d*)*)*x!sip:a@b.example!', '+123456789012345')).toEqual({
      refused: expect.stringMatching(/repeated group/),
    });
  });
});

describe('delimiters (RFC 3402 §3.2 escapeddelim)', () => {
  it('property: any static text, its delimiter escaped, comes back as written', () => {
    const delimiter = fc.constantFrom('!', '#', '/', '|', '@', '%', ':', '~');
    const text = fc.string({ unit: fc.constantFrom('a', 'B', '!', '#', '/', '|', '@', '%', ':', '~', '.', ';', '='), minLength: 1 });
    fc.assert(
      fc.property(delimiter, text, (d, t) => {
        const field = `${d}^.*$${d}${t.split(d).join(`\\${d}`)}${d}`;
        expect(applySubstitution(field, '+15551234567')).toBe(t);
      }),
    );
  });

  it('property: a whole-number backref wrapped in text gives the text around the number', () => {
    const number = fc.stringMatching(/^\+[1-9][0-9]{1,14}$/);
    const text = fc.string({ unit: fc.constantFrom('a', 'Z', ':', '@', '.', '-'), maxLength: 10 });
    fc.assert(
      fc.property(number, text, text, (n, before, after) => {
        expect(applySubstitution(`!^(.*)$!${before}\\1${after}!`, n)).toBe(`${before}${n}${after}`);
      }),
    );
  });
});

describe('enumServices (RFC 6116 §3.4.3)', () => {
  it.each([
    ['E2U+sip', ['sip']],
    ['e2u+SIP', ['sip']],
    ['E2U+voice:tel+sms:tel', ['voice:tel', 'sms:tel']],
    ['E2U+xmpp', ['xmpp']],
    ['E2U', undefined],
    ['sip+E2U', ['sip']],
    ['sip+voice+E2U', undefined],
    ['SIP+D2U', undefined],
    ['', undefined],
  ])('given the services field "%s", then the enumservices are %j', (field, expected) => {
    expect(enumServices(field)).toEqual(expected);
  });
});

describe('chooseEnumRules (RFC 6116 §5.2 selection)', () => {
  const wanted = ['E2U+sip', 'E2U+xmpp'];
  const aus = '+15551234567';

  it('given two sip rules of one ORDER, then the lower PREFERENCE wins whatever the DNS order', () => {
    const records = [
      naptr({ preference: 20, regexp: '!^.*$!sip:second@x.example!' }),
      naptr({ preference: 10, regexp: '!^.*$!sip:first@x.example!' }),
    ];
    expect(chooseEnumRules(records, aus, wanted).chosen.map((c) => c.uri)).toEqual(['sip:first@x.example']);
  });

  it('given a lower ORDER with a worse PREFERENCE, then ORDER is the major sort term', () => {
    const records = [
      naptr({ order: 200, preference: 1, regexp: '!^.*$!sip:late@x.example!' }),
      naptr({ order: 100, preference: 99, regexp: '!^.*$!sip:early@x.example!' }),
    ];
    expect(chooseEnumRules(records, aus, wanted).chosen.map((c) => c.uri)).toEqual(['sip:early@x.example']);
  });

  it('given equal ORDER and PREFERENCE, then the DNS order decides', () => {
    const records = [
      naptr({ regexp: '!^.*$!sip:one@x.example!' }),
      naptr({ regexp: '!^.*$!sip:two@x.example!' }),
    ];
    expect(chooseEnumRules(records, aus, wanted).chosen.map((c) => c.uri)).toEqual(['sip:one@x.example']);
  });

  it('given sip and xmpp rules, then one of each is chosen', () => {
    const records = [
      naptr({ service: 'E2U+xmpp', preference: 5, regexp: '!^.*$!xmpp:alice@chat.example!' }),
      naptr({ service: 'E2U+sip', preference: 10, regexp: '!^.*$!sip:alice@corp.example!' }),
    ];
    const { chosen } = chooseEnumRules(records, aus, wanted);
    expect(chosen.map((c) => [c.kind, c.uri])).toEqual([
      ['xmpp', 'xmpp:alice@chat.example'],
      ['sip', 'sip:alice@corp.example'],
    ]);
  });

  it.each([
    ['non-terminal (empty flags)', naptr({ flags: '', preference: 1, replacement: 'other.example' }), /non-terminal/],
    ['unknown flag', naptr({ flags: 's', preference: 1, regexp: '!^.*$!sip:s@x.example!' }), /unknown flags/],
    ['unknown flag beside u', naptr({ flags: 'UP', preference: 1, regexp: '!^.*$!sip:s@x.example!' }), /unknown flags/],
    ['unwanted service', naptr({ service: 'E2U+email:mailto', preference: 1, regexp: '!^.*$!mailto:a@x.example!' }), /not wanted/],
    ['malformed regexp', naptr({ preference: 1, regexp: '!^.*$!sip:bad@x.example' }), /malformed regexp/],
    ['regexp and replacement both set', naptr({ preference: 1, regexp: '!^.*$!sip:b@x.example!', replacement: 'x.example' }), /replacement/],
    ['non-matching regexp', naptr({ preference: 1, regexp: '!^\\+44.*$!sip:uk@x.example!' }), /does not match/],
    ['not an absolute URI', naptr({ preference: 1, regexp: '!^.*$!alice at x.example!' }), /absolute URI/],
    ['SIP URI without a user', naptr({ preference: 1, regexp: '!^.*$!sip:x.example!' }), /no user@domain/],
    ['non-SIP/XMPP URI', naptr({ preference: 1, regexp: '!^.*$!mailto:a@x.example!' }), /neither/],
  ])('given a %s record before a good one, then it is skipped and the good one chosen', (_name, bad, reason) => {
    const good = naptr({ preference: 50, regexp: '!^.*$!sip:good@x.example!' });
    const { chosen, skipped } = chooseEnumRules([bad, good], aus, wanted);
    expect(chosen.map((c) => c.uri)).toEqual(['sip:good@x.example']);
    expect(skipped).toEqual([{ record: bad, reason: expect.stringMatching(reason) }]);
  });

  it('given flags and services in another case, then they still match (RFC 6116 §3.6)', () => {
    const records = [naptr({ flags: 'U', service: 'e2u+SIP', regexp: '!^.*$!sip:a@x.example!' })];
    expect(chooseEnumRules(records, aus, ['E2U+sip']).chosen.map((c) => c.uri)).toEqual(['sip:a@x.example']);
  });

  it('given a compound services field holding a wanted enumservice, then the record is used', () => {
    const records = [naptr({ service: 'E2U+voice:tel+sip', regexp: '!^.*$!sip:a@x.example!' })];
    expect(chooseEnumRules(records, aus, wanted).chosen.map((c) => c.kind)).toEqual(['sip']);
  });

  it('given only E2U+sip is configured, then an xmpp rule is not used', () => {
    const records = [naptr({ service: 'E2U+xmpp', regexp: '!^.*$!xmpp:a@x.example!' })];
    const { chosen, skipped } = chooseEnumRules(records, aus, ['E2U+sip']);
    expect(chosen).toEqual([]);
    expect(skipped.map((s) => s.reason)).toEqual([expect.stringMatching(/not wanted/)]);
  });
});

describe('URI → identity field', () => {
  it.each([
    ['sip:alice@corp.example', 'sip:alice@corp.example'],
    ['sip:Alice@Corp.Example;user=phone?subject=x', 'sip:Alice@corp.example'],
    ['SIPS:bob@corp.example:5061;transport=tls', 'sips:bob@corp.example'],
    ['sip:corp.example', undefined],
    ['sip:', undefined],
  ])('given %s, then the SIP address of record is %s', (uri, expected) => {
    expect(sipAddressOfRecord(uri)).toBe(expected);
  });

  it.each([
    ['xmpp:alice@chat.example', 'alice@chat.example'],
    ['xmpp:alice@Chat.Example/phone?message', 'alice@chat.example'],
    ['xmpp://gw@chat.example/o%27malley@chat.example', "o'malley@chat.example"],
    ['xmpp:chat.example', undefined],
    ['xmpp:%E0%A4%A@chat.example', undefined],
  ])('given %s, then the bare JID is %s', (uri, expected) => {
    expect(xmppBareJid(uri)).toBe(expected);
  });
});
