/**
 * PIDF (RFC 3863) with the RPID person extension (RFC 4479 data model, RFC 4480) ↔ the plain
 * PidfDocument of src/mapping/presence-values.ts. Pure: a string in, a value out, and back.
 *
 * Bodies come from any SIP peer, so reading is defensive: size, tuple count and depth are
 * bounded, DTDs are refused (no entity expansion), every element's nesting is checked (ltx's
 * tree builder ignores a mismatched end tag), and namespaces are resolved here, so any prefix
 * works and elements of unknown namespaces are skipped.
 */
// ltx is only a generic XML tokenizer and escaper here (eslint.config.js allows it in this file).
import { escapeXML, escapeXMLText } from 'ltx';
import SaxLtx from 'ltx/src/parsers/ltx.js';
import { BridgeError } from '../../core/errors.js';
import { isActivity, SHOWS, type PidfDocument, type PidfTuple, type Show } from '../../mapping/presence-values.js';

export const PIDF_CONTENT_TYPE = 'application/pidf+xml';

export const PIDF_NS = 'urn:ietf:params:xml:ns:pidf';
export const DATA_MODEL_NS = 'urn:ietf:params:xml:ns:pidf:data-model';
export const RPID_NS = 'urn:ietf:params:xml:ns:pidf:rpid';
/** RFC 8048 §6.2 note 7: XMPP `<show/>` goes into the PIDF in its own namespace. */
export const JABBER_CLIENT_NS = 'jabber:client';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';

export const MAX_PIDF_BYTES = 64 * 1024;
export const MAX_TUPLES = 64;
const MAX_DEPTH = 32;

/** An element with its namespace resolved. */
interface XmlElement {
  readonly ns: string;
  readonly local: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
}

/** A PIDF body → PidfDocument; throws BridgeError PIDF_INVALID (400) when it is not one. */
export function parsePidf(body: string): PidfDocument {
  if (Buffer.byteLength(body, 'utf8') > MAX_PIDF_BYTES) throw invalid(`body over ${MAX_PIDF_BYTES} bytes`);
  const root = parseXml(body);
  if (root.ns !== PIDF_NS || root.local !== 'presence') throw invalid(`root is {${root.ns}}${root.local}, not a PIDF <presence>`);
  const entity = root.attrs['entity'];
  // RFC 3863 §4.1.2: the entity attribute is mandatory.
  if (entity === undefined || entity.trim() === '') throw invalid('<presence> has no entity');

  const tuples: PidfTuple[] = [];
  const notes: string[] = [];
  const activities: string[] = [];
  for (const child of root.children) {
    if (child.ns === PIDF_NS && child.local === 'tuple') {
      if (tuples.length === MAX_TUPLES) throw invalid(`more than ${MAX_TUPLES} tuples`);
      const tuple = readTuple(child, activities);
      if (tuple !== undefined) tuples.push(tuple);
    } else if (child.ns === PIDF_NS && child.local === 'note') {
      pushNote(notes, child.text);
    } else if (child.ns === DATA_MODEL_NS && child.local === 'person') {
      for (const part of child.children) {
        if (part.ns === DATA_MODEL_NS && part.local === 'note') pushNote(notes, part.text);
        else if (part.ns === RPID_NS && part.local === 'activities') readActivities(part, activities);
      }
    }
  }
  return { entity: entity.trim(), tuples, notes, activities };
}

/** PidfDocument → RFC 3863 XML, with an RPID `<dm:person>` when there are activities or notes. */
export function buildPidf(doc: PidfDocument): string {
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<presence xmlns="${PIDF_NS}" xmlns:dm="${DATA_MODEL_NS}" xmlns:rpid="${RPID_NS}" entity="${attr(doc.entity)}">`,
  ];
  for (const tuple of doc.tuples) out.push(buildTuple(tuple));
  const activities = doc.activities.filter(isActivity);
  const notes = doc.notes.map(cleanText).filter((n) => n !== '');
  if (activities.length > 0 || notes.length > 0) {
    // RFC 4479 §4.4: <person> needs an id; RPID elements come before the person's notes.
    out.push('<dm:person id="p">');
    if (activities.length > 0) out.push(`<rpid:activities>${activities.map((a) => `<rpid:${a}/>`).join('')}</rpid:activities>`);
    for (const note of notes) out.push(`<dm:note>${text(note)}</dm:note>`);
    out.push('</dm:person>');
  }
  out.push('</presence>');
  return out.join('\n');
}

function buildTuple(tuple: PidfTuple): string {
  // RFC 3863 §4.1.3 order: status, extensions, contact, note, timestamp.
  let xml = `<tuple id="${attr(tuple.id)}"><status><basic>${tuple.basic}</basic>`;
  if (tuple.show !== undefined) xml += `<show xmlns="${JABBER_CLIENT_NS}">${tuple.show}</show>`;
  xml += '</status>';
  if (tuple.contact !== undefined) {
    const priority = tuple.priority === undefined ? '' : ` priority="${formatPriority(tuple.priority)}"`;
    xml += `<contact${priority}>${text(tuple.contact)}</contact>`;
  }
  const note = tuple.note === undefined ? '' : cleanText(tuple.note);
  if (note !== '') xml += `<note>${text(note)}</note>`;
  if (tuple.timestamp !== undefined) xml += `<timestamp>${text(tuple.timestamp)}</timestamp>`;
  return `${xml}</tuple>`;
}

function readTuple(el: XmlElement, activities: string[]): PidfTuple | undefined {
  const id = el.attrs['id'];
  if (id === undefined || id === '') throw invalid('<tuple> has no id');
  const status = pidfChild(el, 'status');
  if (status === undefined) throw invalid(`tuple ${id} has no <status>`);
  let show: Show | undefined;
  for (const part of status.children) {
    if (part.ns === JABBER_CLIENT_NS && part.local === 'show') show = SHOWS.find((s) => s === part.text.trim());
    // Pre-data-model RPID clients put activities in the tuple's status.
    else if (part.ns === RPID_NS && part.local === 'activities') readActivities(part, activities);
  }
  // RFC 3863 §4.1.4: <basic> is optional; a tuple without it says nothing about availability.
  const basicEl = pidfChild(status, 'basic');
  if (basicEl === undefined) return undefined;
  const basic = basicEl.text.trim();
  if (basic !== 'open' && basic !== 'closed') throw invalid(`tuple ${id} has basic status "${basic}"`);
  const contactEl = pidfChild(el, 'contact');
  const contact = contactEl?.text.trim();
  const priority = contactEl === undefined ? undefined : parsePriority(contactEl.attrs['priority']);
  const note = el.children.filter((c) => c.ns === PIDF_NS && c.local === 'note').map((c) => cleanText(c.text)).find((n) => n !== '');
  const timestamp = pidfChild(el, 'timestamp')?.text.trim();
  return {
    id,
    basic,
    ...(contact === undefined || contact === '' ? {} : { contact }),
    ...(priority === undefined ? {} : { priority }),
    ...(note === undefined ? {} : { note }),
    ...(timestamp === undefined || timestamp === '' ? {} : { timestamp }),
    ...(show === undefined ? {} : { show }),
  };
}

/** RFC 4480 §3.2: activity elements by name; notes inside <activities> are not activities. */
function readActivities(el: XmlElement, activities: string[]): void {
  for (const a of el.children) {
    if (a.ns === RPID_NS && a.local !== 'note' && !activities.includes(a.local)) activities.push(a.local);
  }
}

function pidfChild(el: XmlElement, local: string): XmlElement | undefined {
  return el.children.find((c) => c.ns === PIDF_NS && c.local === local);
}

/** RFC 3863 §4.1.5: a qvalue, 0 to 1 with up to three decimals. Anything else is ignored. */
function parsePriority(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*(0(\.\d{0,3})?|1(\.0{0,3})?)\s*$/.test(value)) return undefined;
  return Number(value);
}

function formatPriority(p: number): string {
  return String(Math.round(Math.min(Math.max(p, 0), 1) * 1000) / 1000);
}

function pushNote(notes: string[], raw: string): void {
  const note = cleanText(raw);
  if (note !== '') notes.push(note);
}

/**
 * Text as both directions see it: characters XML 1.0 cannot carry (controls, lone surrogates)
 * dropped, line ends normalised as an XML reader would (XML 1.0 §2.11), outer whitespace trimmed.
 */
export function cleanText(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/\r\n?/g, '\n')
    .trim();
}

function text(s: string): string {
  return escapeXMLText(cleanText(s));
}

function attr(s: string): string {
  return escapeXML(cleanText(s)).replace(/[\t\n]/g, (c) => (c === '\t' ? '&#9;' : '&#10;'));
}

const NAME = /^[^\s:<>&"'=/!?]+(?::[^\s:<>&"'=/!?]+)?$/u;

/** XML → a namespace-resolved tree, or PIDF_INVALID. */
function parseXml(body: string): XmlElement {
  // No DTD, so no entity declarations to expand (billion laughs) or resolve (XXE).
  if (/<!(?!--|\[CDATA\[)/.test(body)) throw invalid('DOCTYPE and other declarations are not accepted');
  const sax = new SaxLtx();
  const stack: { el: XmlElement; scope: Readonly<Record<string, string>>; name: string }[] = [];
  let root: XmlElement | undefined;
  let failure: string | undefined;
  const fail = (why: string): void => {
    failure ??= why;
  };
  sax.on('startElement', (name: string, attrs: Record<string, string>) => {
    if (failure !== undefined) return;
    if (!NAME.test(name)) return fail(`bad element name "${name}"`);
    if (stack.length === 0 && root !== undefined) return fail('more than one root element');
    if (stack.length === MAX_DEPTH) return fail(`elements nested deeper than ${MAX_DEPTH}`);
    const parentScope = stack.at(-1)?.scope ?? { xml: XML_NS };
    let scope = parentScope;
    for (const [key, value] of Object.entries(attrs)) {
      if (key === 'xmlns' || key.startsWith('xmlns:')) {
        if (scope === parentScope) scope = { ...parentScope };
        (scope as Record<string, string>)[key === 'xmlns' ? '' : key.slice(6)] = value;
      }
    }
    const colon = name.indexOf(':');
    const prefix = colon < 0 ? '' : name.slice(0, colon);
    const ns = scope[prefix];
    if (ns === undefined && prefix !== '') return fail(`unbound namespace prefix "${prefix}"`);
    const el: XmlElement = { ns: ns ?? '', local: name.slice(colon + 1), attrs, children: [], text: '' };
    const parent = stack.at(-1);
    if (parent === undefined) root = el;
    else parent.el.children.push(el);
    stack.push({ el, scope, name });
  });
  sax.on('endElement', (name: string) => {
    if (failure !== undefined) return;
    const top = stack.pop();
    if (top?.name !== name) fail(`unexpected end tag </${name}>`);
  });
  sax.on('text', (chunk: string) => {
    if (failure !== undefined) return;
    const top = stack.at(-1);
    if (top !== undefined) top.el.text += chunk;
    else if (chunk.trim() !== '') fail('text outside the root element');
  });
  try {
    sax.write(body);
    sax.end();
  } catch (err) {
    // ltx throws (not emits) on an undefined entity or a forbidden character reference.
    throw invalid(err instanceof Error ? err.message : String(err), err);
  }
  if (failure !== undefined) throw invalid(failure);
  if (root === undefined || stack.length > 0) throw invalid('incomplete document');
  return root;
}

function invalid(why: string, cause?: unknown): BridgeError {
  return new BridgeError('PIDF_INVALID', `invalid PIDF: ${why}`, { condition: 'bad-request', sipStatus: 400, cause });
}
