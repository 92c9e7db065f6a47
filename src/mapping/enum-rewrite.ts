/**
 * ENUM (RFC 6116) as plain values: the E.164 number → domain rule, the NAPTR regexp rewrite of
 * RFC 3402 §3.2, and the choice of one rule per wanted URI kind among a NAPTR RRSet. No sockets:
 * `identity/enum.ts` asks the DNS and hands the records here.
 */
import { BridgeError } from '../core/errors.js';

/** One NAPTR record as the DNS gives it (RFC 3403 §4.1; the shape of Node's `resolveNaptr`). */
export interface NaptrRecord {
  readonly order: number;
  readonly preference: number;
  readonly flags: string;
  readonly service: string;
  readonly regexp: string;
  /** `''` when the field is the root `.` (Node prints the root as the empty string). */
  readonly replacement: string;
}

/** A parsed `delim ere delim repl delim flags` substitution expression (RFC 3402 §3.2). */
export interface SubstitutionExpression {
  readonly delimiter: string;
  /** The ERE with escaped delimiters turned back into the delimiter character. */
  readonly ere: string;
  readonly replacement: readonly ReplacementPart[];
  readonly caseInsensitive: boolean;
}

export type ReplacementPart = { readonly text: string } | { readonly backref: number };

/** What a record is wanted for: the identity field its URI fills. */
export type EnumUriKind = 'sip' | 'xmpp';

export interface EnumChoice {
  readonly kind: EnumUriKind;
  /** The rewritten absolute URI, e.g. `sip:alice@corp.example;user=phone`. */
  readonly uri: string;
  /** What the identity holds: `sip:alice@corp.example` (no parameters) or the bare JID. */
  readonly address: string;
  readonly record: NaptrRecord;
}

/** Why a record was not used, for debug logs and `lookup`. */
export interface SkippedRecord {
  readonly record: NaptrRecord;
  readonly reason: string;
}

export const DEFAULT_ENUM_SUFFIX = 'e164.arpa';

const E164 = /^\+[1-9][0-9]{1,14}$/;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function badInput(code: string, message: string): BridgeError {
  return new BridgeError(code, message, { condition: 'bad-request', sipStatus: 400 });
}

/** A domain suffix such as `e164.arpa` or `enum.corp.example`, lower-cased, without outer dots. */
export function normalizeEnumSuffix(suffix: string): string {
  const trimmed = suffix.trim().replace(/^\.+/, '').replace(/\.+$/, '').toLowerCase();
  const labels = trimmed.split('.');
  if (trimmed.length === 0 || trimmed.length > 200 || !labels.every((l) => LABEL.test(l))) {
    throw badInput('ENUM_BAD_SUFFIX', `ENUM suffix "${suffix}" is not a domain name such as e164.arpa`);
  }
  return trimmed;
}

/**
 * RFC 6116 §3.2 First Well Known Rule: drop the `+`, reverse the digits, join them with dots,
 * append the suffix. `+15551234567` → `7.6.5.4.3.2.1.5.5.5.1.e164.arpa`.
 * @throws BridgeError `ENUM_BAD_NUMBER` unless `e164` is `+` and 2 to 15 digits (RFC 6116 §3.7:
 *   only numbers believed to be E.164 go to the ENUM query).
 */
export function enumDomain(e164: string, suffix: string = DEFAULT_ENUM_SUFFIX): string {
  if (!E164.test(e164)) {
    throw badInput('ENUM_BAD_NUMBER', `"${e164}" is not an E.164 number in + form such as +15551234567`);
  }
  const digits = e164.slice(1).split('').reverse().join('.');
  return `${digits}.${normalizeEnumSuffix(suffix)}`;
}

/**
 * Splits a NAPTR regexp field into its parts (RFC 3402 §3.2). Returns a reason string when the
 * field is malformed: RFC 6116 §5.2 says to discard a NAPTR whose regexp is unclear.
 */
export function parseSubstitution(field: string): SubstitutionExpression | string {
  if (field.length < 3) return 'regexp field too short';
  const delimiter = field[0] as string;
  // RFC 3402 §3.2: digits cannot delimit (they would read as backrefs), nor a flag character;
  // the backslash is the escape character, so it cannot be a delimiter either.
  if (/[0-9iI\\]/.test(delimiter)) return `"${delimiter}" cannot be a regexp delimiter`;

  const parts: string[] = [''];
  for (let i = 1; i < field.length; i++) {
    const c = field[i] as string;
    if (c === '\\' && parts.length < 3) {
      const next = field[i + 1];
      if (next === undefined) return 'regexp ends in a lone backslash';
      // "\<delim>" is the delimiter as a plain character (escapeddelim); other escapes belong
      // to the ERE or to the repl and are kept for their own parser.
      parts[parts.length - 1] += next === delimiter ? next : c + next;
      i++;
    } else if (c === delimiter) {
      parts.push('');
    } else {
      parts[parts.length - 1] += c;
    }
  }
  // RFC 6116 §5.2: exactly three unescaped delimiters; anything else is discarded.
  if (parts.length !== 3) return `regexp has ${parts.length} unescaped delimiters, not 3`;
  const [ere, repl, flags] = parts as [string, string, string];
  if (flags !== '' && flags.toLowerCase() !== 'i') return `unknown regexp flags "${flags}"`;
  if (ere.length === 0) return 'empty regular expression';
  const replacement = parseReplacement(repl, delimiter);
  if (typeof replacement === 'string') return replacement;
  return { delimiter, ere, replacement, caseInsensitive: flags !== '' };
}

// RFC 3402 §3.2: repl = *(string / backref); backref = "\" POS-DIGIT (1-9, \0 is not allowed);
// escapeddelim = "\" delim-char. The splitter already turned "\<delim>" into the delimiter.
function parseReplacement(repl: string, delimiter: string): ReplacementPart[] | string {
  const parts: ReplacementPart[] = [];
  let text = '';
  for (let i = 0; i < repl.length; i++) {
    const c = repl[i] as string;
    if (c !== '\\') {
      text += c;
      continue;
    }
    const next = repl[i + 1] ?? '';
    if (next >= '1' && next <= '9') {
      if (text !== '') parts.push({ text });
      text = '';
      parts.push({ backref: Number(next) });
    } else if (next === '\\' || next === delimiter) {
      text += next;
    } else {
      // The grammar gives no meaning to any other escape: unclear, so refused (RFC 6116 §5.2).
      return `unknown escape "\\${next}" in the replacement`;
    }
    i++;
  }
  if (text !== '') parts.push({ text });
  return parts;
}

// POSIX bracket classes have no JavaScript spelling; the rest of an ERE reads the same.
const POSIX_CLASSES: Record<string, string> = {
  digit: '0-9',
  alpha: 'A-Za-z',
  alnum: '0-9A-Za-z',
  upper: 'A-Z',
  lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v',
  xdigit: '0-9A-Fa-f',
  punct: '!-\\/:-@\\[-`{-~',
};

/** The ERE as a JavaScript RegExp, or a reason when it does not compile. */
export function compileEre(expr: SubstitutionExpression): RegExp | string {
  const unsafe = backtrackingRisk(expr.ere);
  if (unsafe !== undefined) return unsafe;
  let source = expr.ere;
  for (const [name, range] of Object.entries(POSIX_CLASSES)) source = source.split(`[:${name}:]`).join(range);
  try {
    const re = new RegExp(source, expr.caseInsensitive ? 'i' : '');
    const groups = new RegExp(`${source}|`).exec('')?.length ?? 1;
    const highest = Math.max(0, ...expr.replacement.map((p) => ('backref' in p ? p.backref : 0)));
    if (highest > groups - 1) return `backref \\${highest} but the expression has ${groups - 1} groups`;
    return re;
  } catch (err) {
    return `regular expression does not compile: ${(err as Error).message}`;
  }
}

/** Most quantifiers and alternations an ERE may hold; real ENUM patterns use one to four. */
export const MAX_ERE_CHOICES = 8;

/**
 * Why an ERE could make the backtracking engine run for seconds, or undefined. The ERE comes
 * from whoever serves the DNS zone, and `((\d*)*)*x` takes minutes against a 15-digit number,
 * freezing the bridge: a repeated group may not itself hold a quantifier or an alternation,
 * and the whole ERE holds at most MAX_ERE_CHOICES of them. RFC 6116 §5.2 asks clients to take
 * non-trivial patterns "without failure"; a record refused here is skipped, not a failure.
 */
export function backtrackingRisk(ere: string): string | undefined {
  const groups: boolean[] = [false]; // per open group: does it hold a quantifier or alternation?
  let choices = 0;
  const mark = (): void => {
    groups[groups.length - 1] = true;
    choices++;
  };
  for (let i = 0; i < ere.length; i++) {
    const c = ere[i] as string;
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      i = bracketEnd(ere, i);
    } else if (c === '(') {
      groups.push(false);
    } else if (c === ')' && groups.length > 1) {
      const risky = groups.pop() as boolean;
      // '?' repeats at most once, so only '*', '+' and '{n,m}' can multiply the ways to match.
      if (risky && /[*+{]/.test(ere[i + 1] ?? '')) return 'repeated group holding a quantifier or alternation';
      if (risky) groups[groups.length - 1] = true;
    } else if (c === '|' || c === '*' || c === '+' || c === '?' || c === '{') {
      mark();
    }
    if (choices > MAX_ERE_CHOICES) return `more than ${MAX_ERE_CHOICES} quantifiers and alternations`;
  }
  return undefined;
}

// Index of the ']' closing the bracket expression opened at `open` (POSIX: a leading ']' or
// '^]' is literal; '[:class:]' nests).
function bracketEnd(ere: string, open: number): number {
  let i = open + 1;
  if (ere[i] === '^') i++;
  if (ere[i] === ']') i++;
  for (; i < ere.length; i++) {
    if (ere[i] === '[' && ere[i + 1] === ':') {
      const close = ere.indexOf(':]', i + 2);
      if (close !== -1) i = close + 1;
    } else if (ere[i] === ']') {
      return i;
    }
  }
  return ere.length;
}

/**
 * Applies a substitution expression to the Application Unique String (RFC 3402 §3.2: rules
 * apply to the AUS, sed-style: the matched part is replaced, the rest kept). Returns undefined
 * when the ERE does not match (the rule does not apply), a reason string when it is malformed.
 */
export function applySubstitution(field: string, aus: string): string | undefined | { readonly refused: string } {
  const expr = parseSubstitution(field);
  if (typeof expr === 'string') return { refused: expr };
  const re = compileEre(expr);
  if (typeof re === 'string') return { refused: re };
  const m = re.exec(aus);
  if (m === null) return undefined;
  // RFC 6116 §3.6: static text of the repl keeps its case; backrefs may be empty.
  const replaced = expr.replacement.map((p) => ('text' in p ? p.text : (m[p.backref] ?? ''))).join('');
  return aus.slice(0, m.index) + replaced + aus.slice(m.index + m[0].length);
}

/**
 * The enumservices of a Services field (RFC 6116 §3.4.3: `E2U` then `+type[:subtype]`…, or the
 * obsolete `type+E2U`), lower-cased; undefined when the field is not an E2U service field.
 */
export function enumServices(field: string): string[] | undefined {
  const m = /^e2u((?:\+[a-z0-9-]{1,32}(?::[a-z0-9-]{1,32})*)+)$/i.exec(field);
  if (m !== null) return (m[1] as string).slice(1).toLowerCase().split('+');
  // RFC 6116 §5.2: clients SHOULD still read the obsolete RFC 2916 spelling, e.g. "sip+E2U".
  const old = /^([a-z0-9-]{1,32})\+e2u$/i.exec(field);
  return old === null ? undefined : [(old[1] as string).toLowerCase()];
}

const ABSOLUTE_URI = /^[a-z][a-z0-9+.-]*:[^\s#]+$/i;

/**
 * The kind of identity a rewritten URI fills, by its scheme: `sip:`/`sips:` for SIP (RFC 3764),
 * `xmpp:` for XMPP (RFC 4979 registers E2U+xmpp with xmpp: URIs, RFC 5122).
 */
export function uriKind(uri: string): EnumUriKind | undefined {
  if (/^sips?:/i.test(uri)) return 'sip';
  if (/^xmpp:/i.test(uri)) return 'xmpp';
  return undefined;
}

/**
 * Picks, for each wanted kind, the first usable rule in ORDER then PREFERENCE sequence (RFC 6116
 * §5.2: ORDER major, PREFERENCE minor, lowest first; ties keep the DNS order). A rule is usable
 * when its flags are exactly "u" (case-insensitive), one of its enumservices is wanted (compound
 * fields left to right, §3.4.3.2), and its regexp rewrites `aus` into an absolute URI of the kind
 * naming a user@domain.
 * Non-terminal rules (empty flags) are discarded, which §5.2.1 allows; unknown flags are skipped
 * (§3.4.2). Every record not chosen is listed with the reason.
 */
export function chooseEnumRules(
  records: readonly NaptrRecord[],
  aus: string,
  wantedServices: readonly string[],
): { chosen: EnumChoice[]; skipped: SkippedRecord[] } {
  const wanted = new Set(wantedServices.flatMap((s) => enumServices(s) ?? []));
  const sorted = records
    .map((record, at) => ({ record, at }))
    .sort((a, b) => a.record.order - b.record.order || a.record.preference - b.record.preference || a.at - b.at)
    .map((x) => x.record);
  const chosen = new Map<EnumUriKind, EnumChoice>();
  const skipped: SkippedRecord[] = [];
  for (const record of sorted) {
    const reason = usable(record, aus, wanted);
    if (typeof reason === 'string') {
      skipped.push({ record, reason });
      continue;
    }
    if (chosen.has(reason.kind)) {
      skipped.push({ record, reason: `a better ${reason.kind} rule was already chosen` });
      continue;
    }
    chosen.set(reason.kind, { ...reason, record });
  }
  return { chosen: [...chosen.values()], skipped };
}

function usable(record: NaptrRecord, aus: string, wanted: ReadonlySet<string>): Omit<EnumChoice, 'record'> | string {
  const flags = record.flags.toLowerCase();
  if (flags === '') return 'non-terminal rule (empty flags): not followed';
  if (flags !== 'u') return `unknown flags "${record.flags}"`;
  const services = enumServices(record.service);
  if (services === undefined) return `service "${record.service}" is not an E2U service field`;
  if (!services.some((s) => wanted.has(s))) return `service "${record.service}" not wanted`;
  // RFC 3403 §4.1: regexp and replacement are mutually exclusive; a "u" rule's URI comes from
  // the regexp (RFC 3404 §4.3), so a replacement here makes the record unclear.
  if (record.replacement !== '' && record.replacement !== '.') return 'terminal rule with a replacement field';
  if (record.regexp === '') return 'terminal rule without a regexp';
  const result = applySubstitution(record.regexp, aus);
  if (result === undefined) return 'regexp does not match the number';
  if (typeof result !== 'string') return `malformed regexp: ${result.refused}`;
  // RFC 6116 §3.3: the output is an absolute URI.
  if (!ABSOLUTE_URI.test(result)) return `result "${result}" is not an absolute URI`;
  const kind = uriKind(result);
  if (kind === undefined) return `result "${result}" is neither a sip: nor an xmpp: URI`;
  const address = kind === 'sip' ? sipAddressOfRecord(result) : xmppBareJid(result);
  if (address === undefined) return `result "${result}" names no user@domain`;
  return { kind, uri: result, address };
}

/**
 * A `sip:`/`sips:` URI reduced to its address of record: parameters, headers and port dropped,
 * host lower-cased (RFC 3261 §19.1.4: the user part keeps its case). Undefined without a user.
 */
export function sipAddressOfRecord(uri: string): string | undefined {
  const m = /^(sips?):([^@;?]+)@([^;?:]+)(?::[0-9]+)?(?:[;?].*)?$/i.exec(uri);
  if (m === null) return undefined;
  return `${(m[1] as string).toLowerCase()}:${m[2] as string}@${(m[3] as string).toLowerCase()}`;
}

/**
 * An `xmpp:` URI (RFC 5122 §2) reduced to a bare JID: authority, resource, query and fragment
 * dropped, percent-encoding decoded, domain lower-cased. Undefined when there is no node@domain.
 */
export function xmppBareJid(uri: string): string | undefined {
  const m = /^xmpp:(?:\/\/[^/]*\/)?([^/?#]+)(?:\/[^?#]*)?(?:[?#].*)?$/i.exec(uri);
  if (m === null) return undefined;
  let jid: string;
  try {
    jid = decodeURIComponent(m[1] as string);
  } catch {
    return undefined;
  }
  const at = jid.lastIndexOf('@');
  if (at <= 0 || at === jid.length - 1) return undefined;
  return `${jid.slice(0, at)}@${jid.slice(at + 1).toLowerCase()}`;
}
