/**
 * A real pino logger (src/telemetry/logger.ts) whose JSON lines a test can read back, to assert
 * on structured log lines such as audit denials.
 */
import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '../../src/telemetry/logger.js';

export interface LogLine extends Record<string, unknown> {
  readonly msg?: string;
  readonly level?: number;
}

export function recordingLogger(level: 'info' | 'debug' = 'info'): { logger: Logger; lines: () => LogLine[] } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  return {
    logger: createLogger({ level, destination: out }),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as LogLine),
  };
}
