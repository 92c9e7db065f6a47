/**
 * StaticSource: the operator's own table of people (issue 3), from the configuration
 * (`mapping.identities`) or from a YAML or CSV file (`mapping.sources: [{type: static, file}]`).
 * A file is read at start() and again on reload() (SIGHUP): the new table replaces the old in
 * one assignment, so lookups in flight finish on the table they began with and none waits; a
 * file that does not read or parse keeps the old table and the error is logged.
 *
 * File formats:
 * - YAML: a list of rows, or `{identities: [rows]}`; a row is `{e164, sip, xmpp?, canonical?}`.
 * - CSV: a header naming the columns (`e164,sip,xmpp,canonical`, any order, e164 and sip
 *   required), then one row per line; `#` starts a comment line; fields may be "quoted".
 * Numbers may be written in any spelling normalizeE164 accepts (with `mapping.defaultRegion`).
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { BridgeError } from '../../core/errors.js';
import type { Logger } from '../../telemetry/logger.js';
import { normalizeE164 } from '../e164.js';
import type { Identity, IdentitySource } from '../identity-source.js';
import { parseSipAor } from '../identity.js';

/** One row as written by the operator. */
export interface StaticRow {
  readonly e164: string;
  readonly sip: string;
  readonly xmpp?: string;
  readonly canonical?: string;
}

export interface StaticSourceOptions {
  /** Name in logs, health and `lookup`. */
  readonly name?: string;
  /** Rows given inline (config `mapping.identities`); with `file` the file's rows replace them. */
  readonly rows?: readonly StaticRow[];
  readonly file?: string;
  /** Read the file as YAML or CSV; by default .csv is CSV and anything else YAML. */
  readonly format?: 'yaml' | 'csv';
  readonly defaultRegion?: string;
  readonly logger: Logger;
}

/** An immutable lookup table; a reload builds a new one. */
export class IdentityTable {
  private readonly byE164 = new Map<string, Identity>();
  private readonly bySip = new Map<string, Identity>();

  /** @throws BridgeError `IDENTITY_INVALID` naming the first bad or duplicate row by `where(i)`. */
  constructor(rows: readonly StaticRow[], where: (i: number) => string, defaultRegion?: string) {
    rows.forEach((row, i) => {
      let e164: string;
      try {
        e164 = normalizeE164(String(row.e164), { defaultRegion }).e164;
      } catch (err) {
        throw invalid(`${where(i)}: e164: ${(err as Error).message}`);
      }
      const sip = sipKey(String(row.sip));
      if (sip === undefined) throw invalid(`${where(i)}: sip "${row.sip}" is not a SIP address such as sip:alice@corp.example`);
      if (row.xmpp !== undefined && row.xmpp !== '' && !/^[^@/\s]+@[^@/\s]+$/.test(row.xmpp)) {
        throw invalid(`${where(i)}: xmpp "${row.xmpp}" is not a bare JID such as alice@chat.corp.example`);
      }
      if (this.byE164.has(e164)) throw invalid(`${where(i)}: e164 ${e164} is listed twice`);
      // Two numbers for one SIP address would make the reverse lookup a guess.
      if (this.bySip.has(sip)) throw invalid(`${where(i)}: sip ${row.sip} is listed twice`);
      const identity: Identity = {
        e164,
        sip: String(row.sip).trim(),
        ...(row.xmpp === undefined || row.xmpp === '' ? {} : { xmpp: row.xmpp }),
        ...(row.canonical === undefined || row.canonical === '' ? {} : { canonical: row.canonical }),
      };
      this.byE164.set(e164, identity);
      this.bySip.set(sip, identity);
    });
  }

  byNumber(e164: string): Identity | undefined {
    return this.byE164.get(e164);
  }

  bySipAddress(sip: string): Identity | undefined {
    const key = sipKey(sip);
    return key === undefined ? undefined : this.bySip.get(key);
  }

  get size(): number {
    return this.byE164.size;
  }
}

export class StaticSource implements IdentitySource {
  readonly name: string;
  private table: IdentityTable;

  /** @throws BridgeError `IDENTITY_INVALID` for a bad inline row. */
  constructor(private readonly options: StaticSourceOptions) {
    this.name = options.name ?? 'static';
    this.table = new IdentityTable(options.rows ?? [], (i) => `mapping.identities[${i}]`, options.defaultRegion);
  }

  get size(): number {
    return this.table.size;
  }

  /** Reads the file; a bad file at start-up is a configuration fault and rejects. */
  async start(): Promise<void> {
    if (this.options.file === undefined) return;
    this.table = await this.readTable(this.options.file);
    this.options.logger.info({ source: this.name, file: this.options.file, identities: this.table.size }, 'identity table loaded');
  }

  /** Re-reads the file and swaps the table; a bad file keeps the old table. Resolves true when swapped. */
  async reload(): Promise<boolean> {
    const file = this.options.file;
    if (file === undefined) return false;
    try {
      const table = await this.readTable(file);
      this.table = table;
      this.options.logger.info({ source: this.name, file, identities: table.size }, 'identity table reloaded');
      return true;
    } catch (err) {
      this.options.logger.error({ source: this.name, file, error: (err as Error).message }, 'identity table not reloaded; keeping the previous one');
      return false;
    }
  }

  byNumber(e164: string): Promise<Identity | undefined> {
    return Promise.resolve(this.table.byNumber(e164));
  }

  bySipAddress(sip: string): Promise<Identity | undefined> {
    return Promise.resolve(this.table.bySipAddress(sip));
  }

  private async readTable(file: string): Promise<IdentityTable> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw invalid(`cannot read identity file ${file}: ${(err as Error).message}`);
    }
    const format = this.options.format ?? (extname(file).toLowerCase() === '.csv' ? 'csv' : 'yaml');
    const { rows, where } = format === 'csv' ? parseCsvRows(text, file) : parseYamlRows(text, file);
    return new IdentityTable(rows, where, this.options.defaultRegion);
  }
}

interface ParsedRows {
  readonly rows: readonly StaticRow[];
  readonly where: (i: number) => string;
}

function parseYamlRows(text: string, file: string): ParsedRows {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    throw invalid(`${file} is not valid YAML: ${(err as Error).message}`);
  }
  const list = Array.isArray(doc) ? doc : isRecord(doc) && Array.isArray(doc['identities']) ? doc['identities'] : undefined;
  if (list === undefined) throw invalid(`${file}: expected a list of {e164, sip, xmpp?, canonical?} rows or {identities: [...]}`);
  const rows = list.map((row: unknown, i) => {
    if (!isRecord(row)) throw invalid(`${file}: row ${i}: expected a mapping {e164, sip, xmpp?, canonical?}`);
    const unknown = Object.keys(row).filter((k) => !['e164', 'sip', 'xmpp', 'canonical'].includes(k));
    if (unknown.length > 0) throw invalid(`${file}: row ${i}: unknown key ${unknown.join(', ')}`);
    // YAML reads an unquoted +15551234567 as the integer 15551234567, losing the "+".
    if (typeof row['e164'] === 'number') throw invalid(`${file}: row ${i}: e164: a YAML number; quote it ("+15551234567") so the + and leading zeros stay`);
    for (const key of ['e164', 'sip'] as const) {
      if (typeof row[key] !== 'string') throw invalid(`${file}: row ${i}: ${key}: missing (expected string)`);
    }
    return row as unknown as StaticRow;
  });
  return { rows, where: (i) => `${file}: row ${i}` };
}

const CSV_COLUMNS = ['e164', 'sip', 'xmpp', 'canonical'] as const;

function parseCsvRows(text: string, file: string): ParsedRows {
  const rows: StaticRow[] = [];
  const lines: number[] = [];
  let columns: string[] | undefined;
  text.split(/\r?\n/).forEach((line, index) => {
    const lineNo = index + 1;
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const fields = splitCsvLine(line, `${file}:${lineNo}`);
    if (columns === undefined) {
      columns = fields.map((f) => f.trim());
      const unknown = columns.filter((c) => !(CSV_COLUMNS as readonly string[]).includes(c));
      if (unknown.length > 0) throw invalid(`${file}:${lineNo}: unknown column ${unknown.join(', ')} (expected ${CSV_COLUMNS.join(',')})`);
      if (!columns.includes('e164') || !columns.includes('sip')) throw invalid(`${file}:${lineNo}: the header must name the e164 and sip columns`);
      return;
    }
    if (fields.length !== columns.length) throw invalid(`${file}:${lineNo}: ${fields.length} fields, the header has ${columns.length}`);
    const row: Record<string, string> = {};
    columns.forEach((c, i) => (row[c] = (fields[i] as string).trim()));
    rows.push(row as unknown as StaticRow);
    lines.push(lineNo);
  });
  return { rows, where: (i) => `${file}:${lines[i] ?? '?'}` };
}

/** RFC 4180 fields on one line: commas separate, "quoted" fields may hold commas and "" quotes. */
function splitCsvLine(line: string, where: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (let guard = 0; guard <= line.length; guard++) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) throw invalid(`${where}: a quoted field is not closed`);
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fields.push(value);
    } else {
      const comma = line.indexOf(',', i);
      fields.push(line.slice(i, comma === -1 ? line.length : comma));
      i = comma === -1 ? line.length : comma;
    }
    if (i >= line.length) return fields;
    if (line[i] !== ',') throw invalid(`${where}: text after a quoted field`);
    i++;
    if (i === line.length) {
      fields.push('');
      return fields;
    }
  }
  return fields;
}

/** `sip:user@host` with the host lower-cased and the user exact (RFC 3261 §19.1.4), or undefined. */
export function sipKey(uri: string): string | undefined {
  const aor = parseSipAor(uri.trim());
  return aor === undefined ? undefined : `sip:${aor.user}@${aor.domain}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(message: string): BridgeError {
  return new BridgeError('IDENTITY_INVALID', message, { condition: 'internal-server-error' });
}
