/**
 * JID localpart preparation: the PRECIS UsernameCaseMapped profile (RFC 8265 §3.3) that
 * RFC 7622 §3.3 makes the localpart rule of XMPP addresses. An XMPP server applies it to every
 * address it routes (Prosody lower-cases `Alice` to `alice`), so the bridge applies it too:
 * the JID it hands out for a SIP user is then the one the XMPP user's replies come back to, and
 * two spellings of one XMPP user (`Juliet`, `ｊｕｌｉｅｔ`) are one user.
 *
 * Steps (RFC 8265 §3.3.2 preparation + §3.3.3 enforcement): width mapping, case mapping to
 * lower case, NFC, then the checks of the IdentifierClass (RFC 8264 §4.2) and the Bidi Rule
 * (RFC 5893 §2). JavaScript regular expressions cannot ask for a code point's Bidi_Class, so
 * right-to-left is recognised by script (Hebrew, Arabic, …), which covers the letters of every
 * right-to-left script Unicode encodes.
 */

/** Why a string cannot be a localpart; `message` says which rule refused it. */
export class LocalpartError extends Error {
  override readonly name = 'LocalpartError';
}

// RFC 8265 §3.3.2 step 1: fullwidth and halfwidth code points map to their decomposition
// (Decomposition_Type <wide> or <narrow>: the Halfwidth and Fullwidth Forms block, the
// ideographic space and the won sign).
const WIDTH_MAPPED = /[\u3000\u20a9\uff01-\uffee]/gu;

// RFC 8264 §4.2: IdentifierClass keeps ASCII7 printable characters and LetterDigits
// (Ll, Lu, Lo, Nd, Lm, Mn, Mc), and disallows the rest (controls, spaces, symbols,
// punctuation, Lt, Nl, No, Me, unassigned, private use, default ignorables, HasCompat).
const IDENTIFIER_CHAR = /^(?:[\x21-\x7e]|[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}])$/u;
const DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/u;

const RTL_LETTER =
  /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}\p{Script=Yezidi}]/u;
const ARABIC_DIGIT = /[\u0660-\u0669]/u; // Bidi_Class AN
const EUROPEAN_DIGIT = /[0-9\u06f0-\u06f9]/u; // Bidi_Class EN
const NSM = /\p{Mn}/u;

/**
 * The localpart as an XMPP server would store it. Idempotent: prepareLocalpart(prepareLocalpart(x))
 * equals prepareLocalpart(x).
 * @throws LocalpartError naming the rule the input breaks.
 */
export function prepareLocalpart(input: string): string {
  const mapped = input
    .replace(WIDTH_MAPPED, (c) => c.normalize('NFKC'))
    .toLowerCase()
    .normalize('NFC');
  if (mapped.length === 0) throw new LocalpartError('is empty');
  for (const c of mapped) {
    if (!IDENTIFIER_CHAR.test(c) || DEFAULT_IGNORABLE.test(c)) {
      throw new LocalpartError(`holds ${codePoint(c)}, which the PRECIS IdentifierClass disallows (RFC 8264 §4.2)`);
    }
    // HasCompat (RFC 8264 §9.17): a character with a compatibility equivalent, e.g. ﬁ or ².
    if (c.normalize('NFKC') !== c) {
      throw new LocalpartError(`holds ${codePoint(c)}, which has a compatibility equivalent (RFC 8264 §9.17)`);
    }
  }
  const bidi = bidiProblem(mapped);
  if (bidi !== undefined) throw new LocalpartError(`${bidi} (Bidi Rule, RFC 5893 §2)`);
  return mapped;
}

type BidiClass = 'L' | 'R' | 'AN' | 'EN' | 'NSM' | 'other';

function bidiClass(c: string): BidiClass {
  if (RTL_LETTER.test(c) && !NSM.test(c) && !ARABIC_DIGIT.test(c) && !EUROPEAN_DIGIT.test(c)) return 'R';
  if (ARABIC_DIGIT.test(c)) return 'AN';
  if (EUROPEAN_DIGIT.test(c)) return 'EN';
  if (NSM.test(c)) return 'NSM';
  if (/[\p{L}\p{Mc}\p{Nd}]/u.test(c)) return 'L';
  return 'other'; // ASCII punctuation and symbols: ES, CS, ET, ON
}

/** RFC 5893 §2 rules 1–6, for strings that hold right-to-left characters (a "bidi domain name"). */
function bidiProblem(s: string): string | undefined {
  const classes = [...s].map(bidiClass);
  if (!classes.some((k) => k === 'R' || k === 'AN')) return undefined;
  const first = classes[0];
  if (first !== 'L' && first !== 'R') return 'a right-to-left localpart must start with a letter';
  let end = classes.length - 1;
  while (end > 0 && classes[end] === 'NSM') end--;
  const last = classes[end];
  if (first === 'R') {
    if (classes.includes('L')) return 'a right-to-left localpart cannot hold left-to-right letters';
    if (last !== 'R' && last !== 'EN' && last !== 'AN') return 'a right-to-left localpart must end with a letter or digit';
    if (classes.includes('EN') && classes.includes('AN')) return 'a right-to-left localpart cannot mix European and Arabic-Indic digits';
    return undefined;
  }
  return 'a localpart that starts left-to-right cannot hold right-to-left characters';
}

function codePoint(c: string): string {
  return `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}
