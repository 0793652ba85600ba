import { pino, type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  level: string;
  format: 'json' | 'pretty' | 'auto';
}

// Keys that must never reach a log line, wherever they appear in a logged object.
const REDACT = [
  'password',
  '*.password',
  'token',
  '*.token',
  'refreshToken',
  '*.refreshToken',
  'apiKey',
  '*.apiKey',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

/** JSON to stdout; human-readable on a TTY (format auto) through pino-pretty in a worker thread. */
export function createLogger(opts: LogOptions, base: Record<string, unknown> = {}): Logger {
  const pretty = opts.format === 'pretty' || (opts.format === 'auto' && process.stdout.isTTY === true);
  return pino({
    level: opts.level,
    base: { ...base },
    redact: { paths: REDACT, censor: '<redacted>' },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  });
}

/** A logger that discards everything, for tests and CLI commands that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
