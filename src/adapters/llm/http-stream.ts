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
  /**
   * Non-empty lines of the body (without the newline), a batch per network read, ending when the body ends. Throws
   * on idle timeout or a broken body. Stopping early (break, return) ends the upstream request.
   */
  batches(): AsyncIterableIterator<string[]>;
  /** The same lines one by one. */
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
      const reader = new LineReader(res, controller, o.idleTimeoutMs, args.label, where, args.signal, release);
      return {
        batches: () => reader,
        async *lines() {
          for await (const batch of reader) yield* batch;
        },
      };
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

/**
 * The body's lines, read in flowing mode and handed over a batch per network read. Written by hand rather than as an
 * async generator over the body's async iterator: at thousands of concurrent streams each token is one network read,
 * and the Readable async iterator (a 'readable' listener, read() and a promise per read) plus a generator round trip
 * per line cost more CPU than the rest of the token's path in docupod (see bench/chat.bench.js). Here a read costs a
 * 'data' event and, when the reader waits, one promise.
 */
class LineReader implements AsyncIterableIterator<string[]> {
  private buf = '';
  private readonly ready: string[][] = [];
  private waiter: { resolve: (r: IteratorResult<string[]>) => void; reject: (err: unknown) => void } | undefined;
  private ended = false;
  private failure: unknown;
  private finished = false;
  private idleFired = false;
  private readonly idle: NodeJS.Timeout;
  // Batches kept while the caller is busy before the body is paused (TCP then slows the upstream down).
  private static readonly maxReady = 64;

  constructor(
    private readonly body: IncomingMessage,
    private readonly controller: AbortController,
    private readonly idleMs: number,
    private readonly label: string,
    private readonly where: string,
    private readonly signal: AbortSignal | undefined,
    private readonly release: () => void,
  ) {
    body.setEncoding('utf8'); // multi-byte characters split across chunks are joined by the decoder
    // One idle timer per stream, pushed back whenever the caller starts waiting (refresh()): a timer and a
    // Promise.race per chunk cost more than the rest of the token's path at a few thousand concurrent streams. When
    // it fires it aborts the request, which fails the body and so the pending read.
    this.idle = setTimeout(() => {
      this.idleFired = true;
      controller.abort(new Error('idle timeout'));
    }, idleMs);
    body.on('data', (chunk: string) => this.onData(chunk));
    body.once('end', () => {
      this.ended = true;
      if (this.buf) this.push([this.buf]);
      this.buf = '';
      this.wake();
    });
    body.once('error', (err) => this.fail(err));
    // A body destroyed before its end (request aborted, connection reset) may close without an 'error'.
    body.once('close', () => {
      if (!this.ended) this.fail(new Error('the connection closed mid-body'));
    });
  }

  private onData(chunk: string): void {
    const buf = this.buf + chunk;
    let start = 0;
    let nl: number;
    let batch: string[] | undefined;
    while ((nl = buf.indexOf('\n', start)) >= 0) {
      const end = nl > start && buf.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      // Blank lines (SSE event separators, NDJSON padding) mean nothing to any reader.
      if (end > start) (batch ??= []).push(buf.slice(start, end));
      start = nl + 1;
    }
    this.buf = start === 0 ? buf : buf.slice(start);
    if (batch) this.push(batch);
  }

  private push(batch: string[]): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve({ value: batch, done: false });
      return;
    }
    this.ready.push(batch);
    if (this.ready.length >= LineReader.maxReady && !this.ended) this.body.pause();
  }

  private fail(err: unknown): void {
    if (this.ended || this.failure !== undefined) return;
    this.failure = err ?? new Error('the connection closed mid-body');
    this.wake();
  }

  /** Settles a waiting next() once the body ended or failed. */
  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    if (this.failure !== undefined && !this.ended) {
      this.finish();
      w.reject(this.error());
    } else {
      this.finish();
      w.resolve({ value: undefined, done: true });
    }
  }

  /** Why the body broke, as the caller should see it. */
  private error(): unknown {
    if (this.signal?.aborted) return this.signal.reason;
    if (this.idleFired) return new DocupodError(Problems.upstreamTimeout, `${this.label} at ${this.where} went silent for ${this.idleMs} ms mid-answer`, { retryable: true });
    return new DocupodError(Problems.llmUnavailable, `${this.label} at ${this.where} broke off mid-answer: ${connectionReason(this.failure)}`, { retryable: true }, { cause: this.failure });
  }

  next(): Promise<IteratorResult<string[]>> {
    const batch = this.ready.shift();
    if (batch) {
      if (this.ready.length === 0 && this.body.isPaused() && !this.finished) this.body.resume();
      return Promise.resolve({ value: batch, done: false });
    }
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    if (this.ended) {
      this.finish();
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.failure !== undefined) {
      this.finish();
      return Promise.reject(this.error());
    }
    this.idle.refresh(); // the silence counted is the wait for this read
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  return(): Promise<IteratorResult<string[]>> {
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.ready.length = 0;
    clearTimeout(this.idle);
    this.release();
    // Whoever stops reading early (error, cancel, or done before the body ended) ends the upstream request and its
    // connection too; a body read to its end has already left the connection to the agent for the next request.
    if (!this.body.readableEnded && !this.controller.signal.aborted) this.controller.abort(new Error('stream closed'));
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
