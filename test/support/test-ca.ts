/**
 * A throwaway certificate authority for TLS tests, made with the `openssl` CLI in a temporary
 * directory: nothing private is committed, and every run has fresh keys. RSA 2048 keys, since
 * the NULL-cipher check needs RSA key exchange (NULL-SHA256 is kRSA/aRSA).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface IssuedCert {
  /** PEM file paths, as the config takes them. */
  readonly certFile: string;
  readonly keyFile: string;
  /** The PEM texts, for a raw `tls.connect` in a test. */
  readonly cert: string;
  readonly key: string;
}

export interface LeafOptions {
  /** Subject CN; omitted means a subject with an O only. */
  readonly cn?: string;
  /** subjectAltName dNSName entries. */
  readonly dns?: readonly string[];
  /** subjectAltName URI entries, e.g. `sip:example.com` (RFC 5922 §7.1). */
  readonly uris?: readonly string[];
  /** subjectAltName iPAddress entries. */
  readonly ips?: readonly string[];
}

export interface TestCa {
  readonly dir: string;
  /** The CA certificate's PEM file (what `sip.tls.ca` names). */
  readonly caFile: string;
  readonly caCert: string;
  /** A leaf certificate signed by this CA, usable for both server and client auth. */
  issue(name: string, opts: LeafOptions): IssuedCert;
  /** Removes the directory and every key in it. */
  remove(): void;
}

/** Creates a CA named `name` in a fresh temporary directory. */
export function createTestCa(name = 'Bridge Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'sxb-ca-'));
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', `/O=${name}/CN=${name}`]);
  return {
    dir,
    caFile,
    caCert: readFileSync(caFile, 'utf8'),
    issue(leaf: string, opts: LeafOptions): IssuedCert {
      if (!/^[a-z0-9-]+$/.test(leaf)) throw new Error(`leaf name ${leaf} is not a plain file name`);
      const keyFile = join(dir, `${leaf}.key`);
      const csr = join(dir, `${leaf}.csr`);
      const certFile = join(dir, `${leaf}.pem`);
      const ext = join(dir, `${leaf}.ext`);
      const subject = opts.cn === undefined ? `/O=${name} leaves` : `/O=${name} leaves/CN=${opts.cn}`;
      openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', subject]);
      const san = [
        ...(opts.dns ?? []).map((d) => `DNS:${d}`),
        ...(opts.uris ?? []).map((u) => `URI:${u}`),
        ...(opts.ips ?? []).map((i) => `IP:${i}`),
      ];
      const lines = ['basicConstraints=CA:FALSE', 'keyUsage=digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth,clientAuth'];
      if (san.length > 0) lines.push(`subjectAltName=${san.join(',')}`);
      writeFileSync(ext, lines.join('\n') + '\n');
      openssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-out', certFile, '-days', '1', '-extfile', ext]);
      return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
    },
    remove(): void {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function openssl(args: string[]): void {
  const run = spawnSync('openssl', args, { encoding: 'utf8', timeout: 30_000 });
  if (run.status !== 0) throw new Error(`openssl ${args[0] ?? ''} failed (${run.status ?? run.signal ?? 'no status'}): ${run.stderr}`);
}
