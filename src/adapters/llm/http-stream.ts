// The HTTP part shared by the streaming LLM adapters: open a streaming POST with retries (connection errors, timeouts,
// 408/429/5xx, Retry-After honoured) until the upstream starts answering, then read its body line by line with an
// idle timeout. Retries stop once the body has started: tokens already handed to the caller cannot be taken back, so
// a stream that breaks midway fails with a clear error instead of being replayed.
import { DocupodError, Problems, type ProblemExtras } from '../../core/errors.js';
import { backoff, definedOnly, parseRetryAfter, redactUrl, sleep } from '../embed/http-client.js';

export interface LlmLog {
  warn(obj: object, msg: string): void;
}

export interface StreamHttpOptions {
  /** Until the response headers arrive, per attempt (default 60 000 ms). */
  timeoutMs?: number;
  /** Longest silence between two chunks of the body (default 60 000 ms). */
  idleTimeoutMs?: number;
  /** Retries after the first attempt (default 2). */
  maxRetries?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** The longest Retry-After we wait for (default 10 000 ms); longer fails at once with retryAfter. */
  maxRetryAfterMs?: number;
  log?: LlmLog;
}

export interface OpenStreamArgs extends StreamHttpOptions {
  label: string;
  url: string;
  body: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Turns a non-retryable error answer into an error; undefined for the default. */
  describeError?: (status: number, message: string) => DocupodError | undefined;
}

const defaults = { timeoutMs: 60_000, idleTimeoutMs: 60_000, maxRetries: 2, retryBaseMs: 250, retryMaxMs: 5_000, maxRetryAfterMs: 10_000 };

export interface OpenStream {
  /** Lines of the body (without the newline), ending when the body ends. Throws on idle timeout or a broken body. */
  lines(): AsyncGenerator<string>;
}

export async function openStream(args: OpenStreamArgs): Promise<OpenStream> {
  const o = { ...defaults, ...definedOnly(args) };
  const where = redactUrl(args.url);
  const payload = JSON.stringify(args.body);
  let last: DocupodError | undefined;
  let attempts = 0;
  for (let attempt = 0; attempt <= o.maxRetries; attempt++) {
    if (attempt > 0) {
      const delayMs = (last?.extra.retryAfterMs as number | undefined) ?? backoff(attempt, o.retryBaseMs, o.retryMaxMs);
      args.log?.warn({ backend: args.label, url: where, attempt, delayMs: Math.round(delayMs), reason: last?.message }, 'LLM request failed, retrying');
      await sleep(delayMs, args.signal);
    }
    args.signal?.throwIfAborted();
    attempts++;
    const connect = new AbortController();
    const timer = setTimeout(() => connect.abort(new Error('timeout')), o.timeoutMs);
    // One controller for the whole request: the caller's signal and our idle timer both end it.
    const controller = new AbortController();
    const onAbort = () => controller.abort(args.signal!.reason);
    args.signal?.addEventListener('abort', onAbort, { once: true });
    connect.signal.addEventListener('abort', () => controller.abort(connect.signal.reason), { once: true });
    let res: Response;
    try {
      res = await fetch(args.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...args.headers },
        body: payload,
        signal: controller.signal,
      });
    } catch (err) {
      clearTimeout(timer);
      args.signal?.removeEventListener('abort', onAbort);
      if (args.signal?.aborted) throw args.signal.reason;
      last = connect.signal.aborted
        ? new DocupodError(Problems.upstreamTimeout, `${args.label} at ${where} did not answer within ${o.timeoutMs} ms`, { retryable: true }, { cause: err })
        : new DocupodError(Problems.llmUnavailable, `${args.label} at ${where} could not be reached: ${connectionReason(err)}`, { retryable: true }, { cause: err });
      continue;
    }
    clearTimeout(timer);
    if (res.ok && res.body) {
      const release = () => args.signal?.removeEventListener('abort', onAbort);
      return { lines: () => readLines(res.body!, controller, o.idleTimeoutMs, args.label, where, args.signal, release) };
    }
    const text = await res.text().catch(() => '');
    args.signal?.removeEventListener('abort', onAbort);
    const message = errorMessage(text);
    if (res.status === 429 || res.status === 408 || res.status >= 500) {
      const retryAfterMs = res.status === 429 || res.status === 503 ? parseRetryAfter(res.headers) : undefined;
      const extra: ProblemExtras = { retryable: true, upstreamStatus: res.status };
      if (retryAfterMs !== undefined) {
        extra.retryAfter = Math.ceil(retryAfterMs / 1000);
        extra.retryAfterMs = retryAfterMs;
      }
      last = new DocupodError(Problems.llmUnavailable, `${args.label} at ${where} ${res.status === 429 ? 'is rate limiting us' : `answered ${res.status}`}: ${message}`, extra);
      if (retryAfterMs !== undefined && retryAfterMs > o.maxRetryAfterMs) break;
      continue;
    }
    throw (
      args.describeError?.(res.status, message) ??
      new DocupodError(
        res.status === 400 || res.status === 413 || res.status === 422 ? Problems.badRequest : Problems.llmUnavailable,
        `${args.label} at ${where} refused the request (${res.status}): ${message}`,
        { retryable: false, upstreamStatus: res.status },
      )
    );
  }
  const err = last!;
  delete err.extra.retryAfterMs;
  if (attempts > 1) err.message += ` (gave up after ${attempts} attempts)`;
  throw err;
}

async function* readLines(
  body: ReadableStream<Uint8Array>,
  controller: AbortController,
  idleMs: number,
  label: string,
  where: string,
  signal: AbortSignal | undefined,
  release: () => void,
): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  // One idle timer per stream, pushed back on every chunk with refresh(): a timer and a Promise.race per chunk cost
  // more than the rest of the token's path at a few thousand concurrent streams. When it fires it aborts the
  // request, which rejects the pending read.
  let idleFired = false;
  const idle = setTimeout(() => {
    idleFired = true;
    controller.abort(new Error('idle timeout'));
  }, idleMs);
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      idle.refresh(); // the silence counted is the wait for this read, as before
      try {
        chunk = await reader.read();
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (idleFired) throw new DocupodError(Problems.upstreamTimeout, `${label} at ${where} went silent for ${idleMs} ms mid-answer`, { retryable: true });
        throw new DocupodError(Problems.llmUnavailable, `${label} at ${where} broke off mid-answer: ${connectionReason(err)}`, { retryable: true }, { cause: err });
      }
      if (chunk.done) break;
      buf += decoder.decode(chunk.value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.charCodeAt(nl - 1) === 13 ? buf.slice(0, nl - 1) : buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        yield line;
      }
    }
    buf += decoder.decode();
    if (buf) yield buf;
  } finally {
    clearTimeout(idle);
    release();
    // Whoever stops reading early (done, error, cancel) ends the upstream request too.
    if (!controller.signal.aborted) controller.abort(new Error('stream closed'));
    reader.releaseLock();
  }
}

export function connectionReason(err: unknown): string {
  let e: unknown = err;
  const parts: string[] = [];
  for (let depth = 0; e instanceof Error && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    parts.push(typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message);
    e = e.cause;
  }
  return parts.filter((p) => p && p !== 'fetch failed' && p !== 'terminated').join(': ') || 'connection closed';
}

export function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error === 'string') return body.error;
    if (body.error && typeof body.error === 'object' && typeof (body.error as { message?: unknown }).message === 'string')
      return (body.error as { message: string }).message;
    if (typeof body.message === 'string') return body.message;
  } catch {
    /* not JSON */
  }
  const t = text.trim().replace(/\s+/g, ' ');
  return t ? (t.length > 300 ? `${t.slice(0, 300)}…` : t) : '(empty body)';
}
