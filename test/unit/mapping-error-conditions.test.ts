import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { STANZA_ERROR_CONDITIONS, type StanzaErrorCondition } from '../../src/core/errors.js';
import {
  RFC7247_TABLE2_AS_PRINTED,
  SIP_STATUS_TO_XMPP_CONDITION,
  conditionForSipStatus,
  sipStatusForCondition,
  sipStatusForXmppError,
} from '../../src/mapping/error-conditions.js';

// RFC 7247 §7.1 Table 2, one row per table row: condition, codes the RFC allows, our default.
const TABLE_2: readonly [StanzaErrorCondition, readonly number[], number][] = [
  ['bad-request', [400], 400],
  ['conflict', [400], 400],
  ['feature-not-implemented', [405, 501], 501],
  ['forbidden', [403, 603], 403],
  ['gone', [301, 410], 410],
  ['internal-server-error', [500], 500],
  ['item-not-found', [404, 604], 404],
  ['jid-malformed', [400], 400],
  ['not-acceptable', [406, 606], 406],
  ['not-allowed', [403], 403],
  ['not-authorized', [401], 401],
  ['policy-violation', [403], 403],
  ['recipient-unavailable', [480, 600], 480],
  ['redirect', [302], 302],
  ['registration-required', [407], 407],
  ['remote-server-not-found', [404, 408], 404],
  ['remote-server-timeout', [408], 408],
  ['resource-constraint', [500], 500],
  // Note (5): no precise mapping; 503 NOT RECOMMENDED; 403 and 405 closest in meaning.
  ['service-unavailable', [403, 405], 403],
  ['subscription-required', [400], 400],
  ['undefined-condition', [400], 400],
  ['unexpected-request', [491, 400], 400],
];

// RFC 7247 §7.2 Table 3, one row per table row (the class rows "3xx".."6xx" are tested below).
const TABLE_3: readonly [number, StanzaErrorCondition][] = [
  [300, 'redirect'],
  [301, 'gone'],
  [302, 'redirect'],
  [305, 'redirect'],
  [380, 'not-acceptable'],
  [400, 'bad-request'],
  [401, 'not-authorized'],
  [402, 'bad-request'],
  [403, 'forbidden'],
  [404, 'item-not-found'],
  [405, 'feature-not-implemented'],
  [406, 'not-acceptable'],
  [407, 'registration-required'],
  [408, 'remote-server-timeout'],
  [410, 'gone'],
  [413, 'policy-violation'],
  [414, 'policy-violation'],
  [415, 'not-acceptable'],
  [416, 'not-acceptable'],
  [420, 'feature-not-implemented'],
  [421, 'not-acceptable'],
  [423, 'resource-constraint'],
  [430, 'recipient-unavailable'],
  [439, 'feature-not-implemented'],
  [440, 'policy-violation'],
  [480, 'recipient-unavailable'],
  [481, 'item-not-found'],
  [482, 'not-acceptable'],
  [483, 'not-acceptable'],
  [484, 'item-not-found'],
  [485, 'item-not-found'],
  [486, 'recipient-unavailable'],
  [487, 'recipient-unavailable'],
  [488, 'not-acceptable'],
  [489, 'policy-violation'],
  [491, 'unexpected-request'],
  [493, 'bad-request'],
  [500, 'internal-server-error'],
  [501, 'feature-not-implemented'],
  [502, 'remote-server-not-found'],
  [503, 'internal-server-error'],
  [504, 'remote-server-timeout'],
  [505, 'not-acceptable'],
  [513, 'policy-violation'],
  [600, 'recipient-unavailable'],
  [603, 'recipient-unavailable'],
  [604, 'item-not-found'],
  [606, 'not-acceptable'],
];

describe('RFC 7247 §7.1 Table 2: XMPP condition → SIP status', () => {
  it.each(TABLE_2)('<%s/> maps to one of %j, by default %i', (condition, allowed, expected) => {
    const status = sipStatusForCondition(condition);
    expect(status).toBe(expected);
    expect(allowed).toContain(status);
  });

  it('has a row for every RFC 6120 condition and no other', () => {
    expect(TABLE_2.map(([c]) => c).sort()).toEqual([...STANZA_ERROR_CONDITIONS].sort());
    expect(Object.keys(RFC7247_TABLE2_AS_PRINTED).sort()).toEqual([...STANZA_ERROR_CONDITIONS].sort());
  });

  it.each(TABLE_2.filter(([c]) => c !== 'service-unavailable'))(
    'the default for <%s/> is printed in the RFC cell',
    (condition) => {
      const printedCodes = RFC7247_TABLE2_AS_PRINTED[condition].match(/\b\d{3}\b/g)?.map(Number) ?? [];
      expect(printedCodes).toContain(sipStatusForCondition(condition));
    },
  );

  it('never maps <service-unavailable/> to 503 (note 5: NOT RECOMMENDED)', () => {
    expect(sipStatusForCondition('service-unavailable')).not.toBe(503);
    expect(sipStatusForXmppError('service-unavailable', { about: 'bare-jid' })).not.toBe(503);
  });
});

describe('RFC 7247 §7.1 Table 2 footnotes', () => {
  it.each([
    ['feature-not-implemented', 'full-jid', 405],
    ['feature-not-implemented', 'bare-jid', 501],
    ['forbidden', 'full-jid', 403],
    ['forbidden', 'bare-jid', 603],
    ['item-not-found', 'full-jid', 404],
    ['item-not-found', 'bare-jid', 604],
    ['not-acceptable', 'full-jid', 406],
    ['not-acceptable', 'bare-jid', 606],
    ['recipient-unavailable', 'full-jid', 480],
    ['recipient-unavailable', 'bare-jid', 600],
    ['not-allowed', 'bare-jid', 403],
  ] as const)('notes (1)(2): <%s/> about a %s gives %i', (condition, about, expected) => {
    expect(sipStatusForXmppError(condition, { about })).toBe(expected);
  });

  it('note (3): <gone/> with a new address MUST be 301, without MUST be 410', () => {
    expect(sipStatusForXmppError('gone', { goneHasNewAddress: true })).toBe(301);
    expect(sipStatusForXmppError('gone', { goneHasNewAddress: false })).toBe(410);
  });

  it('note (4): <remote-server-not-found/> is 404 when it does not exist, 408 when unresolvable', () => {
    expect(sipStatusForXmppError('remote-server-not-found', { remoteServer: 'does-not-exist' })).toBe(404);
    expect(sipStatusForXmppError('remote-server-not-found', { remoteServer: 'unresolvable' })).toBe(408);
  });

  it('with no context it gives the table default', () => {
    for (const condition of STANZA_ERROR_CONDITIONS) {
      expect(sipStatusForXmppError(condition, {})).toBe(sipStatusForCondition(condition));
    }
  });
});

describe('RFC 7247 §7.2 Table 3: SIP status → XMPP condition', () => {
  it.each(TABLE_3)('%i maps to <%s/>', (status, expected) => {
    expect(conditionForSipStatus(status)).toBe(expected);
  });

  it('holds exactly the listed rows', () => {
    expect([...SIP_STATUS_TO_XMPP_CONDITION.keys()].sort()).toEqual(TABLE_3.map(([s]) => s).sort());
  });

  it.each([
    [399, 'redirect'],
    [303, 'redirect'],
    [409, 'bad-request'],
    [429, 'bad-request'],
    [499, 'bad-request'],
    [580, 'internal-server-error'],
    [599, 'internal-server-error'],
    [601, 'recipient-unavailable'],
    [699, 'recipient-unavailable'],
  ] as const)('unlisted %i maps by its class to <%s/> (§7.2 "3xx".."6xx" rule)', (status, expected) => {
    expect(conditionForSipStatus(status)).toBe(expected);
  });

  it.each([100, 180, 200, 202, 299, 700, 99, 0, -404, 404.5, Number.NaN])(
    '%s is not a SIP failure and maps to <undefined-condition/>',
    (status) => {
      expect(conditionForSipStatus(status)).toBe('undefined-condition');
    },
  );

  it('maps every integer in 300–699 to the listed row or its class default', () => {
    fc.assert(
      fc.property(fc.integer({ min: 300, max: 699 }), (status) => {
        const listed = SIP_STATUS_TO_XMPP_CONDITION.get(status);
        const byClass = ['redirect', 'bad-request', 'internal-server-error', 'recipient-unavailable'][
          Math.floor(status / 100) - 3
        ];
        expect(conditionForSipStatus(status)).toBe(listed ?? byClass);
      }),
    );
  });
});
