/**
 * The one place that builds SIP responses (STYLE.md habit 9), RFC 3261 §8.2.6.
 */
import { randomToken } from '../../../core/ids.js';
import type { SipHeader, SipRequest, SipResponse } from './message.js';
import { parseNameAddr } from './uri.js';

export interface ResponseOptions {
  /** Reason phrase; default from REASON_PHRASES. */
  reason?: string;
  /** To tag to add when the request's To has none (e.g. the dialog's tag); default random. */
  toTag?: string;
  /** Extra headers, appended after the copied ones in this order. */
  headers?: readonly SipHeader[];
  body?: Buffer;
  contentType?: string;
}

/** Default reason phrases (RFC 3261 §21 and the extensions the bridge meets). */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  200: 'OK',
  202: 'Accepted', // RFC 3265 (deprecated by RFC 6665, still sent by older peers)
  204: 'No Notification', // RFC 5839
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  305: 'Use Proxy',
  380: 'Alternative Service',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  412: 'Conditional Request Failed', // RFC 3903
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  421: 'Extension Required',
  423: 'Interval Too Brief',
  429: 'Provide Referrer Identity', // RFC 3892: in SIP, 429 is NOT "Too Many Requests"
  430: 'Flow Failed', // RFC 5626
  439: 'First Hop Lacks Outbound Support', // RFC 5626
  470: 'Consent Needed', // RFC 5360
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  485: 'Ambiguous',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  489: 'Bad Event', // RFC 6665
  491: 'Request Pending',
  493: 'Undecipherable',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
};

/** Reason phrase for a status: the table's, else the class's generic one. */
export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? REASON_PHRASES[Math.floor(status / 100) * 100] ?? 'Unknown';
}

function hasToTag(to: string): boolean {
  try {
    return parseNameAddr(to).params['tag'] !== undefined;
  } catch {
    // A To we cannot parse (answering a malformed request): look for the parameter textually.
    return /;\s*tag\s*=/i.test(to);
  }
}

/**
 * Response to `req` (RFC 3261 §8.2.6.2): Via headers (all, in order), From, Call-ID and CSeq
 * copied; To copied with a tag added when it has none, except on 100 (§8.2.6.1, which also
 * copies Timestamp). Headers missing from a partial request are left out.
 */
export function buildResponse(req: SipRequest, status: number, opts: ResponseOptions = {}): SipResponse {
  const headers: SipHeader[] = [];
  for (const h of req.headers) {
    switch (h.name) {
      case 'Via':
      case 'From':
      case 'Call-ID':
      case 'CSeq':
        headers.push({ name: h.name, value: h.value });
        break;
      case 'To': {
        const tagged = status === 100 || hasToTag(h.value) ? h.value : `${h.value};tag=${opts.toTag ?? randomToken(8)}`;
        headers.push({ name: 'To', value: tagged });
        break;
      }
      case 'Timestamp':
        if (status === 100) headers.push({ name: 'Timestamp', value: h.value });
        break;
      default:
        break;
    }
  }
  if (opts.headers !== undefined) headers.push(...opts.headers);
  const body = opts.body ?? Buffer.alloc(0);
  if (opts.contentType !== undefined) headers.push({ name: 'Content-Type', value: opts.contentType });
  return { kind: 'response', status, reason: opts.reason ?? reasonPhrase(status), headers, body };
}
