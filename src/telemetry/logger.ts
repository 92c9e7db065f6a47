import { pino, type Logger } from 'pino';

export type { Logger };

/** The one logger: JSON lines on stdout (or the given destination), child loggers per component. */
export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const opts = { level: options.level ?? process.env['LOG_LEVEL'] ?? 'info', base: { app: 'sip-xmpp-bridge' } };
  return options.destination ? pino(opts, options.destination as never) : pino(opts);
}

/** A logger that writes nothing, for unit tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
