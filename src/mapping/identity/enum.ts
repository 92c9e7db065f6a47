/**
 * ENUM identity source (RFC 6116): a number's NAPTR records under the configured suffix, the
 * E2U+sip rule giving the SIP address, the E2U+xmpp rule the JID. ENUM maps numbers to URIs
 * only: there is no reverse tree, so `bySipAddress` always answers "not known here".
 */
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { BridgeError } from '../../core/errors.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Identity, IdentitySource, LookupOptions } from '../identity-source.js';
import {
  DEFAULT_ENUM_SUFFIX,
  chooseEnumRules,
  enumDomain,
  enumServices,
  normalizeEnumSuffix,
  type NaptrRecord,
} from '../enum-rewrite.js';

export interface EnumSourceConfig {
  /** Name in logs, health and `lookup`; `enum` unless configured (two ENUM trees need two names). */
  readonly name?: string;
  /** Domain the number's reversed digits go under: `e164.arpa` or a private tree. */
  readonly suffix?: string;
  /** DNS servers on loopback or the network; the system resolver when neither this nor `server` is set. */
  readonly servers?: readonly DnsServer[];
  /** One DNS server, as `src/config/schema.ts` spells it; asked before any of `servers`. */
  readonly server?: DnsServer;
  /** Enumservices to accept, e.g. `E2U+sip`; matched case-insensitively (RFC 6116 §3.6). */
  readonly services?: readonly string[];
  /** How long one NAPTR query may take before the source counts as down. */
  readonly timeoutMs?: number;
}

export interface DnsServer {
  readonly host: string;
  readonly port: number;
}

export const DEFAULT_ENUM_SERVICES: readonly string[] = ['E2U+sip', 'E2U+xmpp'];
const DEFAULT_TIMEOUT_MS = 2000;

/** c-ares error codes that mean "this name has no NAPTR records", not "the DNS is down". */
const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA']);

export class EnumSource implements IdentitySource {
  readonly name: string;
  private readonly suffix: string;
  private readonly servers: readonly string[] | undefined;
  private readonly services: readonly string[];
  private readonly timeoutMs: number;
  private readonly logger: Logger;

  /** @throws BridgeError `ENUM_BAD_SUFFIX` / `ENUM_BAD_CONFIG` for a configuration it cannot use. */
  constructor(config: EnumSourceConfig, logger: Logger) {
    this.name = config.name ?? 'enum';
    this.suffix = normalizeEnumSuffix(config.suffix ?? DEFAULT_ENUM_SUFFIX);
    this.services = config.services ?? DEFAULT_ENUM_SERVICES;
    const unusable = this.services.filter((s) => enumServices(s) === undefined);
    if (unusable.length > 0 || this.services.length === 0) {
      throw configError(`enum services must be E2U service fields such as E2U+sip, got ${JSON.stringify(this.services)}`);
    }
    this.timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs <= 0) {
      throw configError(`enum timeoutMs must be a positive integer, got ${String(config.timeoutMs)}`);
    }
    const servers = [...(config.server ? [config.server] : []), ...(config.servers ?? [])];
    // c-ares takes IP addresses only: a host name here would fail every lookup, so fail now.
    const bad = servers.find((s) => isIP(s.host) === 0 || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535);
    if (bad !== undefined) {
      throw configError(`enum DNS server ${bad.host}:${bad.port} must be an IP address and a port 1-65535`);
    }
    this.servers = servers.length === 0 ? undefined : servers.map(cAresServer);
    this.logger = logger;
  }

  async byNumber(e164: string, options: LookupOptions = {}): Promise<Identity | undefined> {
    const domain = enumDomain(e164, this.suffix);
    const records = await this.naptr(domain, options.signal);
    if (records === undefined) return undefined;
    // RFC 6116 §3.1: the AUS is the number with its '+' kept; the rules apply to it.
    const { chosen, skipped } = chooseEnumRules(records, e164, this.services);
    for (const s of skipped) {
      this.logger.debug({ domain, naptr: s.record, reason: s.reason }, 'enum: NAPTR record not used');
    }
    const sip = chosen.find((c) => c.kind === 'sip')?.address;
    const xmpp = chosen.find((c) => c.kind === 'xmpp')?.address;
    if (sip === undefined && xmpp === undefined) return undefined;
    return { e164, ...(sip === undefined ? {} : { sip }), ...(xmpp === undefined ? {} : { xmpp }) };
  }

  /** ENUM has no reverse mapping (RFC 6116 maps numbers to URIs only): never known here. */
  bySipAddress(_sip: string, _options?: LookupOptions): Promise<Identity | undefined> {
    return Promise.resolve(undefined);
  }

  /**
   * The NAPTR RRSet of `domain`, undefined when the name or its NAPTR records do not exist.
   * One resolver per query, because `Resolver.cancel()` cancels every query of its resolver and
   * an abort must end only this one.
   */
  private async naptr(domain: string, signal: AbortSignal | undefined): Promise<NaptrRecord[] | undefined> {
    if (signal?.aborted) throw aborted(domain, signal.reason);
    const resolver = new dns.Resolver({ timeout: this.timeoutMs, tries: 1 });
    if (this.servers !== undefined) resolver.setServers([...this.servers]);
    let reason: 'aborted' | 'deadline' | undefined;
    const onAbort = (): void => {
      reason ??= 'aborted';
      resolver.cancel();
    };
    // c-ares retries on other servers and doubles its timeout; this timer is the hard deadline.
    const deadline = setTimeout(() => {
      reason ??= 'deadline';
      resolver.cancel();
    }, this.timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await resolver.resolveNaptr(domain);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (reason === 'aborted') throw aborted(domain, signal?.reason);
      if (NOT_FOUND.has(code)) return undefined;
      const why = reason === 'deadline' ? `no answer within ${this.timeoutMs} ms` : `${code || 'error'}`;
      throw new BridgeError('ENUM_DNS_FAILED', `ENUM NAPTR query for ${domain} failed: ${why}`, {
        condition: 'remote-server-timeout',
        sipStatus: 504,
        retryable: true,
        cause: err,
      });
    } finally {
      clearTimeout(deadline);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

// c-ares takes "host:port" for IPv4 and "[host]:port" for IPv6; any port works, not only 53.
function cAresServer({ host, port }: DnsServer): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function configError(message: string): BridgeError {
  return new BridgeError('ENUM_BAD_CONFIG', message, { condition: 'internal-server-error' });
}

function aborted(domain: string, cause: unknown): BridgeError {
  return new BridgeError('ENUM_ABORTED', `ENUM NAPTR query for ${domain} abandoned: the lookup deadline passed`, {
    condition: 'remote-server-timeout',
    sipStatus: 504,
    retryable: true,
    cause,
  });
}
