import { BridgeError } from '../../../core/errors.js';
import type { SipRequest } from './message.js';

/**
 * A SIP message that cannot be accepted. `status` is the response to send back for a request
 * (400, 413, 505, …) and `reason` a short reason phrase safe to put on the status line (built
 * only from fixed text and validated tokens, never from raw input). A response that fails to
 * parse is simply discarded by the caller (RFC 3261 §18.3).
 */
export class SipParseError extends BridgeError {
  readonly status: number;
  readonly reason: string;
  /**
   * The request as far as it parsed (start line and the headers read before the fault), so
   * the transport can still answer with `buildResponse` when Via/From/To/Call-ID/CSeq are
   * there. Absent when the start line itself was unreadable or the message is a response.
   */
  readonly partial?: SipRequest;

  constructor(status: number, reason: string, partial?: SipRequest) {
    super('SIP_MALFORMED', `SIP message rejected (${status}): ${reason}`, {
      condition: 'bad-request',
      sipStatus: status,
      retryable: false,
    });
    this.name = 'SipParseError';
    this.status = status;
    this.reason = reason;
    if (partial !== undefined) this.partial = partial;
  }
}
