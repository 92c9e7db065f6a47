/**
 * The header fields of SIP event notification (RFC 6665 §8.2) as the presence package (RFC
 * 3856) uses them: Event, Subscription-State, Expires and Accept. Pure functions of header
 * text; a malformed value is `undefined` (or throws SipParseError 400 where the caller must
 * refuse the request).
 */
import { headerValue, headerValues, type SipMessage } from '../codec/message.js';
import { SipParseError } from '../codec/parse-error.js';
import { splitHeaderList } from '../codec/uri.js';
import { PIDF_CONTENT_TYPE } from '../pidf.js';

/** RFC 3856 §4: the presence event package. */
export const PRESENCE_EVENT = 'presence';

/** RFC 6665 §4.1.3 Subscription-State values with their parameters. */
export interface SubscriptionStateValue {
  readonly state: 'active' | 'pending' | 'terminated';
  /** Seconds left (active, pending). */
  readonly expires?: number;
  /** Why it ended (terminated): deactivated, probation, rejected, timeout, giveup, noresource, invariant… */
  readonly reason?: string;
  /** Seconds to wait before subscribing again (terminated). */
  readonly retryAfter?: number;
}

/**
 * The event-type of the Event header (RFC 6665 §8.2.1: compared byte by byte, parameters other
 * than `id` ignored), or undefined when the header is absent. `o` is the compact form, which
 * the parser has already expanded.
 */
export function eventPackage(msg: SipMessage): string | undefined {
  const value = headerValue(msg, 'Event');
  if (value === undefined) return undefined;
  return value.split(';')[0]!.trim();
}

/** The Event header's `id` parameter (RFC 6665 §8.2.1), if any. */
export function eventId(msg: SipMessage): string | undefined {
  const value = headerValue(msg, 'Event');
  return value === undefined ? undefined : paramsOf(value.split(';').slice(1))['id'];
}

/**
 * Expires in seconds (RFC 3261 §20.19: delta-seconds), undefined when absent. Values past
 * 2^32-1 are taken as that (§20.19 lets a UA do so); anything else malformed is a 400.
 */
export function expiresOf(msg: SipMessage): number | undefined {
  const value = headerValue(msg, 'Expires');
  if (value === undefined) return undefined;
  if (!/^\d{1,20}$/.test(value)) throw new SipParseError(400, 'Malformed Expires');
  return Math.min(Number(value), 2 ** 32 - 1);
}

/**
 * Whether the subscriber takes PIDF (RFC 3856 §6.5: an absent Accept means PIDF; RFC 6665
 * §4.1.2.1: otherwise it must be listed, else 406). `application/*` and `*\/*` count, unless
 * the entry has q=0 (RFC 3261 §20.1).
 */
export function acceptsPidf(msg: SipMessage): boolean {
  const values = headerValues(msg, 'Accept');
  if (values.length === 0) return true;
  // RFC 3261 §20.1: an empty Accept means no body is acceptable.
  const entries = values.flatMap((v) => (v.trim() === '' ? [] : splitHeaderList(v)));
  return entries.some((entry) => {
    const [range, ...params] = entry.split(';').map((p) => p.trim());
    const type = range?.toLowerCase();
    if (type !== PIDF_CONTENT_TYPE && type !== 'application/*' && type !== '*/*') return false;
    const q = paramsOf(params)['q'];
    return q === undefined || Number(q) > 0;
  });
}

/** `Subscription-State: active;expires=599` → { state: 'active', expires: 599 }; malformed → undefined. */
export function parseSubscriptionState(value: string | undefined): SubscriptionStateValue | undefined {
  if (value === undefined) return undefined;
  const [head, ...rest] = value.split(';');
  const state = head!.trim().toLowerCase();
  if (state !== 'active' && state !== 'pending' && state !== 'terminated') {
    // RFC 6665 §8.4 lets new values appear; §4.1.3 has nothing to say about them, and an
    // unknown state cannot be acted on, so it is refused like a malformed one.
    return undefined;
  }
  const params = paramsOf(rest);
  const expires = seconds(params['expires']);
  const retryAfter = seconds(params['retry-after']);
  const reason = params['reason']?.toLowerCase();
  if (expires === null || retryAfter === null) return undefined;
  return {
    state,
    ...(expires === undefined ? {} : { expires }),
    ...(reason === undefined || reason === '' ? {} : { reason }),
    ...(retryAfter === undefined ? {} : { retryAfter }),
  };
}

/** The header value for a state: expires on active/pending (RFC 6665 §4.2.2 MUST), reason on terminated. */
export function formatSubscriptionState(s: SubscriptionStateValue): string {
  if (s.state === 'terminated') {
    let out = 'terminated';
    if (s.reason !== undefined) out += `;reason=${s.reason}`;
    if (s.retryAfter !== undefined) out += `;retry-after=${s.retryAfter}`;
    return out;
  }
  return `${s.state};expires=${Math.max(0, Math.floor(s.expires ?? 0))}`;
}

/** Whether a Content-Type names PIDF (parameters such as charset ignored). */
export function isPidf(contentType: string | undefined): boolean {
  return contentType?.split(';')[0]?.trim().toLowerCase() === PIDF_CONTENT_TYPE;
}

function paramsOf(items: readonly string[]): Record<string, string> {
  const params = Object.create(null) as Record<string, string>;
  for (const item of items) {
    const eq = item.indexOf('=');
    const name = (eq < 0 ? item : item.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    params[name] = eq < 0 ? '' : item.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return params;
}

/** delta-seconds: undefined when absent, null when malformed. */
function seconds(value: string | undefined): number | undefined | null {
  if (value === undefined) return undefined;
  if (!/^\d{1,10}$/.test(value)) return null;
  return Number(value);
}
