/**
 * The one configuration schema, defaults beside each key (STYLE.md habit 6). Parsed once at
 * boot into a frozen, typed object; an unknown key or a wrong type stops the program with the
 * key path named.
 */
import { z } from 'zod';

const host = z.string().min(1);
const port = z.number().int().min(0).max(65535);

export const sipListenSchema = z.strictObject({
  transport: z.enum(['udp', 'tcp']),
  host: host.default('127.0.0.1'),
  port: port.default(5060),
});

export const sipSchema = z.strictObject({
  /** Sockets the SIP trunk side listens on (port 0 picks a free port, for tests). */
  listen: z.array(sipListenSchema).min(1).default([{ transport: 'udp', host: '127.0.0.1', port: 5060 }]),
  /**
   * Host name or address the bridge puts in Via/Contact; defaults to the first listen host.
   */
  advertisedHost: host.optional(),
  /** Where outbound requests go, e.g. `sip:127.0.0.1:5070;transport=tcp` (the trunk proxy). */
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
});

export const xmppSchema = z.strictObject({
  /** The component's JID domain, mounted on the XMPP server (XEP-0114), e.g. sip.example.com. */
  component: host,
  /** The XMPP server's component port (Prosody: component_ports, default 5347). */
  server: z
    .strictObject({ host: host.default('127.0.0.1'), port: port.default(5347) })
    .default({ host: '127.0.0.1', port: 5347 }),
  secret: z.string().min(1),
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

export const mappingSchema = z.strictObject({
  /** Domains of the XMPP server's users that SIP users may write to (sip:bob@<domain>). */
  xmppDomains: z.array(host).min(1),
  /** Static identity table: E.164 number ↔ SIP address. */
  identities: z.array(identitySchema).default([]),
});

export const queueSchema = z.strictObject({
  backend: z.enum(['memory']).default('memory'),
  /** Delivery attempts per event before it becomes a failure back to its sender. */
  maxAttempts: z.number().int().min(1).max(100).default(5),
  /** First retry delay; doubles per attempt up to maxBackoffMs. */
  backoffMs: z.number().int().min(1).default(200),
  maxBackoffMs: z.number().int().min(1).default(30_000),
  /** Events waiting per queue, at most; past it new inbound events are refused (resource-constraint). */
  maxPending: z.number().int().min(1).default(100_000),
});

export const configSchema = z.strictObject({
  sip: sipSchema,
  xmpp: xmppSchema,
  mapping: mappingSchema,
  queue: queueSchema.default({ backend: 'memory', maxAttempts: 5, backoffMs: 200, maxBackoffMs: 30_000, maxPending: 100_000 }),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
});

export type BridgeConfig = z.infer<typeof configSchema>;
export type SipConfig = BridgeConfig['sip'];
export type XmppConfig = BridgeConfig['xmpp'];
export type MappingConfig = BridgeConfig['mapping'];
export type QueueConfig = BridgeConfig['queue'];
