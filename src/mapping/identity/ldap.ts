/**
 * Identity source backed by an LDAP directory or Active Directory (ldapts), issue 3.
 *
 * Numbers: the directory is asked with the E.164 number as given (`{number}`) and, because AD
 * keeps numbers as typed ("+1 555 123 4567") and compares them as plain strings, with a
 * substring pattern that allows any separator between the digits (`{numberPattern}`,
 * `+1*5*5*5*…`). Every entry returned is checked by normalising its number attributes; only
 * entries whose number really equals the query count. Two people on one number is ambiguous:
 * the source says "not known here" and logs it, rather than pick one.
 *
 * Failures (refused, timed out, aborted by the chain's deadline) throw a retryable BridgeError,
 * which the chain reads as "this source is down".
 */
import { readFile } from 'node:fs/promises';
import type { ConnectionOptions } from 'node:tls';
import { Client, ResultCodeError } from 'ldapts';
import type { Logger } from 'pino';
import { BridgeError } from '../../core/errors.js';
import { isE164Form } from '../e164.js';
import type { Identity, IdentitySource, LookupOptions } from '../identity-source.js';
import {
  FilterTemplate,
  directoryNumberToE164,
  jidOf,
  numberPattern,
  parseSipAddress,
  sipAddressOf,
  valuesOf,
  withoutSeparators,
  type DirectoryEntry,
} from './ldap-filter.js';
import { ConnectionPool, abortedError, stoppedError, type PoolStats } from './ldap-pool.js';

/** Same keys as `ldapSourceSchema` in src/config/schema.ts; defaults below. */
export interface LdapSourceConfig {
  /** Name in logs, health and `lookup`; default `ldap`. */
  readonly name?: string;
  /** `ldap://host:389` or `ldaps://host:636`. */
  readonly url: string;
  /** Simple bind (RFC 4513 §5.1.3); omit both for an anonymous bind. */
  readonly bindDN?: string;
  readonly bindPassword?: string;
  readonly baseDN: string;
  /** Default `sub`. */
  readonly scope?: 'base' | 'one' | 'sub';
  readonly filters?: {
    /** Placeholders `{number}` (E.164) and `{numberPattern}`; default DEFAULT_NUMBER_FILTER. */
    readonly byNumber?: string;
    /** Placeholders `{sip}`, `{user}`, `{domain}`; default DEFAULT_SIP_FILTER. */
    readonly bySipAddress?: string;
  };
  readonly attributes?: {
    /** Attributes holding the person's number; default `telephoneNumber`, `mobile`. */
    readonly number?: readonly string[];
    /** Attributes holding the SIP address; default `msRTCSIP-PrimaryUserAddress`, `proxyAddresses`. */
    readonly sip?: readonly string[];
    /** Attributes holding the bare JID, e.g. `jabberID`; default none. */
    readonly xmpp?: readonly string[];
    /** The canonical user@domain; default `mail`. */
    readonly canonical?: string;
  };
  readonly tls?: {
    /** Upgrade an ldap:// connection with StartTLS (RFC 4511 §4.14). */
    readonly startTLS?: boolean;
    /** PEM file of the CA that signed the server's certificate. */
    readonly caFile?: string;
    /** Default true. */
    readonly rejectUnauthorized?: boolean;
  };
  /** Connections kept open to the directory; default 4. */
  readonly poolSize?: number;
  /** Connect and per-operation timeout; default 2000 ms (the chain's deadline still applies). */
  readonly timeoutMs?: number;
  /** Region for national spellings in the directory (config `mapping.defaultRegion`), e.g. `US`. */
  readonly defaultRegion?: string;
}

export const DEFAULT_NUMBER_FILTER =
  '(|(telephoneNumber={number})(mobile={number})(telephoneNumber={numberPattern})(mobile={numberPattern}))';
export const DEFAULT_SIP_FILTER = '(|(msRTCSIP-PrimaryUserAddress={sip})(proxyAddresses=SIP:{user}@{domain}))';

/** Entries asked for at most: enough to see ambiguity and pattern false positives, no more. */
const MAX_CANDIDATES = 8;
/** Lookups allowed to queue for a connection per pool slot before refusing (bounded memory). */
const WAITERS_PER_CONNECTION = 256;

export class LdapSource implements IdentitySource {
  readonly name: string;
  private readonly numberFilter: FilterTemplate;
  private readonly sipFilter: FilterTemplate;
  private readonly numberAttributes: readonly string[];
  private readonly sipAttributes: readonly string[];
  private readonly xmppAttributes: readonly string[];
  private readonly canonicalAttribute: string;
  /** What a lookup asks the directory to return. */
  private readonly wanted: string[];
  /** Where a candidate's number is checked: the number attributes and those the filter asserts on. */
  private readonly numberCheckAttributes: readonly string[];
  private readonly timeoutMs: number;
  private readonly poolSize: number;
  private pool: ConnectionPool<Client>;
  private tlsOptions: Promise<ConnectionOptions | undefined> | undefined;
  private stopped = false;
  /** Whether the last lookup failed, so the logs say when it goes away and comes back. */
  private down = false;

  constructor(
    private readonly config: LdapSourceConfig,
    private readonly logger: Logger,
  ) {
    this.name = config.name ?? 'ldap';
    if (!/^ldaps?:\/\/[^/\s]+\/?$/i.test(config.url)) {
      throw configError(`url ${JSON.stringify(config.url)}: expected ldap://host:port or ldaps://host:port`);
    }
    if (config.bindDN !== undefined && !config.bindPassword) {
      // RFC 4513 §5.1.2: a DN with an empty password is an unauthenticated bind, not a login.
      throw configError('bindDN is set without bindPassword');
    }
    if (config.tls?.startTLS && /^ldaps:/i.test(config.url)) {
      throw configError('tls.startTLS is for ldap:// URLs; ldaps:// is TLS from the first byte');
    }
    this.numberFilter = new FilterTemplate('byNumber', config.filters?.byNumber ?? DEFAULT_NUMBER_FILTER, ['number', 'numberPattern'], [
      'numberPattern',
    ]);
    this.sipFilter = new FilterTemplate('bySipAddress', config.filters?.bySipAddress ?? DEFAULT_SIP_FILTER, ['sip', 'user', 'domain']);
    this.numberAttributes = config.attributes?.number ?? ['telephoneNumber', 'mobile'];
    this.sipAttributes = config.attributes?.sip ?? ['msRTCSIP-PrimaryUserAddress', 'proxyAddresses'];
    this.xmppAttributes = config.attributes?.xmpp ?? [];
    this.canonicalAttribute = config.attributes?.canonical ?? 'mail';
    this.numberCheckAttributes = unique([...this.numberAttributes, ...this.numberFilter.attributes]);
    this.wanted = unique([...this.numberCheckAttributes, ...this.sipAttributes, ...this.xmppAttributes, this.canonicalAttribute]);
    this.timeoutMs = config.timeoutMs ?? 2000;
    if (!(this.timeoutMs > 0)) throw configError(`timeoutMs ${this.timeoutMs}: expected a number of milliseconds > 0`);
    const poolSize = config.poolSize ?? 4;
    if (!Number.isInteger(poolSize) || poolSize < 1) throw configError(`poolSize ${poolSize}: expected a whole number ≥ 1`);
    this.poolSize = poolSize;
    this.pool = this.newPool();
  }

  private newPool(): ConnectionPool<Client> {
    return new ConnectionPool<Client>(this.poolSize, this.poolSize * WAITERS_PER_CONNECTION, this.timeoutMs, {
      open: (signal) => this.openConnection(signal),
      close: (client) => void client.unbind().catch(() => undefined),
      healthy: (client) => client.isConnected && client.isBound,
    });
  }

  /** Reads the CA file, so a wrong path fails at start-up; connections open on first use. */
  async start(): Promise<void> {
    await this.tls();
    if (this.stopped) this.pool = this.newPool();
    this.stopped = false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pool.close();
  }

  /** Pool counters, for health and tests. */
  poolStats(): PoolStats {
    return this.pool.stats();
  }

  async byNumber(e164: string, options: LookupOptions = {}): Promise<Identity | undefined> {
    // Already in `+` form (what the interface asks for): no need for the full normaliser (~40 µs).
    const number = isE164Form(e164) ? e164 : directoryNumberToE164(e164, this.config.defaultRegion);
    if (number === undefined) {
      this.logger.debug({ number: e164 }, 'not an E.164 number; not asking the directory');
      return undefined;
    }
    const filter = this.numberFilter.render({ number, numberPattern: numberPattern(number) });
    const entries = await this.search(filter, options.signal);
    // The pattern may match other digits in between, and the directory may match by its own
    // rules: keep only the people whose number, normalised, is the one asked for.
    const region = this.config.defaultRegion;
    const holdsNumber = (entry: DirectoryEntry): boolean =>
      this.numberCheckAttributes.some((attr) =>
        // Separators aside equal to the (valid) number asked for: the normaliser would agree.
        valuesOf(entry, attr).some((v) => withoutSeparators(v) === number || directoryNumberToE164(v, region) === number),
      );
    const matches = entries.filter(holdsNumber);
    return this.onePerson(matches, { number }, number);
  }

  async bySipAddress(sip: string, options: LookupOptions = {}): Promise<Identity | undefined> {
    const parsed = parseSipAddress(sip);
    if (parsed === undefined) {
      this.logger.debug({ sip }, 'not a sip:user@domain address; not asking the directory');
      return undefined;
    }
    const entries = await this.search(this.sipFilter.render(parsed), options.signal);
    return this.onePerson(entries, { sip: parsed.sip });
  }

  private onePerson(entries: readonly DirectoryEntry[], query: Record<string, string>, e164?: string): Identity | undefined {
    if (entries.length === 0) return undefined;
    if (entries.length > 1) {
      const dns = entries.map((e) => valuesOf(e, 'dn')[0]);
      this.logger.warn({ ...query, entries: dns }, 'several directory entries match; not choosing one');
      return undefined;
    }
    const identity = this.identityOf(entries[0]!, e164);
    return Object.keys(identity).length > 0 ? identity : undefined;
  }

  private identityOf(entry: DirectoryEntry, e164: string | undefined): Identity {
    const region = this.config.defaultRegion;
    const numbers = this.numberAttributes.flatMap((a) => valuesOf(entry, a));
    const number = e164 ?? numbers.map((v) => directoryNumberToE164(v, region)).find((n) => n !== undefined);
    const sip = sipAddressOf(entry, this.sipAttributes);
    const xmpp = jidOf(entry, this.xmppAttributes);
    const canonical = valuesOf(entry, this.canonicalAttribute)[0]?.trim().toLowerCase();
    return {
      ...(number !== undefined && { e164: number }),
      ...(sip !== undefined && { sip }),
      ...(xmpp !== undefined && { xmpp }),
      ...(canonical && { canonical }),
    };
  }

  private async search(filter: string, signal: AbortSignal | undefined): Promise<DirectoryEntry[]> {
    if (this.stopped) throw stoppedError();
    // The pool of this lookup: a restart (stop, start) gives the source a new one meanwhile.
    const pool = this.pool;
    let client: Client;
    try {
      client = await pool.acquire(signal);
    } catch (err) {
      throw this.downError(err, 'connect');
    }
    try {
      const result = await untilAborted(
        client.search(this.config.baseDN, {
          scope: this.config.scope ?? 'sub',
          filter,
          attributes: this.wanted,
          sizeLimit: MAX_CANDIDATES,
          timeLimit: Math.max(1, Math.ceil(this.timeoutMs / 1000)),
        }),
        signal,
      );
      pool.release(client);
      if (this.down) this.logger.info({ url: this.config.url }, 'directory answers again');
      this.down = false;
      return result.searchEntries as DirectoryEntry[];
    } catch (err) {
      // The server answered with an error: the connection itself is fine.
      if (err instanceof ResultCodeError) pool.release(client);
      // Aborted, timed out or the connection broke: an answer may still arrive on it, so it goes.
      else pool.discard(client);
      throw this.downError(err, 'search');
    }
  }

  private async openConnection(signal: AbortSignal | undefined): Promise<Client> {
    const tlsOptions = await this.tls();
    const ldaps = /^ldaps:/i.test(this.config.url);
    const client = new Client({
      url: this.config.url,
      timeout: this.timeoutMs,
      connectTimeout: this.timeoutMs,
      // Only for ldaps://: ldapts 8.2 given tlsOptions on an ldap:// URL breaks a later StartTLS.
      ...(ldaps && tlsOptions && { tlsOptions }),
      strictDN: false,
    });
    const handshake = async (): Promise<void> => {
      // A copy: ldapts writes the socket into the options it is given. The host is named so the
      // certificate is checked against it (RFC 4513 §3.1.3), as for ldaps://.
      if (this.config.tls?.startTLS) await client.startTLS({ ...tlsOptions, host: new URL(this.config.url).hostname });
      // An anonymous bind (RFC 4513 §5.1.1) too, so every pooled connection is open and bound.
      await client.bind(this.config.bindDN ?? '', this.config.bindPassword ?? '');
    };
    try {
      await untilAborted(handshake(), signal);
    } catch (err) {
      void client.unbind().catch(() => undefined);
      throw err;
    }
    this.logger.debug({ url: this.config.url }, 'directory connection opened and bound');
    return client;
  }

  private tls(): Promise<ConnectionOptions | undefined> {
    const tls = this.config.tls;
    const secure = /^ldaps:/i.test(this.config.url) || tls?.startTLS === true;
    if (!secure) return Promise.resolve(undefined);
    this.tlsOptions ??= (async () => ({
      rejectUnauthorized: tls?.rejectUnauthorized ?? true,
      ...(tls?.caFile !== undefined && { ca: await readFile(tls.caFile, 'utf8') }),
    }))().catch((err: unknown) => {
      this.tlsOptions = undefined;
      throw configError(`tls.caFile ${JSON.stringify(tls?.caFile)}: ${(err as Error).message}`);
    });
    return this.tlsOptions;
  }

  private downError(err: unknown, during: 'connect' | 'search'): BridgeError {
    if (err instanceof BridgeError) return err;
    // ldapts result errors carry little more than the code: name the class too (NoSuchObjectError).
    const message = err instanceof ResultCodeError ? `${err.constructor.name}${err.message}` : err instanceof Error ? err.message : String(err);
    // One warning when the directory goes away, not one per lookup while it stays away.
    const level = this.down ? 'debug' : 'warn';
    this.down = true;
    this.logger[level]({ url: this.config.url, during, err: message }, 'directory lookup failed');
    return new BridgeError('LDAP_UNAVAILABLE', `LDAP ${this.config.url} ${during} failed: ${message}`, {
      condition: 'service-unavailable',
      retryable: true,
      cause: err,
    });
  }
}

/** `work`, or a rejection as soon as `signal` aborts (the work itself is left to its caller). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(abortedError(signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortedError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function configError(problem: string): BridgeError {
  return new BridgeError('LDAP_CONFIG', `LDAP source: ${problem}`, { condition: 'internal-server-error' });
}

function unique(names: readonly string[]): string[] {
  const seen = new Set<string>();
  return names.filter((n) => !seen.has(n.toLowerCase()) && seen.add(n.toLowerCase()));
}
