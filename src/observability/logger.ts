import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

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

/**
 * JSON to stdout (or `destination`, for tests that read the log); human-readable on a TTY (format auto) through
 * pino-pretty in a worker thread.
 */
export function createLogger(opts: LogOptions, base: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  const pretty = !destination && (opts.format === 'pretty' || (opts.format === 'auto' && process.stdout.isTTY === true));
  const options: LoggerOptions = {
    level: opts.level,
    base: { ...base },
    redact: { paths: REDACT, censor: '<redacted>' },
    serializers: { err: serializeError, error: serializeError },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  };
  return destination ? pino(options, destination) : pino(options);
}

// ---- errors of failed queries --------------------------------------------------------------------------------------
// A failed query carries the data it was sent: Drizzle's DrizzleQueryError puts "params: …" in its message (so in
// its stack) and keeps `params`; PGlite's error keeps `params` too; and Postgres's own `detail` and `where` quote row
// values ("Failing row contains (…, <password hash>, …)", "Key (email)=(…)", "JSON data, line 1: …"), as messages
// of the "invalid input syntax for type uuid: "…"" kind quote the value. Password hashes, tokens and document text
// would reach the log that way. Every logged error goes through redactQueryData, its causes included; the SQL text
// (placeholders only), the SQLSTATE code, the constraint and the table stay, which is what a reader needs.

const REDACTED = '<redacted>';
/** Fields of a driver error that hold the query's data rather than describe the failure. */
const DATA_FIELDS = new Set(['params', 'parameters', 'values', 'queryOptions']);
/** Fields of a Postgres error that quote row or input values. */
const VALUE_FIELDS = new Set(['detail', 'where']);

type ErrorLike = Error & Record<string, unknown>;
const isErrorLike = (v: unknown): v is ErrorLike => typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string';
/** A Postgres server error, from pg or PGlite: a five-character SQLSTATE and a severity. */
const isDatabaseError = (e: ErrorLike) => typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';

function redactMessage(e: ErrorLike): string {
  let message = e.message;
  const failed = /^Failed query: [\s\S]*?\nparams: /.exec(message);
  if (failed) message = `${failed[0]}${REDACTED}`;
  // `…: "value"` at the end quotes the input (invalid input syntax, invalid enum value, malformed array literal).
  if (isDatabaseError(e)) message = message.replace(/: "(?:[^"]|"")*"$/, `: "${REDACTED}"`);
  return message;
}

/**
 * A copy of `err` and its causes (same prototypes, so the same type names) without the data of a failed query: the
 * parameters (fields and message), and the value-quoting fields of a Postgres error. Anything that is not an error
 * comes back as it is.
 */
export function redactQueryData<T>(err: T, seen = new Map<object, unknown>()): T {
  if (!isErrorLike(err)) return err;
  if (seen.has(err)) return seen.get(err) as T;
  const copy = Object.create(Object.getPrototypeOf(err) as object | null) as ErrorLike;
  seen.set(err, copy);
  const message = redactMessage(err);
  const database = isDatabaseError(err);
  for (const key of Reflect.ownKeys(err)) {
    if (typeof key === 'string' && (DATA_FIELDS.has(key) || (database && VALUE_FIELDS.has(key)))) continue;
    const descriptor = Object.getOwnPropertyDescriptor(err, key)!;
    if ('value' in descriptor) {
      if (key === 'message') descriptor.value = message;
      else if (key === 'stack' && typeof descriptor.value === 'string' && message !== err.message)
        // The stack's first line repeats the message; without it there, keep no frames rather than risk the data.
        descriptor.value = descriptor.value.includes(err.message) ? descriptor.value.split(err.message).join(message) : `${err.name}: ${message}`;
      else if (key === 'cause') descriptor.value = redactQueryData(descriptor.value, seen);
      else if (key === 'errors' && Array.isArray(descriptor.value)) descriptor.value = descriptor.value.map((e: unknown) => redactQueryData(e, seen));
    }
    Object.defineProperty(copy, key, descriptor);
  }
  return copy as T;
}

/** An error's message without a failed query's data: for reasons that are logged or stored (a job's last error). */
export function errorMessage(err: unknown): string {
  return isErrorLike(err) ? redactQueryData(err).message : String(err);
}

/**
 * pino's standard error serializer over redactQueryData. It folds causes into message and stack; the first
 * Postgres error in the chain also comes out as `database` (SQLSTATE, constraint, table …), since a wrapper such
 * as DrizzleQueryError shows none of that itself.
 */
export function serializeError(err: unknown): unknown {
  if (!isErrorLike(err)) return err;
  const clean = redactQueryData(err);
  const out = pino.stdSerializers.err(clean) as unknown as Record<string, unknown>;
  for (let e: unknown = clean, depth = 0; isErrorLike(e) && depth < 10; e = e.cause, depth++) {
    if (isDatabaseError(e)) {
      const { code, severity, schema, table, column, constraint, dataType, routine } = e;
      out.database = Object.fromEntries(Object.entries({ code, severity, message: e.message, schema, table, column, constraint, dataType, routine }).filter(([, v]) => v !== undefined));
      break;
    }
  }
  return out;
}

/** A logger that discards everything, for tests and CLI commands that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
