/**
 * SIP over TLS (RFC 3261 §26.2, RFC 5630): the StreamLayer that makes TLS listeners and
 * outbound TLS connections for TcpTransport, and the RFC 5922 rules for which names a peer's
 * certificate vouches for. Mutual TLS: with `requireClientCert` a client must present a
 * certificate chaining to `sip.tls.ca` or the handshake fails. Choices are explained in
 * docs/decisions/0007-sip-tls.md.
 */
import { readFile } from 'node:fs/promises';
import { isIP, type Server, type Socket } from 'node:net';
import {
  checkServerIdentity,
  connect,
  createSecureContext,
  createServer,
  DEFAULT_CIPHERS,
  rootCertificates,
  type PeerCertificate,
  type SecureVersion,
  type TLSSocket,
} from 'node:tls';
import type { SipConfig } from '../../../config/schema.js';
import { AuditLog } from '../../../core/audit.js';
import { BridgeError } from '../../../core/errors.js';
import type { Logger } from '../../../telemetry/logger.js';
import { whenReady, type StreamLayer, type StreamTarget } from './tcp.js';

export type SipTlsConfig = NonNullable<SipConfig['tls']>;

/**
 * Integrity-only suites (TLS 1.2; OpenSSL has none for TLS 1.3), put ahead of the defaults when
 * `allowNullCiphers` is set. OpenSSL 3 rates them security level 0, hence `@SECLEVEL=0`.
 */
export const NULL_CIPHERS = 'NULL-SHA256:ECDHE-RSA-NULL-SHA:ECDHE-ECDSA-NULL-SHA';

interface Material {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** CAs a client certificate must chain to. */
  readonly clientCa?: Buffer;
  /** CAs a server certificate must chain to (`ca`, plus the system roots when configured). */
  readonly serverCa?: (Buffer | string)[];
}

export class TlsLayer implements StreamLayer {
  readonly name = 'TLS';
  private material: Material | undefined;
  private readonly audit: AuditLog;

  constructor(
    private readonly config: SipTlsConfig,
    private readonly limits: {
      /** A client that has not finished its handshake by then is dropped. */
      readonly handshakeTimeoutMs: number;
      /** Sockets a listener holds at most, handshakes in progress included. */
      readonly maxConnections: number;
    },
    private readonly logger: Logger,
    audit?: AuditLog,
  ) {
    this.audit = audit ?? new AuditLog(logger);
  }

  async prepare(): Promise<void> {
    const [cert, key, ca] = await Promise.all([
      readFile(this.config.cert),
      readFile(this.config.key),
      this.config.ca === undefined ? undefined : readFile(this.config.ca),
    ]);
    const serverCa = [...(ca ? [ca] : []), ...(this.config.systemCa ? rootCertificates : [])];
    this.material = { cert, key, ...(ca ? { clientCa: ca } : {}), ...(serverCa.length > 0 ? { serverCa } : {}) };
    // A key that does not fit the certificate, or an unreadable PEM, stops the start here rather
    // than at the first outbound connection.
    createSecureContext({ ...this.common(this.material), ...(ca ? { ca } : {}) });
    if (this.config.allowNullCiphers) {
      this.logger.warn(
        { ciphers: NULL_CIPHERS, maxVersion: 'TLSv1.2' },
        'SIP TLS NULL CIPHERS ENABLED: peers that offer them get authentication and integrity WITHOUT ENCRYPTION; all SIP traffic is readable on the wire',
      );
    }
  }

  createServer(onSocket: (socket: Socket) => void): Server {
    const m = this.loaded();
    const server = createServer(
      {
        ...this.common(m),
        // Ask for a certificate whenever there is a CA to check it against; refuse without one
        // only under requireClientCert (an unverified certificate then yields no identities).
        requestCert: m.clientCa !== undefined,
        rejectUnauthorized: this.config.requireClientCert,
        ...(m.clientCa ? { ca: m.clientCa } : {}),
        honorCipherOrder: true,
        handshakeTimeout: this.limits.handshakeTimeoutMs,
      },
      onSocket,
    );
    // TcpTransport counts connections once they are usable; this also bounds pending handshakes.
    server.maxConnections = this.limits.maxConnections;
    // Audit trail of refusals at handshake (no certificate, another CA, no shared cipher).
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) =>
      this.audit.deny({
        rule: 'untrusted-certificate',
        who: socket.remoteAddress ?? 'unknown',
        what: `TLS handshake (${err.code ?? 'error'})`,
        reason: err.message,
        message: 'SIP TLS handshake refused',
      }),
    );
    return server;
  }

  async connect(to: StreamTarget, timeoutMs: number): Promise<Socket> {
    const m = this.loaded();
    const name = to.serverName ?? to.host;
    const socket = connect({
      ...this.common(m),
      host: to.host,
      port: to.port,
      // RFC 6066 §3: a literal IP address is not a server name.
      ...(isIP(name) ? {} : { servername: name }),
      ...(m.serverCa ? { ca: m.serverCa } : {}),
      rejectUnauthorized: this.config.verifyServer,
      // RFC 5922 §7.2 first; then a partner's pinned fingerprints, when it has them.
      checkServerIdentity: (_host, cert) =>
        verifyServerName(name, cert) ??
        (to.pins === undefined || to.pins.includes(cert.fingerprint256.toUpperCase())
          ? undefined
          : Object.assign(new Error(`the certificate of ${name} (SHA-256 ${cert.fingerprint256}) is not one pinned for it`), { code: 'ERR_SIP_TLS_PIN' })),
    });
    let connected = false;
    socket.once('connect', () => {
      connected = true;
    });
    try {
      return await whenReady(socket, 'secureConnect', timeoutMs, `${name} at ${to.host}:${to.port}`);
    } catch (err) {
      // No TCP connection, or it broke or stalled (errno codes such as ECONNRESET, ETIMEDOUT):
      // the caller's usual, possibly retryable, transport error.
      const code = (err as NodeJS.ErrnoException).code;
      if (!connected || code === undefined || /^E[A-Z]+$/.test(code)) throw err;
      // The server could not be authenticated, or refused us at handshake: trying again will
      // not change its certificate, and the name it proves is not the domain we want.
      throw new BridgeError('SIP_TLS_FAILED', `TLS to ${name} (${to.host}:${to.port}) failed: ${(err as Error).message}`, {
        condition: 'remote-server-not-found',
        retryable: false,
        cause: err,
      });
    }
  }

  identities(socket: Socket): readonly string[] | undefined {
    const tls = socket as TLSSocket;
    if (!tls.authorized) return undefined;
    return certificateIdentities(tls.getPeerCertificate());
  }

  /**
   * The presented certificate's SHA-256, verified chain or not: the handshake proved the peer
   * holds its key (RFC 8446 §4.4.3 CertificateVerify), which is what a pinned fingerprint asks.
   */
  fingerprint(socket: Socket): string | undefined {
    const cert = (socket as TLSSocket).getPeerCertificate();
    // An empty object when the peer showed no certificate.
    const fingerprint = cert?.fingerprint256;
    return fingerprint === undefined || fingerprint === '' ? undefined : fingerprint;
  }

  private common(m: Material): { cert: Buffer; key: Buffer; minVersion: SecureVersion; maxVersion?: SecureVersion; ciphers?: string } {
    if (!this.config.allowNullCiphers) return { cert: m.cert, key: m.key, minVersion: this.config.minVersion };
    // TLS 1.3 would win the negotiation and it has no NULL suite in OpenSSL 3.0.
    // `!eNULL` in the defaults would delete the NULL suites for good, wherever they are listed.
    const defaults = DEFAULT_CIPHERS.split(':').filter((c) => c !== '!eNULL');
    return { cert: m.cert, key: m.key, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: [NULL_CIPHERS, ...defaults, '@SECLEVEL=0'].join(':') };
  }

  private loaded(): Material {
    if (!this.material) throw new Error('SIP TLS is not prepared (start() reads the certificate files)');
    return this.material;
  }
}

/**
 * The SIP domain identities a certificate vouches for (RFC 5922 §7.1), lower case:
 * subjectAltName `sip:` URIs without a user part give their host; DNS names count only when
 * no such URI is present; the subject CN only when there is no subjectAltName at all.
 */
export function certificateIdentities(cert: Pick<PeerCertificate, 'subjectaltname' | 'subject'>): string[] {
  const alt = cert.subjectaltname ? splitAltNames(cert.subjectaltname) : [];
  const found = new Set<string>();
  if (alt.length > 0) {
    for (const { type, value } of alt) {
      if (type !== 'URI') continue;
      const host = sipUriDomain(value);
      if (host !== undefined) found.add(host);
    }
    if (found.size === 0) for (const { type, value } of alt) if (type === 'DNS' && value !== '') found.add(normalize(value));
    return [...found];
  }
  const cn = cert.subject?.CN;
  for (const value of Array.isArray(cn) ? cn : cn === undefined ? [] : [cn]) if (value !== '') found.add(normalize(value));
  return [...found];
}

/**
 * RFC 5922 §7.2: `domain` is one of `identities`, compared as DNS names (case-insensitive),
 * in their entirety: no suffix match and no wildcard (`*.example.com` matches only itself).
 */
export function matchesDomain(identities: readonly string[], domain: string): boolean {
  const wanted = normalize(domain);
  return wanted !== '' && identities.some((id) => normalize(id) === wanted);
}

/** checkServerIdentity for `name`: RFC 5922 for domain names, the IP SAN for an address literal. */
function verifyServerName(name: string, cert: PeerCertificate): Error | undefined {
  if (isIP(name)) return checkServerIdentity(name, cert);
  const identities = certificateIdentities(cert);
  if (matchesDomain(identities, name)) return undefined;
  return Object.assign(new Error(`certificate names ${identities.join(', ') || 'no SIP domain'}, not ${name} (RFC 5922 §7.2)`), {
    code: 'ERR_SIP_TLS_NAME',
  });
}

/** §7.1: only the `sip` scheme, and only without a user part ("no '@'"): its host part. */
function sipUriDomain(uri: string): string | undefined {
  const m = /^sip:([^@]*)$/i.exec(uri);
  if (!m) return undefined;
  const host = (m[1] ?? '').split(/[;?]/, 1)[0] ?? '';
  const bare = host.startsWith('[') ? host : host.replace(/:\d*$/, '');
  return bare === '' ? undefined : normalize(bare);
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * Node's subjectaltname string: `TYPE:value` entries joined by ", ", a value with a comma,
 * quote or backslash written as a JSON string.
 */
function splitAltNames(text: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let end: number;
    let value: string;
    if (text[colon + 1] === '"') {
      end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      end += 1;
      try {
        value = JSON.parse(text.slice(colon + 1, end)) as string;
      } catch {
        value = '';
      }
    } else {
      const comma = text.indexOf(', ', colon + 1);
      end = comma < 0 ? text.length : comma;
      value = text.slice(colon + 1, end);
    }
    out.push({ type, value });
    i = end + 2; // past ", "
  }
  return out;
}
