/**
 * The one configuration schema, defaults beside each key (STYLE.md habit 6). Parsed once at
 * boot into a frozen, typed object; an unknown key or a wrong type stops the program with the
 * key path named.
 */
import { isIP } from 'node:net';
import { isSupportedCountry } from 'libphonenumber-js';
import { z } from 'zod';
import { numberRangesSchema } from '../core/policy/number-ranges.js';
import { partnersSchema } from '../core/policy/partners.js';

const host = z.string().min(1);
const port = z.number().int().min(0).max(65535);

export const sipListenSchema = z
  .strictObject({
    /** `tls` needs `sip.tls` (certificate and key). */
    transport: z.enum(['udp', 'tcp', 'tls']),
    host: host.default('127.0.0.1'),
    /** RFC 3261 §19.1.2 defaults: 5060 for UDP and TCP, 5061 for TLS. */
    port: port.optional(),
  })
  .transform((l) => ({ ...l, port: l.port ?? (l.transport === 'tls' ? 5061 : 5060) }));

/** SIP over TLS (RFC 3261 §26.2, RFC 5922 certificate names); see docs/decisions/0007-sip-tls.md. */
export const sipTlsSchema = z
  .strictObject({
    /** PEM file of our certificate (chain), presented on TLS listeners and, as client, to partners. */
    cert: z.string().min(1),
    /** PEM file of its private key. */
    key: z.string().min(1),
    /** PEM file of the CA certificates partners' certificates must chain to. */
    ca: z.string().min(1).optional(),
    /** Also trust the system's public root CAs for servers we connect to (never for clients). */
    systemCa: z.boolean().default(false),
    /** Mutual TLS: a client without a certificate chaining to `ca` is refused at handshake. */
    requireClientCert: z.boolean().default(false),
    /** Check the server's certificate chain and its name (RFC 5922 §7.2) when we connect. */
    verifyServer: z.boolean().default(true),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    /**
     * Offer and prefer NULL cipher suites (integrity and authentication, no encryption) so all
     * traffic can be audited on the wire. TLS 1.2 only; logged as a warning at start.
     */
    allowNullCiphers: z.boolean().default(false),
  })
  .refine((t) => !t.requireClientCert || t.ca !== undefined, {
    path: ['ca'],
    message: 'missing (requireClientCert needs the CA that client certificates must chain to)',
  })
  .refine((t) => !t.verifyServer || t.ca !== undefined || t.systemCa, {
    path: ['ca'],
    message: 'missing (verifyServer needs a CA file or systemCa: true)',
  })
  .refine((t) => !t.allowNullCiphers || t.minVersion === 'TLSv1.2', {
    path: ['allowNullCiphers'],
    message: 'NULL cipher suites exist only up to TLS 1.2: minVersion must be TLSv1.2',
  });

/** A DNS server as c-ares takes it: an IP address (c-ares resolves no names), optionally a port. */
const dnsServer = z
  .string()
  .refine((s) => dnsServerAddress(s) !== undefined, 'an IP address with an optional port, such as 127.0.0.1:53 or [::1]:53');

/** `ip`, `ip:port` or `[v6]:port` → its IP, or undefined when it is none of these. */
function dnsServerAddress(text: string): string | undefined {
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text) ?? /^([^:]+)(?::(\d{1,5}))?$/.exec(text);
  const ip = m?.[1] ?? (isIP(text) === 6 ? text : undefined);
  if (ip === undefined || isIP(ip) === 0) return undefined;
  const port = m?.[2] === undefined ? 53 : Number(m[2]);
  return port >= 1 && port <= 65535 ? ip : undefined;
}

export const sipSchema = z
  .strictObject({
    /** Sockets the SIP trunk side listens on (port 0 picks a free port, for tests). */
    listen: z.array(sipListenSchema).min(1).default([{ transport: 'udp', host: '127.0.0.1', port: 5060 }]),
    /**
     * Host name or address the bridge puts in Via/Contact; defaults to the first listen host.
     */
    advertisedHost: host.optional(),
    /** Where outbound requests go, e.g. `sip:127.0.0.1:5070;transport=tcp` (the trunk proxy); `sips:` or `;transport=tls` need `tls`. */
    outboundProxy: z.string().regex(/^sips?:/, 'a sip: or sips: URI').optional(),
    /** Largest SIP message accepted or sent, in bytes. */
    maxMessageBytes: z.number().int().min(1024).max(1_048_576).default(65_535),
    /** RFC 3261 §17.1.2.2 timer values (T1, T2, T4), shortened only in tests. */
    timers: z
      .strictObject({
        t1Ms: z.number().int().min(1).default(500),
        t2Ms: z.number().int().min(1).default(4000),
        t4Ms: z.number().int().min(1).default(5000),
      })
      .default({ t1Ms: 500, t2Ms: 4000, t4Ms: 5000 }),
    /** Certificates for `tls` listeners and for `sips:` / `;transport=tls` next hops. */
    tls: sipTlsSchema.optional(),
    /** DNS for RFC 3263 server location (NAPTR, SRV, A/AAAA) of next hops; see docs/operations.md. */
    dns: z
      .strictObject({
        /** Servers to ask, `ip:port` (`[v6]:port`; port 53 if left out); default the system resolver. */
        servers: z.array(dnsServer).min(1).optional(),
        /** How long one query may take. */
        timeoutMs: z.number().int().min(1).max(30_000).default(2000),
      })
      .optional(),
  })
  .refine((s) => s.tls !== undefined || !s.listen.some((l) => l.transport === 'tls'), {
    path: ['tls'],
    message: 'missing (a tls listen entry needs sip.tls with cert and key)',
  })
  .refine((s) => s.tls !== undefined || s.outboundProxy === undefined || !/^sips:|;transport=tls\b/i.test(s.outboundProxy), {
    path: ['tls'],
    message: 'missing (a sips: or ;transport=tls outboundProxy needs sip.tls with cert and key)',
  });

export const xmppSchema = z.strictObject({
  /** The component's JID domain, mounted on the XMPP server (XEP-0114), e.g. sip.example.com. */
  component: host,
  /** The XMPP server's component port (Prosody: component_ports, default 5347). */
  server: z
    .strictObject({ host: host.default('127.0.0.1'), port: port.default(5347) })
    .default({ host: '127.0.0.1', port: 5347 }),
  /** The component secret; only processes that connect (roles `all` and `xmpp-edge`) need it. */
  secret: z.string().min(1).optional(),
  /** Largest stanza the bridge sends; Prosody closes a component stream over 512 KiB. */
  maxStanzaBytes: z.number().int().min(1024).default(512 * 1024),
  /** Stanzas written but not yet acknowledged by the socket, at most. */
  maxInFlight: z.number().int().min(1).default(256),
  reconnect: z
    .strictObject({ initialMs: z.number().int().min(1).default(1000), maxMs: z.number().int().min(1).default(30_000) })
    .default({ initialMs: 1000, maxMs: 30_000 }),
  /** XEP-0199 ping to the server to notice a frozen connection. */
  ping: z
    .strictObject({ intervalMs: z.number().int().min(100).default(30_000), timeoutMs: z.number().int().min(100).default(10_000) })
    .default({ intervalMs: 30_000, timeoutMs: 10_000 }),
});

export const identitySchema = z.strictObject({
  /** E.164 number in + form, e.g. +15551234567. */
  e164: z.string().regex(/^\+[1-9][0-9]{1,14}$/, 'an E.164 number such as +15551234567'),
  /** The SIP address it stands for, e.g. sip:alice@corp.example. */
  sip: z.string().regex(/^sips?:[^@\s]+@[^@\s]+$/, 'a SIP URI such as sip:alice@corp.example'),
});

/** A static identity table in a file (YAML list or CSV `e164,sip[,xmpp,canonical]`), reloaded on SIGHUP. */
export const staticSourceSchema = z.strictObject({
  type: z.literal('static'),
  /** Name in logs, health and `lookup`; defaults to the type. */
  name: z.string().min(1).optional(),
  /** Path of the table; relative paths are relative to the working directory. */
  file: z.string().min(1),
  /** Read as YAML or CSV; by default from the file's extension (.csv is CSV, anything else YAML). */
  format: z.enum(['yaml', 'csv']).optional(),
});

/**
 * An LDAP / Active Directory directory (ldapts). Filters take `{number}` (E.164, `+` form),
 * `{numberPattern}`, `{sip}` (`sip:user@domain`), `{user}` and `{domain}` (of the SIP
 * address), each escaped per RFC 4515 §3 by the source before substitution.
 */
export const ldapSourceSchema = z.strictObject({
  type: z.literal('ldap'),
  name: z.string().min(1).optional(),
  /** `ldap://host:389` or `ldaps://host:636`. */
  url: z.string().regex(/^ldaps?:\/\/[^/\s]+\/?$/, 'an ldap:// or ldaps:// URL such as ldap://127.0.0.1:389'),
  /** Simple bind; omit both for an anonymous bind. */
  bindDN: z.string().min(1).optional(),
  bindPassword: z.string().optional(),
  baseDN: z.string().min(1),
  scope: z.enum(['base', 'one', 'sub']).default('sub'),
  /** Defaults are the source's own (src/mapping/identity/ldap.ts DEFAULT_NUMBER_FILTER, DEFAULT_SIP_FILTER). */
  filters: z
    .strictObject({
      /** Placeholders `{number}` (E.164) and `{numberPattern}` (digits with any separators between). */
      byNumber: z.string().min(1).optional(),
      /** Placeholders `{sip}`, `{user}`, `{domain}`. */
      bySipAddress: z.string().min(1).optional(),
    })
    .optional(),
  attributes: z
    .strictObject({
      /** Attributes holding the person's number (default telephoneNumber, mobile), normalised to E.164. */
      number: z.array(z.string().min(1)).min(1).optional(),
      /** Attributes holding the SIP address (default msRTCSIP-PrimaryUserAddress, proxyAddresses). */
      sip: z.array(z.string().min(1)).min(1).optional(),
      /** Attributes holding the bare JID, if the directory has one (default none). */
      xmpp: z.array(z.string().min(1)).optional(),
      /** The canonical user@domain shown in logs and `lookup` (default mail). */
      canonical: z.string().min(1).optional(),
    })
    .optional(),
  tls: z
    .strictObject({
      /** Upgrade an ldap:// connection with StartTLS (RFC 4511 §4.14). */
      startTLS: z.boolean().default(false),
      /** PEM file of the CA that signed the server's certificate. */
      caFile: z.string().min(1).optional(),
      rejectUnauthorized: z.boolean().default(true),
    })
    .optional(),
  /** Connections kept open to the directory. */
  poolSize: z.number().int().min(1).max(64).default(4),
  /** Connect and per-operation timeout of the client (the chain's deadline still applies). */
  timeoutMs: z.number().int().min(1).default(2000),
});

/** ENUM (RFC 6116) over DNS NAPTR (RFC 3403) under a configured suffix. */
export const enumSourceSchema = z.strictObject({
  type: z.literal('enum'),
  name: z.string().min(1).optional(),
  /** `e164.arpa` or a private tree such as `e164.corp.example`. */
  suffix: z.string().min(1).default('e164.arpa'),
  /** The DNS server asked (a loopback resolver in tests). */
  server: z.strictObject({ host: host.default('127.0.0.1'), port: port.default(53) }).default({ host: '127.0.0.1', port: 53 }),
  /** Enumservices accepted, in order of preference (RFC 6116 §3.4.3). */
  services: z.array(z.string().regex(/^E2U\+[A-Za-z0-9+:-]+$/i, 'an enumservice such as E2U+sip')).min(1).default(['E2U+sip', 'E2U+xmpp']),
  timeoutMs: z.number().int().min(1).default(2000),
});

/** Identity sources asked in order (issue 3); `mapping.identities` is an implicit first static source. */
export const identitySourceSchema = z.discriminatedUnion('type', [staticSourceSchema, ldapSourceSchema, enumSourceSchema]);

export const mappingSchema = z.strictObject({
  /** Domains of the XMPP server's users that SIP users may write to (sip:bob@<domain>). */
  xmppDomains: z.array(host).min(1),
  /** SIP domains of the operator's own users: they need no federation partner entry. */
  sipDomains: z.array(host).default([]),
  /**
   * The E.164 prefixes (`+1555123`) and ranges (`+15551230000-+15551239999`) the operator owns;
   * numbers outside them never resolve (toll-fraud guard). Unset: every number the identity
   * sources know resolves.
   */
  ownNumbers: numberRangesSchema.optional(),
  /** Static identity table: E.164 number ↔ SIP address. */
  identities: z.array(identitySchema).default([]),
  /**
   * ISO 3166-1 alpha-2 region for numbers written without a country code (`(555) 123-4567`
   * with `US`); without it only international spellings are accepted.
   */
  defaultRegion: z
    .string()
    .regex(/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 region such as US')
    .refine((r) => isSupportedCountry(r), 'a region with a telephone numbering plan, such as US or GB')
    .optional(),
  sources: z.array(identitySourceSchema).default([]),
  /** Longest a source may take before the chain asks the next one. */
  sourceTimeoutMs: z.number().int().min(1).max(60_000).default(1000),
  /** After a source fails it is skipped this long, then asked again (0: ask it every time). */
  sourceRetryMs: z.number().int().min(0).max(3_600_000).default(5000),
  cache: z
    .strictObject({
      ttlMs: z.number().int().min(0).default(300_000),
      /** How long "nobody has this number" is remembered. */
      negativeTtlMs: z.number().int().min(0).default(30_000),
      maxEntries: z.number().int().min(1).default(10_000),
    })
    .default({ ttlMs: 300_000, negativeTtlMs: 30_000, maxEntries: 10_000 }),
});

export const queueSchema = z.strictObject({
  /** `memory`: one process, nothing survives a restart. `redis`: BullMQ on `redis`, shared by processes. */
  backend: z.enum(['memory', 'redis']).default('memory'),
  /** Delivery attempts per event before it becomes a failure back to its sender. */
  maxAttempts: z.number().int().min(1).max(100).default(5),
  /** First retry delay; doubles per attempt up to maxBackoffMs. */
  backoffMs: z.number().int().min(1).default(200),
  maxBackoffMs: z.number().int().min(1).default(30_000),
  /** Events waiting per queue, at most; past it new inbound events are refused (resource-constraint). */
  maxPending: z.number().int().min(1).default(100_000),
  /**
   * Redis: how long a job stays with a worker that stopped answering (a process killed) before
   * another takes it, and how often workers look. Shorter recovers sooner after a crash.
   */
  lockDurationMs: z.number().int().min(1000).max(300_000).default(10_000),
});

const PRESENTITY_PATTERN = /^(sip:)?[^@\s]+@[^@\s/]+$/i;
const presentityPattern = z.string().regex(PRESENTITY_PATTERN, 'user@domain, *@domain, sip:user@domain or sip:*@domain');

export const presenceSchema = z.strictObject({
  /**
   * Presentities whose presence partners may see (`juliet@xmpp.example.org`, `*@xmpp.example.org`,
   * `sip:bob@corp.example`, `sip:*@corp.example`). Empty: no presence crosses (private by default).
   */
  visible: z
    .array(
      z.union([
        presentityPattern,
        z.strictObject({
          /** Patterns or `group:NAME`. */
          presentities: z.array(z.union([presentityPattern, z.string().regex(/^group:[A-Za-z0-9_.-]+$/)])).min(1),
          /** Who may see them (patterns); absent: every watcher. */
          watchers: z.array(presentityPattern).min(1).optional(),
        }),
      ]),
    )
    .default([]),
  /** Named lists of presentity patterns, used in `visible` as `group:NAME` (e.g. executives). */
  groups: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), z.array(presentityPattern)).default({}),
  /** SIP subscription duration (RFC 6665 §4.2.1.1): granted when a watcher asks for none, and asked for ours. */
  defaultExpiresS: z.number().int().min(60).max(86_400).default(3600),
  /** Shorter SIP subscriptions are refused with 423 and Min-Expires. */
  minExpiresS: z.number().int().min(1).max(86_400).default(60),
  /** Longer ones are shortened to this. */
  maxExpiresS: z.number().int().min(60).max(604_800).default(86_400),
  /** Subscriptions held at once (both roles); past it new ones get 503 / resource-constraint. */
  maxSubscriptions: z.number().int().min(1).default(100_000),
});

export const redisSchema = z.strictObject({
  url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
  /** Key prefix, so several bridges (or tests) can share one Redis. */
  prefix: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/).default('sxb'),
});

/**
 * What this process does (issue 5): `all` runs both edges and the router; `sip-edge` and
 * `xmpp-edge` run one adapter and hand inbound events to the queue; `router` maps identities
 * and applies policy between the queues. Every role but `all` needs `queue.backend: redis`.
 */
export const ROLES = ['all', 'sip-edge', 'xmpp-edge', 'router'] as const;
export type Role = (typeof ROLES)[number];

export const configSchema = z
  .strictObject({
    role: z.enum(ROLES).default('all'),
    // A router or an XMPP edge opens no SIP socket: the section may be left out there.
    sip: sipSchema.prefault({}),
    xmpp: xmppSchema,
    mapping: mappingSchema,
    presence: presenceSchema.default({ visible: [], groups: {}, defaultExpiresS: 3600, minExpiresS: 60, maxExpiresS: 86_400, maxSubscriptions: 100_000 }),
    queue: queueSchema.default({ backend: 'memory', maxAttempts: 5, backoffMs: 200, maxBackoffMs: 30_000, maxPending: 100_000, lockDurationMs: 10_000 }),
    /**
     * Federation partners (issue 6): who may send from and to which domains, with what limits.
     * Unset: every domain is admitted, with a warning at start.
     */
    federation: partnersSchema.optional(),
    redis: redisSchema.default({ url: 'redis://127.0.0.1:6379', prefix: 'sxb' }),
    /**
     * OpenTelemetry (issue 7): Prometheus metrics at /metrics on the health listener, and traces
     * (one per message or presence change, across the queue) exported over OTLP/HTTP.
     */
    telemetry: z
      .strictObject({
        metrics: z.boolean().default(false),
        tracing: z
          .strictObject({
            enabled: z.boolean().default(false),
            /** e.g. http://127.0.0.1:4318/v1/traces; without it spans carry context but are not exported. */
            otlpUrl: z.string().regex(/^https?:\/\//, 'an http:// or https:// URL').optional(),
          })
          .default({ enabled: false }),
        serviceName: z.string().min(1).default('sip-xmpp-bridge'),
      })
      .default({ metrics: false, tracing: { enabled: false }, serviceName: 'sip-xmpp-bridge' }),
    /** HTTP /healthz and /readyz (and /metrics) for orchestrators; off unless a listen address is given. */
    health: z.strictObject({ listen: z.strictObject({ host: host.default('127.0.0.1'), port }) }).optional(),
    log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
  })
  .refine((c) => c.role === 'all' || c.queue.backend === 'redis', {
    path: ['role'],
    message: 'a role other than "all" shares work through Redis: set queue.backend: redis',
  })
  .refine((c) => (c.role !== 'all' && c.role !== 'xmpp-edge') || c.xmpp.secret !== undefined, {
    path: ['xmpp', 'secret'],
    message: 'missing (expected the component secret: this role connects to the XMPP server)',
  })
  .superRefine((c, ctx) => {
    // A partner proved by certificate, or reached over TLS, needs our TLS listener and client
    // certificate: caught here rather than as a 403 or SIP_NO_TLS on its first message.
    if ((c.role !== 'all' && c.role !== 'sip-edge') || c.sip.tls !== undefined) return;
    c.federation?.partners.forEach((p, i) => {
      if (p.side !== 'sip') return;
      if (p.nextHop !== undefined && /^sips:|;transport=tls\b/i.test(p.nextHop)) {
        ctx.addIssue({ code: 'custom', path: ['federation', 'partners', i, 'nextHop'], message: `partner ${p.name} is reached over TLS: configure sip.tls` });
      } else if (p.trust.certificateNames !== undefined || p.trust.fingerprints !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['federation', 'partners', i, 'trust'], message: `partner ${p.name} proves itself by certificate (mutual TLS): configure sip.tls` });
      }
    });
  });

export type BridgeConfig = z.infer<typeof configSchema>;
export type SipConfig = BridgeConfig['sip'];
export type XmppConfig = BridgeConfig['xmpp'];
export type PresenceConfig = BridgeConfig['presence'];
export type MappingConfig = BridgeConfig['mapping'];
export type QueueConfig = BridgeConfig['queue'];
export type IdentitySourceConfig = MappingConfig['sources'][number];
export type StaticSourceConfig = z.infer<typeof staticSourceSchema>;
export type LdapSourceConfig = z.infer<typeof ldapSourceSchema>;
export type EnumSourceConfig = z.infer<typeof enumSourceSchema>;
