/**
 * SIP message model: plain values produced by `parse.ts` and consumed by `serialize.ts`.
 * Header names are stored in their canonical long form (RFC 3261 §7.3.3 compact forms are
 * expanded on parse); values are kept as raw strings with surrounding whitespace trimmed and
 * line folding (LWS) collapsed to one space.
 */

export interface SipHeader {
  /** Canonical long name, e.g. `Call-ID`, `Content-Length`, `Via`. */
  readonly name: string;
  readonly value: string;
}

export interface SipRequest {
  readonly kind: 'request';
  readonly method: string;
  /** Request-URI as written. */
  readonly uri: string;
  /** In wire order; a header line carrying several comma-separated values stays one entry. */
  readonly headers: readonly SipHeader[];
  readonly body: Buffer;
}

export interface SipResponse {
  readonly kind: 'response';
  readonly status: number;
  readonly reason: string;
  readonly headers: readonly SipHeader[];
  readonly body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

/** A parsed `sip:`/`sips:` URI (RFC 3261 §19.1.1). */
export interface SipUri {
  readonly scheme: 'sip' | 'sips';
  /** Unescaped user part, if any. */
  readonly user?: string;
  /** Host in lower case; IPv6 references keep their brackets. */
  readonly host: string;
  readonly port?: number;
  /** uri-parameters; a parameter without value maps to null. Names in lower case. */
  readonly params: Readonly<Record<string, string | null>>;
  /** Unescaped password of `user:password@` (NOT RECOMMENDED by §19.1.1, but legal). */
  readonly password?: string;
  /** URI headers after `?` (escaped form as written), e.g. `subject=hi`. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** name-addr / addr-spec with header parameters, as in From, To, Contact (RFC 3261 §20.10). */
export interface NameAddr {
  readonly displayName?: string;
  /** The URI text (between < > when written as name-addr). */
  readonly uri: string;
  /** Header parameters, e.g. `tag`. Names in lower case. */
  readonly params: Readonly<Record<string, string | null>>;
}

/** One Via header value (RFC 3261 §20.42, RFC 3581 rport). */
export interface Via {
  /** e.g. `UDP`, `TCP`, `TLS` (upper case). */
  readonly transport: string;
  readonly host: string;
  readonly port?: number;
  /** Includes `branch`, `received`, `rport` (null when present without value). Names in lower case. */
  readonly params: Readonly<Record<string, string | null>>;
}

/** First value of a header (case-insensitive on the canonical name), or undefined. */
export function headerValue(msg: { headers: readonly SipHeader[] }, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const h of msg.headers) if (h.name.toLowerCase() === lower) return h.value;
  return undefined;
}

/** All values of a header in order. */
export function headerValues(msg: { headers: readonly SipHeader[] }, name: string): string[] {
  const lower = name.toLowerCase();
  return msg.headers.filter((h) => h.name.toLowerCase() === lower).map((h) => h.value);
}
