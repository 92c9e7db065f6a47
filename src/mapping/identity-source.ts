/**
 * One interface for every identity source (static table, LDAP/AD directory, ENUM), chained in
 * the order the configuration gives (issue 3). A source answers "number or address → the
 * person's identities" and the reverse; `undefined` means "not known here" (the chain asks the
 * next source), a thrown error means "this source is down" (the chain degrades to the next one,
 * logs it and reports it in health).
 */

/** What the bridge knows of one person. Every field optional; at least one is set. */
export interface Identity {
  /** E.164 in `+` form, e.g. +15551234567. */
  readonly e164?: string;
  /** SIP address of record, `sip:user@domain` (no parameters). */
  readonly sip?: string;
  /** Bare JID, `user@domain`. */
  readonly xmpp?: string;
  /** Canonical user@domain of the directory (e.g. `mail`), for logs and `lookup`. */
  readonly canonical?: string;
}

export interface LookupOptions {
  /** Aborted when the chain's per-source deadline passes; a source must give up then. */
  readonly signal?: AbortSignal;
}

export interface IdentitySource {
  /** Name used in logs, health and `sip-xmpp-bridge lookup`, e.g. `static`, `ldap`, `enum`. */
  readonly name: string;
  start?(): Promise<void>;
  stop?(): Promise<void>;
  /** The person a number (E.164, `+` form) belongs to. */
  byNumber(e164: string, options?: LookupOptions): Promise<Identity | undefined>;
  /** The person a SIP address of record (`sip:user@domain`) belongs to. */
  bySipAddress(sip: string, options?: LookupOptions): Promise<Identity | undefined>;
}
