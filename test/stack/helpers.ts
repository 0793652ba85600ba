import { chmodSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Shared by the stack tests (stack.test.ts, faults.test.ts): scratch directories the cluster's postgres user can
// reach, log tails for failure messages, and a small HTTP client that times every call.

export const ROOT = path.resolve(import.meta.dirname, '../..');

export function scratchDir(): string {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'docupod-stack-test-'));
  chmodSync(parent, 0o755); // run as root, the cluster belongs to the postgres user, who must reach it
  return path.join(parent, 'stack');
}

export function tailLogs(dir: string, names = ['gateway', 'chat-1', 'chat-2', 'ingest-1', 'ingest-2', 'retrieval', 'models', 'nginx-error'], lines = 15): string {
  const out: string[] = [];
  for (const name of names) {
    const f = path.join(dir, 'logs', `${name}.log`);
    if (existsSync(f)) out.push(`--- ${name}\n${readFileSync(f, 'utf8').split('\n').slice(-lines).join('\n')}`);
  }
  return out.join('\n');
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers, checked field by field
  body: any;
  /** Wall time from sending to the whole body read. */
  ms: number;
}

/** One HTTP call with a JSON or multipart body; a timeout turns a hang into a failure that says so. */
export async function api(base: string, method: string, route: string, opts: { token?: string; json?: unknown; form?: FormData; timeoutMs?: number } = {}): Promise<ApiResponse> {
  const t0 = performance.now();
  const res = await fetch(base + route, {
    method,
    headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.json !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: opts.form ?? (opts.json !== undefined ? JSON.stringify(opts.json) : undefined),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text || 'null');
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body, ms: Math.round(performance.now() - t0) };
}

export interface SseEvent {
  event: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON payloads, checked field by field
  data: any;
  /** performance.now() when the event arrived. */
  at: number;
}

export interface OpenStream {
  status: number;
  headers: Headers;
  /** The whole body when the answer was not a stream (an error). */
  text?: string;
  events: SseEvent[];
  /** Resolves when the stream ends (cleanly or not): the error, if reading failed. */
  ended: Promise<Error | undefined>;
  /** Resolves at the first event (or at the end). */
  first: Promise<void>;
  /** From sending the request to its status line. */
  headersMs: number;
}

/** Posts a streamed chat message and reads its Server-Sent Events as they come, with arrival times. */
export async function openChatStream(base: string, token: string, ws: string, chatId: string, content: string): Promise<OpenStream> {
  const t0 = performance.now();
  const res = await fetch(`${base}/api/workspaces/${ws}/chats/${chatId}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ content, stream: true }),
    signal: AbortSignal.timeout(60_000),
  });
  const headersMs = Math.round(performance.now() - t0);
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, events: [], ended: Promise.resolve(undefined), first: Promise.resolve(), headersMs };
  }
  const events: SseEvent[] = [];
  let gotFirst: () => void = () => {};
  const first = new Promise<void>((r) => (gotFirst = r));
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length === 0) continue; // a keep-alive comment
          events.push({ event, data: JSON.parse(data.join('\n')), at: performance.now() });
          gotFirst();
        }
      }
      return undefined;
    } catch (err) {
      return err as Error;
    } finally {
      gotFirst();
    }
  })();
  return { status: res.status, headers: res.headers, events, ended, first, headersMs };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined) or the time runs out; returns it with the time it took. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, { timeoutMs = 30_000, everyMs = 100 } = {}): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return { value: v, ms: Math.round(performance.now() - t0) };
    } catch (err) {
      last = err;
    }
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}
