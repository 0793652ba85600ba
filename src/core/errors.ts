// The catalogue of problem types (RFC 9457). Code throws DocupodError with one of these; one root handler in
// src/http/problem.ts renders it as application/problem+json. Each type is documented at /problems/<name>.

export interface ProblemType {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  /** Anticipated condition (bad input, missing row): logged at warn without a stack. */
  readonly expected: boolean;
}

export const Problems = {
  validation: { type: '/problems/validation', title: 'Invalid request', status: 400, expected: true },
  badRequest: { type: '/problems/bad-request', title: 'Bad request', status: 400, expected: true },
  unauthorized: { type: '/problems/unauthorized', title: 'Authentication required', status: 401, expected: true },
  forbidden: { type: '/problems/forbidden', title: 'Forbidden', status: 403, expected: true },
  notFound: { type: '/problems/not-found', title: 'Not found', status: 404, expected: true },
  methodNotAllowed: { type: '/problems/method-not-allowed', title: 'Method not allowed', status: 405, expected: true },
  conflict: { type: '/problems/conflict', title: 'Conflict', status: 409, expected: true },
  payloadTooLarge: { type: '/problems/payload-too-large', title: 'Payload too large', status: 413, expected: true },
  uriTooLong: { type: '/problems/uri-too-long', title: 'URI too long', status: 414, expected: true },
  unsupportedMediaType: { type: '/problems/unsupported-media-type', title: 'Unsupported media type', status: 415, expected: true },
  unprocessable: { type: '/problems/unprocessable', title: 'Unprocessable content', status: 422, expected: true },
  rateLimited: { type: '/problems/rate-limited', title: 'Too many requests', status: 429, expected: true },
  quotaExceeded: { type: '/problems/quota-exceeded', title: 'Quota exceeded', status: 429, expected: true },
  internal: { type: '/problems/internal', title: 'Internal server error', status: 500, expected: false },
  notImplemented: { type: '/problems/not-implemented', title: 'Not implemented', status: 501, expected: true },
  unavailable: { type: '/problems/unavailable', title: 'Service unavailable', status: 503, expected: true },
  llmUnavailable: { type: '/problems/llm-unavailable', title: 'Model backend unavailable', status: 503, expected: true },
  upstreamTimeout: { type: '/problems/upstream-timeout', title: 'Upstream timeout', status: 504, expected: true },
} as const satisfies Record<string, ProblemType>;

export type ProblemName = keyof typeof Problems;

export interface ProblemExtras {
  /** Seconds; rendered as the Retry-After header for 429/503. */
  retryAfter?: number;
  /** Field-level errors for validation problems. */
  errors?: Array<{ path: string; message: string }>;
  /** For job errors: false when retrying cannot help (the document goes to `failed`). */
  retryable?: boolean;
  [key: string]: unknown;
}

export class DocupodError extends Error {
  constructor(
    readonly problem: ProblemType,
    detail: string,
    readonly extra: ProblemExtras = {},
    options?: ErrorOptions,
  ) {
    super(detail, options);
    this.name = 'DocupodError';
  }

  get status(): number {
    return this.problem.status;
  }
}

/** Shorthand constructors for the common cases, so call sites stay one line. */
export const fail = {
  badRequest: (detail: string, extra?: ProblemExtras) => new DocupodError(Problems.badRequest, detail, extra),
  unauthorized: (detail: string) => new DocupodError(Problems.unauthorized, detail),
  forbidden: (detail: string) => new DocupodError(Problems.forbidden, detail),
  notFound: (what: string) => new DocupodError(Problems.notFound, `${what} not found`),
  conflict: (detail: string) => new DocupodError(Problems.conflict, detail),
  rateLimited: (detail: string, retryAfter: number) => new DocupodError(Problems.rateLimited, detail, { retryAfter }),
  unavailable: (detail: string, options?: ErrorOptions) => new DocupodError(Problems.unavailable, detail, {}, options),
};

export function isDocupodError(err: unknown): err is DocupodError {
  return err instanceof DocupodError;
}

// SQLSTATE classes and driver messages that mean "the database is not reachable right now" (a restart, a failover,
// a network cut), not a bug: 08 connection exception, 57P01-57P03 admin/crash shutdown and cannot-connect-now.
const DB_UNAVAILABLE_CODES = /^(08...|57P0[123]|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND)$/;
const DB_UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|not queryable|the database system is (starting up|shutting down)/i;

/**
 * A lost or refused database connection as a 503 with Retry-After (the caller may simply try again; the pool
 * reconnects by itself), or undefined for any other error. Looks through `cause` (the query layer wraps driver errors).
 */
export function databaseUnavailable(err: unknown): DocupodError | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if ((typeof code === 'string' && DB_UNAVAILABLE_CODES.test(code)) || (typeof message === 'string' && DB_UNAVAILABLE_MESSAGES.test(message)))
      return new DocupodError(Problems.unavailable, 'the database is not reachable right now (restarting or failing over); try again shortly', { retryAfter: 2 }, { cause: err });
  }
  return undefined;
}
