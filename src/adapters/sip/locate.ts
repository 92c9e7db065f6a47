/**
 * RFC 3263 §4 server location: a SIP or SIPS URI → the ordered targets (transport, IP, port)
 * to try, the next one when the one before fails (§4.3). The selection logic takes DNS answers
 * through the small `DnsAnswers` interface and is otherwise pure, so tables of records test it;
 * `SipDns` is the thin layer over `node:dns/promises` that gives the real answers.
 */
import { lookup, Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { SipUri } from './codec/message.js';
import type { TransportKind } from './transport/transport.js';

/** One place to send to. `serverName` is the URI's host (see locate()). */
export interface Target {
  readonly transport: TransportKind;
  /** An IP literal, IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
  /** RFC 5922 §4: the domain a TLS server's certificate must name (also sent as SNI). */
  readonly serverName: string;
}

/** The NAPTR fields RFC 3263 uses (node's NaptrRecord has these). */
export interface Naptr {
  readonly order: number;
  readonly preference: number;
  readonly flags: string;
  readonly service: string;
  readonly replacement: string;
}

/** The SRV fields (node's SrvRecord: `name` is the target host). */
export interface Srv {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly name: string;
}

/** Where answers come from. Empty arrays for names without such records; throwing is for the DNS failing. */
export interface DnsAnswers {
  naptr(name: string): Promise<readonly Naptr[]>;
  srv(name: string): Promise<readonly Srv[]>;
  /** A and AAAA addresses of a host name. */
  addresses(host: string): Promise<readonly string[]>;
}

export interface LocateOptions {
  /** Transports we can send on: `udp` only with a UDP listener, `tls` only with sip.tls. */
  readonly supported: ReadonlySet<TransportKind>;
  readonly dns: DnsAnswers;
  /** In [0, 1); Math.random unless a test injects one (RFC 2782 weighted selection). */
  readonly random?: () => number;
  /** Targets at most (each SRV target can have several addresses). Default MAX_TARGETS. */
  readonly maxTargets?: number;
}

/** Enough for any sane failover list; bounds the work a hostile zone can cause. */
export const MAX_TARGETS = 16;
/** SRV records (and so A/AAAA queries) followed for one SRV name, at most. */
const MAX_SRV_FOLLOWED = 8;
/** NAPTR records (and so SRV queries, one after another) followed, at most. */
const MAX_NAPTR_FOLLOWED = 4;

const DEFAULT_PORT: Record<TransportKind, number> = { udp: 5060, tcp: 5060, tls: 5061 };

/** RFC 3263 §4.1 NAPTR services we can use, by transport (D2S, SCTP, we do not speak). */
const NAPTR_SERVICE: Record<string, { transport: TransportKind; secure: boolean }> = {
  'SIP+D2U': { transport: 'udp', secure: false },
  'SIP+D2T': { transport: 'tcp', secure: false },
  'SIPS+D2T': { transport: 'tls', secure: true },
};

/** RFC 3263 §4.2: the SRV service name for a transport (TLS is `_sips._tcp`). */
export function srvName(transport: TransportKind, domain: string): string {
  return transport === 'tls' ? `_sips._tcp.${domain}` : `_sip._${transport}.${domain}`;
}

/**
 * The targets for `uri`, best first; empty when nothing resolves.
 * @throws what `dns` throws when a DNS server fails (the caller reports it as retryable)
 */
export async function locate(uri: Pick<SipUri, 'scheme' | 'host' | 'port' | 'params'>, options: LocateOptions): Promise<Target[]> {
  const max = options.maxTargets ?? MAX_TARGETS;
  const host = stripBrackets(uri.host);
  // RFC 5922 §4: the certificate is checked against the URI's domain, never a name DNS gave us.
  const serverName = host;
  const secure = uri.scheme === 'sips';
  const given = uri.params['transport']?.toLowerCase();
  const transport = chosenTransport(secure, given, options.supported);

  // RFC 3263 §4.2: a numeric host is used as it is.
  if (isIP(host) !== 0) return [{ transport, host, port: uri.port ?? DEFAULT_PORT[transport], serverName }];
  // §4.2: an explicit port means A/AAAA only (no SRV, even for 5060).
  if (uri.port !== undefined) return withAddresses(await options.dns.addresses(host), transport, uri.port, serverName).slice(0, max);

  const random = options.random ?? Math.random;
  /** One SRV name's targets in RFC 2782 order, each target host's addresses in turn. */
  const viaSrv = async (name: string, t: TransportKind): Promise<Target[]> => {
    const records = orderSrv(await options.dns.srv(name), random).slice(0, MAX_SRV_FOLLOWED);
    const resolved = await Promise.all(records.map((r) => options.dns.addresses(r.name)));
    return records.flatMap((r, i) => withAddresses(resolved[i] ?? [], t, r.port, serverName));
  };

  let targets: Target[] = [];
  let fallback = transport;
  if (given !== undefined) {
    // §4.2: a transport was specified: SRV for that transport only, then A/AAAA.
    targets = await viaSrv(srvName(transport, host), transport);
  } else {
    const services = selectNaptr(await options.dns.naptr(host), secure, options.supported);
    if (services.length > 0) {
      // §4.1: NAPTR order/preference picks the server's preferred transport we support; the
      // later services make the failover list. §4.2: without SRV records, A/AAAA on the first.
      fallback = services[0]!.transport;
      for (const s of services.slice(0, MAX_NAPTR_FOLLOWED)) {
        if (targets.length >= max) break;
        targets.push(...(await viaSrv(s.srv, s.transport)));
      }
    } else {
      // §4.1: no NAPTR: an SRV query per transport we support (`_sips` only for a SIPS URI).
      const tried = secure ? (['tls'] as const) : srvOrder(options.supported);
      targets = (await Promise.all(tried.map((t) => viaSrv(srvName(t, host), t)))).flat();
    }
  }
  if (targets.length > 0) return targets.slice(0, max);
  // §4.2: no SRV records: A/AAAA at the transport's default port.
  return withAddresses(await options.dns.addresses(host), fallback, DEFAULT_PORT[fallback], serverName).slice(0, max);
}

/**
 * RFC 3263 §4.1: the transport when the URI or the lack of records decides it: the `transport`
 * parameter, else UDP for SIP and TLS for SIPS. UDP needs a UDP listener to send from; without
 * one TCP stands in (RFC 3261 §18.2.1: a UDP server also listens on TCP at that port).
 */
export function chosenTransport(secure: boolean, given: string | undefined, supported: ReadonlySet<TransportKind>): TransportKind {
  if (secure || given === 'tls') return 'tls';
  if (given === 'tcp') return 'tcp';
  return supported.has('udp') ? 'udp' : 'tcp';
}

/** SIP transports to ask SRV for when there is no NAPTR, in our order of preference. */
function srvOrder(supported: ReadonlySet<TransportKind>): TransportKind[] {
  return (['udp', 'tcp'] as const).filter((t) => t === 'tcp' || supported.has(t));
}

/**
 * RFC 3263 §4.1 over RFC 3403: the usable NAPTR records, best first, as SRV names to query.
 * Kept: flag "s" (the replacement is an SRV name) and a SIP service on a transport we support;
 * for a SIPS URI, SIPS services only.
 */
export function selectNaptr(records: readonly Naptr[], secure: boolean, supported: ReadonlySet<TransportKind>): { transport: TransportKind; srv: string }[] {
  return records
    .map((r) => ({ r, service: NAPTR_SERVICE[r.service.toUpperCase()] }))
    .filter(({ r, service }) => service !== undefined && r.flags.toLowerCase() === 's' && r.replacement !== '' && r.replacement !== '.')
    .filter(({ service }) => supported.has(service!.transport) && (!secure || service!.secure))
    .sort((a, b) => a.r.order - b.r.order || a.r.preference - b.r.preference)
    .map(({ r, service }) => ({ transport: service!.transport, srv: trimDot(r.replacement) }));
}

/**
 * RFC 2782 "Usage rules": lowest priority first; within a priority, pick by running sum of
 * weights against a random number in [0, sum], remove the pick, repeat. Weight-0 records sort
 * first within their priority before the draw so they get a small chance, as RFC 2782 asks.
 * A single target "." means the service is decidedly not available: no records.
 */
export function orderSrv(records: readonly Srv[], random: () => number = Math.random): Srv[] {
  if (records.length === 1 && trimDot(records[0]!.name) === '') return [];
  const usable = records.filter((r) => trimDot(r.name) !== '');
  const priorities = [...new Set(usable.map((r) => r.priority))].sort((a, b) => a - b);
  const ordered: Srv[] = [];
  for (const priority of priorities) {
    const left = usable.filter((r) => r.priority === priority).sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (left.length > 0) {
      const total = left.reduce((sum, r) => sum + r.weight, 0);
      const pick = Math.floor(random() * (total + 1)); // uniform in 0..total
      let running = 0;
      let index = left.findIndex((r) => (running += r.weight) >= pick);
      if (index < 0) index = left.length - 1;
      ordered.push(...left.splice(index, 1));
    }
  }
  return ordered.map((r) => ({ ...r, name: trimDot(r.name) }));
}

function withAddresses(addresses: readonly string[], transport: TransportKind, port: number, serverName: string): Target[] {
  return addresses.map((host) => ({ transport, host, port, serverName }));
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function trimDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

// ---------------------------------------------------------------- the DNS layer

export interface SipDnsOptions {
  /** `ip:port` / `[v6]:port` strings; the system resolver when absent. */
  readonly servers?: readonly string[];
  readonly timeoutMs?: number;
  /** How long an answer is reused. Node gives no TTL for NAPTR/SRV, so this is a short fixed bound. */
  readonly cacheMs?: number;
  /** Answers kept at most; the oldest go first. */
  readonly cacheEntries?: number;
}

/**
 * Codes meaning "no such records", as opposed to "the DNS did not answer": c-ares ENOTFOUND /
 * ENODATA, getaddrinfo's ENOTFOUND; ENOTIMP from a server that does not do NAPTR or SRV at all.
 */
const NO_RECORDS = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME', 'ENOTIMP']);

/**
 * NAPTR, SRV and A/AAAA over `node:dns/promises`, with a small bounded cache. A/AAAA go through
 * the system's getaddrinfo (so /etc/hosts applies, as before RFC 3263 support) unless servers
 * are configured, in which case they are asked too.
 */
export class SipDns implements DnsAnswers {
  private readonly resolver: Resolver;
  private readonly configured: boolean;
  private readonly cache = new Map<string, { until: number; value: Promise<readonly unknown[]> }>();
  private readonly cacheMs: number;
  private readonly cacheEntries: number;

  constructor(options: SipDnsOptions = {}, private readonly now: () => number = Date.now) {
    // tries: 2 with c-ares doubling the timeout bounds one query near 3 × timeoutMs per server.
    this.resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: 2 });
    this.configured = options.servers !== undefined && options.servers.length > 0;
    if (this.configured) this.resolver.setServers([...options.servers!]);
    this.cacheMs = options.cacheMs ?? 30_000;
    this.cacheEntries = options.cacheEntries ?? 1000;
  }

  naptr(name: string): Promise<readonly Naptr[]> {
    return this.cached(`naptr ${name}`, () => this.resolver.resolveNaptr(name));
  }

  srv(name: string): Promise<readonly Srv[]> {
    return this.cached(`srv ${name}`, () => this.resolver.resolveSrv(name));
  }

  addresses(host: string): Promise<readonly string[]> {
    if (!this.configured) return this.cached(`addr ${host}`, async () => (await lookup(host, { all: true })).map((a) => a.address));
    return this.cached(`addr ${host}`, async () => {
      const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(host), this.resolver.resolve6(host)]);
      const found = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
      // Neither family answered and at least one failed for another reason than "none": DNS is down.
      const failure = [v4, v6].find((r) => r.status === 'rejected' && !NO_RECORDS.has(errorCode(r.reason)));
      if (found.length === 0 && failure?.status === 'rejected') throw failure.reason;
      return found;
    });
  }

  /** A query in flight is shared too, so a burst of sends to one domain asks once. */
  private cached<T>(key: string, query: () => Promise<readonly T[]>): Promise<readonly T[]> {
    const hit = this.cache.get(key);
    if (hit !== undefined && hit.until > this.now()) return hit.value as Promise<readonly T[]>;
    const value = query().catch((err: unknown) => {
      if (NO_RECORDS.has(errorCode(err))) return [];
      // A failure is not kept: the next send asks again.
      if (this.cache.get(key)?.value === value) this.cache.delete(key);
      throw err;
    });
    this.cache.delete(key);
    if (this.cache.size >= this.cacheEntries) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { until: this.now() + this.cacheMs, value });
    return value;
  }
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? '';
}
