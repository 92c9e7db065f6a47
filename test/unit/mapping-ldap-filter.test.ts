import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/core/errors.js';
import {
  FilterTemplate,
  directoryNumberToE164,
  escapeFilterValue,
  jidOf,
  numberPattern,
  withoutSeparators,
  parseSipAddress,
  sipAddressOf,
} from '../../src/mapping/identity/ldap-filter.js';

/** RFC 4515 §3 read back: `\XX` → the byte it stands for. */
function unescape(value: string): string {
  return value.replace(/\\([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

describe('escapeFilterValue (RFC 4515 §3)', () => {
  it.each([
    ['plain', 'alice@corp.example', 'alice@corp.example'],
    ['asterisk', 'a*b', 'a\\2ab'],
    ['parentheses', '*)(uid=*', '\\2a\\29\\28uid=\\2a'],
    ['backslash', 'a\\b', 'a\\5cb'],
    ['NUL', 'a\0b', 'a\\00b'],
    ['UTF-8 passes through', 'Zoë', 'Zoë'],
  ])('%s', (_, value, escaped) => {
    expect(escapeFilterValue(value)).toBe(escaped);
  });

  it('leaves no character that could end the assertion or start a wildcard', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (value) => {
        expect(escapeFilterValue(value)).not.toMatch(/[*()\0]|\\(?![0-9a-f]{2})/);
      }),
    );
  });

  it('reads back to the value it escaped', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (value) => {
        expect(unescape(escapeFilterValue(value))).toBe(value);
      }),
    );
  });
});

describe('numberPattern', () => {
  it('puts a wildcard between every digit after the +', () => {
    expect(numberPattern('+15551234567')).toBe('+1*5*5*5*1*2*3*4*5*6*7');
  });

  it('refuses anything but + and digits, so no wildcard or parenthesis comes from outside', () => {
    expect(() => numberPattern('+1555*)(uid=*')).toThrow(/not an E.164 number/);
  });
});

describe('FilterTemplate', () => {
  const sip = (source: string): FilterTemplate => new FilterTemplate('bySipAddress', source, ['sip', 'user', 'domain']);

  it('escapes every substituted value', () => {
    expect(sip('(mail={user}@{domain})').render({ user: 'a*)(b', domain: 'corp.example' })).toBe('(mail=a\\2a\\29\\28b@corp.example)');
  });

  it('substitutes a verbatim placeholder as built', () => {
    const t = new FilterTemplate('byNumber', '(ipPhone={numberPattern})', ['number', 'numberPattern'], ['numberPattern']);
    expect(t.render({ numberPattern: '+1*2' })).toBe('(ipPhone=+1*2)');
  });

  it('names the attributes it asserts on a placeholder', () => {
    expect(sip('(|(msRTCSIP-PrimaryUserAddress={sip})(proxyAddresses=SIP:{user}@{domain})(objectClass=person))').attributes).toEqual([
      'msRTCSIP-PrimaryUserAddress',
      'proxyAddresses',
    ]);
  });

  it.each([
    ['no parentheses', 'mail={user}', /wrapped in parentheses/],
    ['unbalanced (', '((mail={user})', /unbalanced "\("/],
    ['unbalanced )', '(mail={user}))(x=y)', /unbalanced "\)"/],
    ['unknown placeholder', '(mail={number})', /unknown placeholder \{number\}/],
    ['no placeholder', '(objectClass=person)', /uses no placeholder/],
  ])('refuses a template with %s', (_, source, reason) => {
    expect(() => sip(source)).toThrow(BridgeError);
    expect(() => sip(source)).toThrow(reason);
  });
});

describe('parseSipAddress', () => {
  it.each([
    ['sip:alice@corp.example', { user: 'alice', domain: 'corp.example', sip: 'sip:alice@corp.example' }],
    ['SIP:Alice@CORP.Example', { user: 'Alice', domain: 'corp.example', sip: 'sip:Alice@corp.example' }],
    ['sips:bob@corp.example:5061', { user: 'bob', domain: 'corp.example', sip: 'sip:bob@corp.example' }],
  ])('%s', (address, parts) => {
    expect(parseSipAddress(address)).toEqual(parts);
  });

  it.each(['alice@corp.example', 'sip:corp.example', 'sip:a@b@c', 'sip:alice@corp.example;transport=tcp', 'tel:+15551234567'])(
    'refuses %s',
    (address) => {
      expect(parseSipAddress(address)).toBeUndefined();
    },
  );
});

describe('sipAddressOf', () => {
  const attrs = ['msRTCSIP-PrimaryUserAddress', 'proxyAddresses'];

  it('takes msRTCSIP-PrimaryUserAddress first', () => {
    const entry = { 'msRTCSIP-PrimaryUserAddress': 'sip:alice@corp.example', proxyAddresses: ['SIP:other@corp.example'] };
    expect(sipAddressOf(entry, attrs)).toBe('sip:alice@corp.example');
  });

  it('takes the primary (upper-case) SIP: entry among proxyAddresses, skipping other types', () => {
    const entry = { proxyAddresses: ['SMTP:bob@corp.example', 'sip:old-bob@corp.example', 'X500:/o=Corp', 'SIP:bob@Corp.Example'] };
    expect(sipAddressOf(entry, attrs)).toBe('sip:bob@corp.example');
  });

  it('matches attribute names case-insensitively, as LDAP does', () => {
    expect(sipAddressOf({ proxyaddresses: 'sip:carol@corp.example' }, attrs)).toBe('sip:carol@corp.example');
  });

  it('answers undefined when no value is a SIP address', () => {
    expect(sipAddressOf({ proxyAddresses: ['SMTP:dave@corp.example'] }, attrs)).toBeUndefined();
  });
});

describe('jidOf', () => {
  it.each([
    ['alice@chat.corp.example', 'alice@chat.corp.example'],
    ['xmpp:alice@Chat.Corp.Example', 'alice@chat.corp.example'],
    ['alice@chat.corp.example/phone', undefined],
    ['not a jid', undefined],
  ])('%s → %s', (value, jid) => {
    expect(jidOf({ jabberID: value }, ['jabberID'])).toBe(jid);
  });
});

describe('directoryNumberToE164', () => {
  it.each([
    ['+15551234567', '+15551234567'],
    ['+1 555 123 4567', '+15551234567'],
    ['+44-20-7946-0958', '+442079460958'],
    ['+1 (555) 987-6543', '+15559876543'],
    ['+49 30.1234.5678', '+493012345678'],
    ['tel:+15551234567', '+15551234567'],
  ])('%s → %s', (value, e164) => {
    expect(directoryNumberToE164(value)).toBe(e164);
  });

  it.each(['555 123 4567', '+1 555 123 4567 x100', '+0123456', '+1234567890123456', '+1555CALLNOW', ''])('refuses %s', (value) => {
    expect(directoryNumberToE164(value)).toBeUndefined();
  });

  it('reads a national spelling with the configured default region', () => {
    expect(directoryNumberToE164('(555) 123-4567', 'US')).toBe('+15551234567');
  });

  it('maps any separator spelling of a number to the same E.164 form', () => {
    const separator = fc.constantFrom('', ' ', '-', '.', '/');
    // +44 20 …: a London number, 10 national digits.
    const digits = fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 8, maxLength: 8 });
    fc.assert(
      fc.property(digits, fc.array(separator, { minLength: 8, maxLength: 8 }), (rest, seps) => {
        const e164 = `+4420${rest.join('')}`;
        const spelled = `+44 20${rest.map((d, i) => `${seps[i]}${d}`).join('')}`;
        expect(directoryNumberToE164(spelled)).toBe(e164);
      }),
    );
  });
});

describe('withoutSeparators', () => {
  it.each([
    ['+1 (555) 123-4567', '+15551234567'],
    ['+44 20/7946.0958', '+442079460958'],
    ['tel:+15551234567', 'tel:+15551234567'],
    ['+1 555 123 4567 x100', '+15551234567x100'],
  ])('%s → %s', (value, compact) => {
    expect(withoutSeparators(value)).toBe(compact);
  });
});
