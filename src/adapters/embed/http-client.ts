// The HTTP part shared by the OpenAI-compatible and Ollama embedders: one JSON POST with a per-request timeout,
// retries with exponential backoff and jitter on connection errors, timeouts, 408/429/5xx (Retry-After honoured), and
// errors that say which backend answered what. Retry rules follow the official openai client, so a backend that works
// with that client behaves the same here.
import { DocupodError, Problems, type ProblemExtras } from '../../core/errors.js';

/** The part of a pino logger the adapters use (structural, so adapters need not import observability/). */
export interface EmbedLog {
  warn(obj: object, msg: string): void;
}

export interface HttpRetryOptions {
  /** Where retries are reported (at warn, with the reason and the wait); silent when unset. */
  log?: EmbedLog;
  /** Per attempt, in milliseconds (default 60 000). A timed-out attempt is retried like a dropped connection. */
  timeoutMs?: number;
  /** Retries after the first attempt (default 4, so at most 5 requests per batch). */
  maxRetries?: number;
  /** First backoff step in milliseconds (default 500); doubles per retry, with jitter. */
  retryBaseMs?: number;
  /** Upper bound of one backoff step in milliseconds (default 20 000). */
  retryMaxMs?: number;
  /**
   * The longest Retry-After we wait for, in milliseconds (default 60 000). Longer waits fail at once with
   * `retryAfter` in the error, so a job queue can reschedule instead of holding a worker.
   */
  maxRetryAfterMs?: number;
}

export interface PostJsonArgs extends HttpRetryOptions {
  /** Names the backend in messages, e.g. "openai embeddings". */
  label: string;
  url: string;
  body: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /**
   * Turns a non-retryable error response (4xx other than 408/429) into an error; return undefined for the default.
   * `message` is the backend's own error text when the body carried one.
   */
  describeError?: (status: number, message: string, body: unknown) => DocupodError | undefined;
}

const defaults = { timeoutMs: 60_000, maxRetries: 4, retryBaseMs: 500, retryMaxMs: 20_000, maxRetryAfterMs: 60_000 };

/** POSTs JSON and returns the parsed JSON answer of the first successful attempt. */
export async function postJson(args: PostJsonArgs): Promise<unknown> {
  const o = { ...defaults, ...definedOnly(args) };
  const where = redactUrl(args.url);
  const payload = JSON.stringify(args.body);
  let last: DocupodError | undefined;
  let attempts = 0;

  for (let attempt = 0; attempt <= o.maxRetries; attempt++) {
    if (attempt > 0) {
      const delayMs = (last?.extra.retryAfterMs as number | undefined) ?? backoff(attempt, o.retryBaseMs, o.retryMaxMs);
      args.log?.warn(
        { backend: args.label, url: where, attempt, upstreamStatus: last?.extra.upstreamStatus, delayMs: Math.round(delayMs), reason: last?.message },
        'embedding request failed, retrying',
      );
      await sleep(delayMs, args.signal);
    }
    args.signal?.throwIfAborted();
    attempts++;

    const timeout = AbortSignal.timeout(o.timeoutMs);
    const signal = args.signal ? AbortSignal.any([args.signal, timeout]) : timeout;
    let status: number;
    let text: string;
    let headers: Headers;
    try {
      const res = await fetch(args.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...args.headers },
        body: payload,
        signal,
      });
      status = res.status;
      headers = res.headers;
      // Reading the body is part of the attempt: a connection dropped mid-body is retried like any other.
      text = await res.text();
    } catch (err) {
      if (args.signal?.aborted) throw args.signal.reason;
      if (timeout.aborted) {
        last = new DocupodError(
          Problems.upstreamTimeout,
          `${args.label} at ${where} did not answer within ${seconds(o.timeoutMs)}`,
          { retryable: true },
          { cause: err },
        );
      } else {
        last = new DocupodError(
          Problems.llmUnavailable,
          `${args.label} at ${where} could not be reached: ${connectionReason(err)}`,
          { retryable: true },
          { cause: err },
        );
      }
      continue;
    }

    if (status >= 200 && status < 300) {
      try {
        return JSON.parse(text) as unknown;
      } catch (err) {
        throw new DocupodError(
          Problems.llmUnavailable,
          `${args.label} at ${where} answered ${status} with a body that is not JSON: ${snippet(text)}`,
          { retryable: false, upstreamStatus: status },
          { cause: err },
        );
      }
    }

    const body = tryJson(text);
    const message = errorMessage(body) ?? snippet(text);
    if (status === 429 || status === 408 || status >= 500) {
      const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(headers) : undefined;
      const extra: ProblemExtras = { retryable: true, upstreamStatus: status };
      if (retryAfterMs !== undefined) {
        extra.retryAfter = Math.ceil(retryAfterMs / 1000);
        extra.retryAfterMs = retryAfterMs;
      }
      const what = status === 429 ? 'is rate limiting us' : `answered ${status}`;
      last = new DocupodError(Problems.llmUnavailable, `${args.label} at ${where} ${what}: ${message}`, extra);
      // A wait longer than we are willing to hold a worker for: give up now and let the caller reschedule.
      if (retryAfterMs !== undefined && retryAfterMs > o.maxRetryAfterMs) break;
      continue;
    }

    throw args.describeError?.(status, message, body) ?? refusedError(args.label, where, status, message);
  }
  throw retriesExhausted(last!, attempts);
}

/** A non-retryable upstream answer (4xx other than 408/429): the caller's input when the upstream says so. */
export function refusedError(label: string, where: string, status: number, message: string): DocupodError {
  return new DocupodError(
    status === 400 || status === 413 || status === 422 ? Problems.badRequest : Problems.llmUnavailable,
    `${label} at ${where} refused the request (${status}): ${message}`,
    { retryable: false, upstreamStatus: status },
  );
}

/** Retries exhausted: the last error is the one worth reporting; internal hints do not leak into the problem body. */
export function retriesExhausted(last: DocupodError, attempts: number): DocupodError {
  delete last.extra.retryAfterMs;
  if (attempts > 1) last.message += ` (gave up after ${attempts} attempts)`;
  return last;
}

/** Exponential backoff with "equal jitter": half the step is fixed, half random, so retries from many workers spread. */
export function backoff(attempt: number, baseMs: number, maxMs: number): number {
  const step = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return step / 2 + Math.random() * (step / 2);
}

/** Retry-After as seconds or an HTTP date, and OpenAI's `retry-after-ms`; undefined when absent or unreadable. */
export function parseRetryAfter(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())) return Number(ms);
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Splits inputs into consecutive batches of at most `size`. */
export function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Checks the vectors a backend returned: the right count, numbers only, one length throughout. */
export function checkVectors(label: string, vectors: unknown, expected: number, dimensions?: number): number[][] {
  if (!Array.isArray(vectors) || vectors.length !== expected)
    throw malformed(label, `expected ${expected} embeddings, got ${Array.isArray(vectors) ? vectors.length : typeof vectors}`);
  for (const v of vectors) {
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
      throw malformed(label, 'an embedding is not a non-empty array of finite numbers');
    const dims = dimensions ?? (vectors[0] as number[]).length;
    if (v.length !== dims)
      throw malformed(label, `embeddings of different lengths (${v.length} and ${dims}); check the model and the dimensions setting`);
  }
  return vectors as number[][];
}

export function malformed(label: string, detail: string): DocupodError {
  return new DocupodError(Problems.llmUnavailable, `${label} sent an unexpected answer: ${detail}`, { retryable: false });
}

/** The URL without user info or query string (which may carry keys), for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** Joins a base URL and a path without doubling or dropping slashes. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts (shared with the LLM stream client). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function connectionReason(err: unknown): string {
  // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED, "other side closed") in the cause.
  let e: unknown = err;
  const parts: string[] = [];
  for (let depth = 0; e instanceof Error && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    parts.push(typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message);
    e = e.cause;
  }
  return parts.filter((p) => p && p !== 'fetch failed').join(': ') || 'connection failed';
}

function errorMessage(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const error = (body as { error?: unknown }).error;
  // OpenAI: {error: {message, type, code}}; Ollama and llama.cpp server: {error: "..."}; some proxies: {message}.
  if (typeof error === 'string') return error;
  if (error && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string')
    return (error as { message: string }).message;
  const message = (body as { message?: unknown }).message;
  return typeof message === 'string' ? message : undefined;
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function snippet(text: string): string {
  const t = text.trim().replace(/\s+/g, ' ');
  if (!t) return '(empty body)';
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
