// The HTTP part shared by the streaming LLM adapters: open a streaming POST with retries (connection errors, timeouts,
// 408/429/5xx, Retry-After honoured) until the upstream starts answering, then read its body line by line with an
// idle timeout. Retries stop once the body has started: tokens already handed to the caller cannot be taken back, so
// a stream that breaks midway fails with a clear error instead of being replayed.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { DocupodError, Problems, type ProblemExtras } from '../../core/errors.js';
import { backoff, definedOnly, parseRetryAfter, redactUrl, refusedError, retriesExhausted, sleep } from '../embed/http-client.js';

// node:http rather than fetch: a token through undici's fetch (WHATWG streams, an abort signal per request, a
// transferable body) cost ~43 µs of CPU against ~25 µs with node:http in a side-by-side test (400 streams at
// 20 tokens/s), and one process holds thousands of these streams. Kept-alive agents reuse upstream connections.
const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

/** POSTs `payload` and resolves with the response once its headers arrive; `signal` destroys the request. */
function post(url: string, headers: Record<string, string>, payload: string, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return reject(new Error(`unsupported URL scheme ${u.protocol}`));
    const req = (u.protocol === 'https:' ? https : http).request(
      u,
      { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(payload)) }, agent: agents[u.protocol] },
      (res) => {
        // Destroying a request whose body is no longer read (stopped early, idle timeout) errors the response too;
        // a reader sees that through its iterator, this keeps it from becoming an uncaught 'error' event.
        res.on('error', () => {});
        resolve(res);
      },
    );
    // Destroyed without an error object: callers tell why from their own signal (caller gone, timeout, idle), and
    // an error passed here would also surface as an uncaught exception from the abort listener.
    const onAbort = () => req.destroy();
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    req.once('close', () => {
      signal.removeEventListener('abort', onAbort);
      reject(new Error('the request closed before a response')); // a no-op once the response arrived
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function textOf(res: IncomingMessage): Promise<string> {
  res.setEncoding('utf8');
  let text = '';
  for await (const chunk of res as AsyncIterable<string>) text += chunk;
  return text;
}

/** The response headers as a fetch Headers object, for parseRetryAfter. */
function headersOf(res: IncomingMessage): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
  return h;
}

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
  /** Non-empty lines of the body (without the newline), ending when the body ends. Throws on idle timeout or a broken body. */
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
    let res: IncomingMessage;
    try {
      res = await post(args.url, { 'content-type': 'application/json', ...args.headers }, payload, controller.signal);
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
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) {
      const release = () => args.signal?.removeEventListener('abort', onAbort);
      const body = res;
      return { lines: () => readLines(body, controller, o.idleTimeoutMs, args.label, where, args.signal, release) };
    }
    const text = await textOf(res).catch(() => '');
    args.signal?.removeEventListener('abort', onAbort);
    const message = errorMessage(text);
    if (status === 429 || status === 408 || status >= 500) {
      const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(headersOf(res)) : undefined;
      const extra: ProblemExtras = { retryable: true, upstreamStatus: status };
      if (retryAfterMs !== undefined) {
        extra.retryAfter = Math.ceil(retryAfterMs / 1000);
        extra.retryAfterMs = retryAfterMs;
      }
      last = new DocupodError(Problems.llmUnavailable, `${args.label} at ${where} ${status === 429 ? 'is rate limiting us' : `answered ${status}`}: ${message}`, extra);
      if (retryAfterMs !== undefined && retryAfterMs > o.maxRetryAfterMs) break;
      continue;
    }
    throw args.describeError?.(status, message) ?? refusedError(args.label, where, status, message);
  }
  throw retriesExhausted(last!, attempts);
}

async function* readLines(
  body: IncomingMessage,
  controller: AbortController,
  idleMs: number,
  label: string,
  where: string,
  signal: AbortSignal | undefined,
  release: () => void,
): AsyncGenerator<string> {
  body.setEncoding('utf8'); // multi-byte characters split across chunks are joined by the decoder
  const reader = (body as AsyncIterable<string>)[Symbol.asyncIterator]();
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
      let chunk: IteratorResult<string>;
      idle.refresh(); // the silence counted is the wait for this read, as before
      try {
        chunk = await reader.next();
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (idleFired) throw new DocupodError(Problems.upstreamTimeout, `${label} at ${where} went silent for ${idleMs} ms mid-answer`, { retryable: true });
        throw new DocupodError(Problems.llmUnavailable, `${label} at ${where} broke off mid-answer: ${connectionReason(err)}`, { retryable: true }, { cause: err });
      }
      if (chunk.done) break;
      buf += chunk.value;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.charCodeAt(nl - 1) === 13 ? buf.slice(0, nl - 1) : buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        // Blank lines (SSE event separators, NDJSON padding) mean nothing to any reader: skipping them here saves
        // a generator round trip per token.
        if (line) yield line;
      }
    }
    if (buf) yield buf;
  } finally {
    clearTimeout(idle);
    release();
    // Whoever stops reading early (error, cancel, or done before the body ended) ends the upstream request and its
    // connection too; a body read to its end has already left the connection to the agent for the next request.
    if (!body.readableEnded && !controller.signal.aborted) controller.abort(new Error('stream closed'));
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
