/**
 * One error family for the whole bridge. Thrown inside, translated once at each adapter's
 * edge into a SIP response or an XMPP error stanza (STYLE.md habit 4).
 */

/** RFC 6120 §8.3.3 defined stanza error conditions. */
export const STANZA_ERROR_CONDITIONS = [
  'bad-request',
  'conflict',
  'feature-not-implemented',
  'forbidden',
  'gone',
  'internal-server-error',
  'item-not-found',
  'jid-malformed',
  'not-acceptable',
  'not-allowed',
  'not-authorized',
  'policy-violation',
  'recipient-unavailable',
  'redirect',
  'registration-required',
  'remote-server-not-found',
  'remote-server-timeout',
  'resource-constraint',
  'service-unavailable',
  'subscription-required',
  'undefined-condition',
  'unexpected-request',
] as const;

export type StanzaErrorCondition = (typeof STANZA_ERROR_CONDITIONS)[number];

export function isStanzaErrorCondition(value: string): value is StanzaErrorCondition {
  return (STANZA_ERROR_CONDITIONS as readonly string[]).includes(value);
}

export interface BridgeErrorOptions {
  /** Canonical condition (RFC 6120 name); decides the XMPP error and, by RFC 7247 §8, the SIP status. */
  condition: StanzaErrorCondition;
  /** SIP status to answer with when it is more precise than the condition's mapping. */
  sipStatus?: number;
  /** Whether trying again later may succeed. */
  retryable?: boolean;
  cause?: unknown;
}

export class BridgeError extends Error {
  /** Stable machine-readable code, e.g. `ADDRESS_UNMAPPED`. */
  readonly code: string;
  readonly condition: StanzaErrorCondition;
  readonly sipStatus: number | undefined;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: BridgeErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BridgeError';
    this.code = code;
    this.condition = options.condition;
    this.sipStatus = options.sipStatus;
    this.retryable = options.retryable ?? false;
  }
}

/** Wraps anything thrown into a BridgeError so edges translate exactly one type. */
export function toBridgeError(err: unknown): BridgeError {
  if (err instanceof BridgeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BridgeError('INTERNAL', message, {
    condition: 'internal-server-error',
    retryable: true,
    cause: err,
  });
}
