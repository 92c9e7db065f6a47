/**
 * Cross-protocol error tables, transcribed from RFC 7247 §7 ("Error Mapping"; the tables are
 * Table 2 in §7.1 and Table 3 in §7.2). The RFC calls them "suggested mappings" that gateways
 * SHOULD follow; where it offers a choice, the choice made here is written beside the row.
 */
import type { StanzaErrorCondition } from '../core/errors.js';

/**
 * RFC 7247 §7.1 Table 2, the "SIP Response Code" column verbatim (footnote marks included), so
 * the tests and docs can show the RFC's words next to the status chosen below.
 */
export const RFC7247_TABLE2_AS_PRINTED: Readonly<Record<StanzaErrorCondition, string>> = Object.freeze({
  'bad-request': '400',
  conflict: '400',
  'feature-not-implemented': '405 or 501 (1)',
  forbidden: '403 or 603 (2)',
  gone: '301 or 410 (3)',
  'internal-server-error': '500',
  'item-not-found': '404 or 604 (2)',
  'jid-malformed': '400',
  'not-acceptable': '406 or 606 (2)',
  'not-allowed': '403',
  'not-authorized': '401',
  'policy-violation': '403',
  'recipient-unavailable': '480 or 600 (2)',
  redirect: '302',
  'registration-required': '407',
  'remote-server-not-found': '404 or 408 (4)',
  'remote-server-timeout': '408',
  'resource-constraint': '500',
  'service-unavailable': 'see note (5) below',
  'subscription-required': '400',
  'undefined-condition': '400',
  'unexpected-request': '491 or 400',
});

/**
 * XMPP condition → SIP status used when nothing more is known about the error (RFC 7247 §7.1).
 * Where the RFC gives two codes, the 4xx ("full JID") one is the default: a 6xx is a global
 * failure that stops a SIP proxy from trying the user's other devices (RFC 3261 §21.6), a
 * claim the bridge can only make when it knows the error was about the bare JID; callers that
 * know say so through {@link sipStatusForXmppError}.
 */
export const XMPP_CONDITION_TO_SIP_STATUS: Readonly<Record<StanzaErrorCondition, number>> = Object.freeze({
  'bad-request': 400,
  conflict: 400,
  // Note (1) offers 405 (full JID) or 501 (bare JID); 405 needs an Allow header
  // (RFC 3261 §21.4.6) that a table cannot supply, so 501 is the default.
  'feature-not-implemented': 501,
  forbidden: 403,
  // Note (3): 301 only when the <gone/> carries the new address (then it MUST be 301).
  gone: 410,
  'internal-server-error': 500,
  'item-not-found': 404,
  'jid-malformed': 400,
  'not-acceptable': 406,
  'not-allowed': 403,
  'not-authorized': 401,
  'policy-violation': 403,
  'recipient-unavailable': 480,
  redirect: 302,
  'registration-required': 407,
  // Note (4): 404 when the remote server does not exist, 408 when it cannot be resolved.
  'remote-server-not-found': 404,
  'remote-server-timeout': 408,
  'resource-constraint': 500,
  // Note (5): 503 is NOT RECOMMENDED (SIP reads it as "this whole server is down"); 403 and
  // 405 are "closest in meaning", and 405 needs an Allow header, so 403.
  'service-unavailable': 403,
  'subscription-required': 400,
  'undefined-condition': 400,
  // "491 or 400": 491 Request Pending is about a pending request in the same dialog
  // (RFC 3261 §21.4.27), which page-mode MESSAGE never has; 400 says what we know.
  'unexpected-request': 400,
});

/** What the caller knows about an XMPP error, for the footnotes of RFC 7247 §7.1 Table 2. */
export interface XmppErrorContext {
  /**
   * Whether the error was about a bare JID (user: all their devices) or a full JID (one
   * device). Notes (1) and (2): bare JID → 501 / 6xx, full JID → 405 / 4xx. Omitted: the
   * table default.
   */
  readonly about?: 'bare-jid' | 'full-jid';
  /** Note (3): a <gone/> carrying the new address MUST map to 301, otherwise to 410. */
  readonly goneHasNewAddress?: boolean;
  /** Note (4): 404 for a remote server that does not exist, 408 for one that cannot be resolved. */
  readonly remoteServer?: 'does-not-exist' | 'unresolvable';
}

/** Note (2) of Table 2: the 6xx (bare JID) alternative of a 4xx default. */
const BARE_JID_STATUS: Partial<Readonly<Record<StanzaErrorCondition, number>>> = Object.freeze({
  forbidden: 603,
  'item-not-found': 604,
  'not-acceptable': 606,
  'recipient-unavailable': 600,
});

/**
 * RFC 7247 §7.2 Table 3: SIP response code → XMPP condition, for the codes the table names.
 * Footnotes: (1) 301 → <gone/> MUST carry the new address, 410 → <gone/> MUST NOT; (2) 402: the
 * <payment-required/> condition was removed in RFC 6120; (3) 403 may also be <not-allowed/> or
 * <policy-violation/>; (4) 404 may also be <remote-server-not-found/>; (5) 408 may also be
 * <remote-server-not-found/>; (6) 430/439 are RFC 5626, (7) 440 RFC 5393, (8) 489 RFC 6665;
 * (9) 503 → <internal-server-error/> because XMPP <service-unavailable/> means something else
 * (see Table 2 note (5)).
 */
export const SIP_STATUS_TO_XMPP_CONDITION: ReadonlyMap<number, StanzaErrorCondition> = new Map<
  number,
  StanzaErrorCondition
>([
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
]);

/**
 * RFC 7247 §7.2: "If a gateway encounters a SIP response code that is not listed below, it
 * SHOULD map a 3xx-series code to <redirect/>, a 4xx-series code to <bad-request/>, a 5xx-series
 * code to <internal-server-error>, and a 6xx-series code to <recipient-unavailable/>." (These
 * are also Table 3's "3xx"/"4xx"/"5xx"/"6xx" rows, and what RFC 3261 §8.1.3.2 gives: an unknown
 * code is treated as the x00 of its class.)
 */
export const SIP_CLASS_TO_XMPP_CONDITION: Readonly<Record<3 | 4 | 5 | 6, StanzaErrorCondition>> = Object.freeze({
  3: 'redirect',
  4: 'bad-request',
  5: 'internal-server-error',
  6: 'recipient-unavailable',
});

/**
 * The XMPP condition for a SIP failure response (RFC 7247 §7.2): the Table 3 row when there is
 * one, else the class rule above. RFC 7247 maps no 1xx/2xx code (they are not failures) and SIP
 * has no status outside 100–699 (RFC 3261 §7.2), so anything else gives <undefined-condition/>
 * rather than a guess.
 */
export function conditionForSipStatus(status: number): StanzaErrorCondition {
  const listed = SIP_STATUS_TO_XMPP_CONDITION.get(status);
  if (listed !== undefined) return listed;
  if (!Number.isInteger(status) || status < 300 || status > 699) return 'undefined-condition';
  return SIP_CLASS_TO_XMPP_CONDITION[Math.floor(status / 100) as 3 | 4 | 5 | 6];
}

/** The SIP status for an XMPP condition when nothing more is known (RFC 7247 §7.1 Table 2). */
export function sipStatusForCondition(condition: StanzaErrorCondition): number {
  return XMPP_CONDITION_TO_SIP_STATUS[condition];
}

/** The SIP status for an XMPP error, applying the footnotes of RFC 7247 §7.1 Table 2. */
export function sipStatusForXmppError(condition: StanzaErrorCondition, context: XmppErrorContext): number {
  if (condition === 'gone' && context.goneHasNewAddress !== undefined) {
    return context.goneHasNewAddress ? 301 : 410;
  }
  if (condition === 'remote-server-not-found' && context.remoteServer !== undefined) {
    return context.remoteServer === 'unresolvable' ? 408 : 404;
  }
  if (condition === 'feature-not-implemented' && context.about !== undefined) {
    return context.about === 'full-jid' ? 405 : 501;
  }
  if (context.about === 'bare-jid') {
    const userWide = BARE_JID_STATUS[condition];
    if (userWide !== undefined) return userWide;
  }
  return sipStatusForCondition(condition);
}
