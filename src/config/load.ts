import { readFile } from 'node:fs/promises';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { configSchema, type BridgeConfig } from './schema.js';

/** A configuration that cannot be used; the message names the key path and what was expected. */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: readonly string[] = [],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Validates a parsed document; returns a deep-frozen typed config. */
export function parseConfig(document: unknown, source = 'config'): Readonly<BridgeConfig> {
  const result = configSchema.safeParse(document ?? {});
  if (!result.success) {
    const issues = result.error.issues.map(describeIssue);
    throw new ConfigError(`${source} is invalid:\n  ${issues.join('\n  ')}`, issues);
  }
  return deepFreeze(result.data);
}

/**
 * Reads and validates a YAML config file. `overrides` replace top-level keys before validation
 * (the command line's `--role`), so they are checked like the file's own values.
 */
export async function loadConfig(path: string, overrides: Record<string, unknown> = {}): Promise<Readonly<BridgeConfig>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let document: unknown;
  try {
    document = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    const detail = err instanceof YAMLParseError ? err.message : String(err);
    throw new ConfigError(`${path} is not valid YAML: ${detail}`);
  }
  const merged = Object.keys(overrides).length === 0 ? document : { ...(document as Record<string, unknown>), ...overrides };
  return parseConfig(merged, path);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length > 0 ? `${path}.` : '';
    return issue.keys.map((k) => `${where}${k}: unknown key`).join('; ');
  }
  // zod words a missing key as "Invalid input: expected object, received undefined".
  const missing = /^Invalid input: expected (\w+), received undefined$/.exec(issue.message);
  if (missing) return `${path}: missing (expected ${missing[1]})`;
  return `${path}: ${issue.message}`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
