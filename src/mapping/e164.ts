/**
 * E.164 normalisation (issue 3): every spelling of a telephone number a person or a peer may
 * use becomes one `+` form, so the identity sources and their cache see one key per number.
 *
 * Accepted: international (`+44 20 7946 0958`, `00 44 …` with a region whose international
 * prefix is 00), national with the configured default region (`(555) 123-4567` with `US`),
 * `tel:` URIs (RFC 3966, visual separators, `;ext=`, `;phone-context=`), and `sip:`/`sips:`
 * URIs whose user part is a telephone-subscriber (RFC 3261 §19.1.6, `;user=phone`).
 *
 * "Possible" rather than "valid" in libphonenumber's terms: the length must fit the country's
 * numbering plan, but the number range need not be allocated, so fictional ranges used in
 * tests and documentation (+1 555 01xx, ITU-T E.164 Annex) and newly opened ranges the bundled
 * metadata does not know yet still pass. A number nobody has is then "unmapped", not "malformed".
 */
import { parsePhoneNumberWithError, ParseError, type CountryCode } from 'libphonenumber-js';
import { BridgeError } from '../core/errors.js';

export interface E164Number {
  /** `+` and 2 to 15 digits, e.g. +15551234567. */
  readonly e164: string;
  /** Extension digits (RFC 3966 §5.1.4 `;ext=`), kept apart: it is not part of E.164. */
  readonly extension?: string;
}

export interface NormalizeOptions {
  /** ISO 3166-1 alpha-2 region for national spellings (config `mapping.defaultRegion`). */
  readonly defaultRegion?: string;
}

const MAX_INPUT = 256;
// RFC 3966 §3: visual-separator = "-" / "." / "(" / ")". People also type spaces and slashes.
const SPELLING = /^\+?[0-9\-.()\s/]+$/u;
// RFC 3966 §3: phonedigit = DIGIT / visual-separator.
const TEL_GLOBAL = /^\+[0-9\-.()]*[0-9][0-9\-.()]*$/;
const TEL_LOCAL = /^[0-9A-Fa-f*#\-.()]*[0-9A-Fa-f*#][0-9A-Fa-f*#\-.()]*$/;
// Written extensions: "ext. 12", "x12", "#12" at the end of a spelling.
const WRITTEN_EXTENSION = /\s*(?:;\s*ext=|ext\.?|x|#)\s*([0-9]{1,10})$/iu;

/**
 * The E.164 form of `input`.
 * @throws BridgeError `NUMBER_INVALID` (condition jid-malformed) saying why it is not a number.
 */
export function normalizeE164(input: string, options: NormalizeOptions = {}): E164Number {
  if (input.length > MAX_INPUT) throw invalid(`"${input.slice(0, 32)}…" is longer than ${MAX_INPUT} characters`);
  const trimmed = input.trim();
  const scheme = /^(tel|sips?):/i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === 'tel') return fromTelephoneSubscriber(trimmed.slice(4), input, options);
  if (scheme === 'sip' || scheme === 'sips') return fromSipUri(trimmed.slice(scheme.length + 1), input, options);
  return fromSpelling(trimmed, input, options);
}

/** Whether `s` is already an E.164 number in `+` form (no separators). */
export function isE164Form(s: string): boolean {
  return /^\+[1-9][0-9]{1,14}$/.test(s);
}

/** RFC 3261 §19.1.6: `sip:+1-212-555-0100;ext=12@host;user=phone`, the user part a telephone-subscriber. */
function fromSipUri(rest: string, input: string, options: NormalizeOptions): E164Number {
  const at = rest.lastIndexOf('@');
  if (at <= 0) throw invalid(`"${input}" has no user part to read a number from`);
  const user = safeDecode(rest.slice(0, at), input);
  const params = rest.slice(at + 1).split(';').slice(1);
  const userPhone = params.some((p) => p.toLowerCase() === 'user=phone');
  // Without user=phone a user part is a name; a leading "+" is taken as a number anyway, since
  // trunks commonly omit the parameter and no name starts with "+".
  if (!userPhone && !user.startsWith('+')) {
    throw invalid(`"${input}" is not a telephone number: its user part has no "+" and the URI no ;user=phone (RFC 3261 §19.1.6)`);
  }
  return fromTelephoneSubscriber(user, input, options);
}

/** RFC 3966 §3 telephone-subscriber: global-number or local-number with a phone-context. */
function fromTelephoneSubscriber(subscriber: string, input: string, options: NormalizeOptions): E164Number {
  const [number = '', ...paramList] = subscriber.split(';');
  const params = new Map<string, string>();
  for (const p of paramList) {
    const eq = p.indexOf('=');
    const name = (eq === -1 ? p : p.slice(0, eq)).toLowerCase();
    if (params.has(name)) throw invalid(`"${input}" repeats the parameter ${name} (RFC 3966 §3)`);
    params.set(name, eq === -1 ? '' : safeDecode(p.slice(eq + 1), input));
  }
  const ext = params.get('ext');
  if (ext !== undefined && !/^[0-9\-.()]*[0-9][0-9\-.()]*$/.test(ext)) {
    throw invalid(`"${input}" has an extension that is not digits: "${ext}"`);
  }
  const extension = ext === undefined ? undefined : digitsOf(ext);
  let global: string;
  if (number.startsWith('+')) {
    if (!TEL_GLOBAL.test(number)) throw invalid(`"${input}": "${number}" is not a global number (digits and - . ( ) only, RFC 3966 §3)`);
    global = `+${digitsOf(number)}`;
  } else {
    if (!TEL_LOCAL.test(number)) throw invalid(`"${input}": "${number}" is not a telephone number (RFC 3966 §3)`);
    const context = params.get('phone-context');
    // RFC 3966 §5.1.5: a local number is only meaningful within its phone-context.
    if (context === undefined) throw invalid(`"${input}" is a local number without the phone-context RFC 3966 §5.1.5 requires`);
    if (!context.startsWith('+')) {
      throw invalid(`"${input}" is local to the domain "${context}", which gives no country code to place it in E.164`);
    }
    if (/[^0-9\-.()]/.test(number)) throw invalid(`"${input}" holds a digit (A-F, *, #) with no place in E.164`);
    // §5.1.5: a global-number-digits context is the prefix the local number continues.
    global = `+${digitsOf(context)}${digitsOf(number)}`;
  }
  const parsed = parse(global, input, options);
  return extension === undefined || extension === '' ? parsed : { e164: parsed.e164, extension };
}

function fromSpelling(spelling: string, input: string, options: NormalizeOptions): E164Number {
  const written = WRITTEN_EXTENSION.exec(spelling);
  const number = written === null ? spelling : spelling.slice(0, written.index);
  if (number === '' || !SPELLING.test(number)) {
    throw invalid(`"${input}" is not a telephone number: only digits, a leading +, spaces and - . ( ) / are allowed`);
  }
  const parsed = parse(number, input, options);
  return written === null ? parsed : { e164: parsed.e164, extension: written[1] as string };
}

function parse(number: string, input: string, options: NormalizeOptions): E164Number {
  if (!number.trim().startsWith('+') && options.defaultRegion === undefined) {
    throw invalid(`"${input}" has no country code and no default region is configured (mapping.defaultRegion)`);
  }
  let phone;
  try {
    phone = parsePhoneNumberWithError(number, { defaultCountry: options.defaultRegion as CountryCode | undefined, extract: false });
  } catch (err) {
    throw invalid(`"${input}" ${reason(err instanceof ParseError ? err.message : String(err))}`, err);
  }
  if (!phone.isPossible()) {
    throw invalid(`"${input}" has ${phone.nationalNumber.length} digits after +${phone.countryCallingCode}, not a length its numbering plan allows`);
  }
  if (phone.ext !== undefined) return { e164: phone.number, extension: phone.ext };
  return { e164: phone.number };
}

function reason(code: string): string {
  switch (code) {
    case 'INVALID_COUNTRY':
      return 'has no country calling code that exists';
    case 'TOO_SHORT':
      return 'is too short to be a telephone number';
    case 'TOO_LONG':
      return 'is longer than E.164 allows (15 digits)';
    case 'NOT_A_NUMBER':
      return 'is not a telephone number';
    default:
      return `is not a telephone number (${code})`;
  }
}

function digitsOf(s: string): string {
  return s.replace(/[^0-9]/g, '');
}

function safeDecode(s: string, input: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw invalid(`"${input}" holds a broken %-escape`);
  }
}

function invalid(message: string, cause?: unknown): BridgeError {
  return new BridgeError('NUMBER_INVALID', message, { condition: 'jid-malformed', cause });
}

/**
 * normalizeE164 with a bounded memo of accepted spellings: libphonenumber spends ~30 µs per
 * parse (bench/identity-lookup.bench.ts) and the router sees the same few numbers again and
 * again. Refusals are not memoised, so hostile input cannot fill the memo with junk it keeps.
 */
export class E164Normalizer {
  private readonly memo = new Map<string, E164Number>();

  constructor(
    private readonly options: NormalizeOptions = {},
    private readonly maxEntries = 10_000,
  ) {}

  normalize(input: string): E164Number {
    const hit = this.memo.get(input);
    if (hit !== undefined) return hit;
    const result = normalizeE164(input, this.options);
    if (this.memo.size >= this.maxEntries) {
      // Oldest first: Map iteration follows insertion order.
      const oldest = this.memo.keys().next().value;
      if (oldest !== undefined) this.memo.delete(oldest);
    }
    this.memo.set(input, result);
    return result;
  }
}
