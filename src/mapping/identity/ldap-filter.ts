/**
 * The pure half of the LDAP identity source: filter templates with escaped values (RFC 4515),
 * and reading a person's identities out of a directory entry as Active Directory stores them.
 */
import { BridgeError } from '../../core/errors.js';
import { normalizeE164 } from '../e164.js';

/**
 * RFC 4515 §3: in an assertion value `*`, `(`, `)`, `\` and NUL must be written as `\XX`.
 * Nothing else needs escaping (UTF-8 passes through), so a value can never close the
 * filter's parenthesis or become a wildcard.
 */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * `+15551234567` → `+1*5*5*5*1*2*3*4*5*6*7`: a substring assertion that matches the number
 * written with any separators ("+1 555 123-4567", "+1 (555) 123 4567"). Active Directory
 * compares telephone attributes as plain strings, where spaces and dashes are significant;
 * LDAP's telephoneNumberMatch (RFC 4517 §4.2.29) ignores them, but AD does not implement it.
 * It may also match extra digits between ours, so every candidate is checked afterwards.
 * Only `+` and digits go in, so the wildcards are ours alone.
 */
export function numberPattern(e164: string): string {
  if (!/^\+\d+$/.test(e164)) throw new Error(`not an E.164 number: ${e164}`);
  return `+${e164.slice(1).split('').join('*')}`;
}

/** A filter template with `{name}` placeholders, checked once at construction. */
export class FilterTemplate {
  readonly source: string;
  /** Attribute names the template asserts on, e.g. telephoneNumber and mobile. */
  readonly attributes: readonly string[];
  private readonly verbatim: ReadonlySet<string>;

  /**
   * @param allowed the placeholders this template may use
   * @param verbatim placeholders substituted without escaping (their values are built by us)
   */
  constructor(what: string, source: string, allowed: readonly string[], verbatim: readonly string[] = []) {
    this.source = source;
    this.verbatim = new Set(verbatim);
    const problem = templateProblem(source, allowed);
    if (problem !== undefined) {
      throw new BridgeError('LDAP_CONFIG', `LDAP ${what} filter ${JSON.stringify(source)}: ${problem}`, {
        condition: 'internal-server-error',
      });
    }
    const names = new Set<string>();
    for (const m of source.matchAll(/\(([A-Za-z][\w.;-]*)(?:[~<>:]?=)[^()]*\{\w+\}/g)) names.add(m[1]!);
    this.attributes = [...names];
  }

  render(values: Readonly<Record<string, string>>): string {
    return this.source.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = values[name] ?? '';
      return this.verbatim.has(name) ? value : escapeFilterValue(value);
    });
  }
}

function templateProblem(source: string, allowed: readonly string[]): string | undefined {
  if (!source.startsWith('(') || !source.endsWith(')')) return 'must be wrapped in parentheses';
  let depth = 0;
  for (const c of source) {
    if (c === '(') depth++;
    if (c === ')' && --depth < 0) return 'has an unbalanced ")"';
  }
  if (depth !== 0) return 'has an unbalanced "("';
  const used = [...source.matchAll(/\{(\w*)\}/g)].map((m) => m[1]!);
  const unknown = used.filter((name) => !allowed.includes(name));
  if (unknown.length > 0) return `unknown placeholder {${unknown[0]}} (allowed: ${allowed.map((a) => `{${a}}`).join(' ')})`;
  if (used.length === 0) return `uses no placeholder (allowed: ${allowed.map((a) => `{${a}}`).join(' ')})`;
  return undefined;
}

/** `sip:User@Corp.Example` → parts for the filter; undefined when it is not `sip:user@domain`. */
export function parseSipAddress(address: string): { user: string; domain: string; sip: string } | undefined {
  const m = /^sips?:([^@;?\s]+)@([^@;?:\s]+)(?::\d+)?$/i.exec(address.trim());
  if (!m) return undefined;
  const user = m[1]!;
  // RFC 3261 §19.1.4: the host part compares case-insensitively; the user part does not.
  const domain = m[2]!.toLowerCase();
  return { user, domain, sip: `sip:${user}@${domain}` };
}

/** A directory entry as ldapts returns it: attribute → string or strings. */
export type DirectoryEntry = Readonly<Record<string, string | readonly string[] | Buffer | readonly Buffer[]>>;

/** All string values of `attribute`, matching its name case-insensitively as LDAP does. */
export function valuesOf(entry: DirectoryEntry, attribute: string): string[] {
  const wanted = attribute.toLowerCase();
  for (const [key, value] of Object.entries(entry)) {
    if (key.toLowerCase() !== wanted) continue;
    const list = Array.isArray(value) ? value : [value];
    return list.map((v) => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
  }
  return [];
}

/**
 * The SIP address of record among the values of the SIP attributes, in attribute order.
 * msRTCSIP-PrimaryUserAddress holds `sip:user@domain`; proxyAddresses holds typed values
 * (`SMTP:`, `smtp:`, `X500:`, `SIP:`), where an upper-case type marks the primary one.
 */
export function sipAddressOf(entry: DirectoryEntry, attributes: readonly string[]): string | undefined {
  for (const attribute of attributes) {
    const sips = valuesOf(entry, attribute).filter((v) => /^sips?:/i.test(v));
    const primary = sips.find((v) => v.startsWith('SIP:')) ?? sips[0];
    const parsed = primary === undefined ? undefined : parseSipAddress(primary);
    if (parsed) return parsed.sip;
  }
  return undefined;
}

/** The bare JID among the values of the XMPP attributes (`user@domain`, optionally `xmpp:`-prefixed). */
export function jidOf(entry: DirectoryEntry, attributes: readonly string[]): string | undefined {
  for (const attribute of attributes) {
    for (const value of valuesOf(entry, attribute)) {
      const jid = value.trim().replace(/^xmpp:/i, '');
      const m = /^([^@/\s]+)@([^@/\s]+)$/.exec(jid);
      if (m) return `${m[1]}@${m[2]!.toLowerCase()}`;
    }
  }
  return undefined;
}

/**
 * A directory's telephone value in E.164 `+` form, or undefined: the shared normaliser
 * (src/mapping/e164.ts) reads the separators AD values carry ("+1 (555) 123-4567"), `tel:`
 * URIs, and national spellings when a default region is configured. A value with an extension
 * is a different endpoint (a desk behind a switchboard number), so it never matches the bare
 * number: a number that maps to the wrong person is worse than one that does not map.
 */
export function directoryNumberToE164(value: string, defaultRegion?: string): string | undefined {
  try {
    const n = normalizeE164(value, defaultRegion === undefined ? {} : { defaultRegion });
    return n.extension === undefined ? n.e164 : undefined;
  } catch {
    return undefined;
  }
}

/** A telephone value with its visual separators (RFC 3966 §3, plus spaces and slashes) removed. */
export function withoutSeparators(value: string): string {
  return value.replace(/[\s\-.()/]/g, '');
}
