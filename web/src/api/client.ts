// The one place the UI talks to the server: JSON calls with the access token, a single-flight token refresh on 401,
// problem+json errors turned into readable messages, Server-Sent Events over fetch (EventSource cannot send an
// Authorization header) and uploads over XHR (fetch cannot report upload progress).
import type { paths } from './schema.gen';

type Json<P extends keyof paths, M extends 'get' | 'post' | 'patch', S extends number> =
  paths[P][M] extends { responses: { [K in S]: { content: { 'application/json': infer T } } } } ? T : never;

export type Session = Json<'/api/auth/login', 'post', 200>;
export type User = Session['user'];
export type Me = Json<'/api/me', 'get', 200>;
export type Workspace = Json<'/api/workspaces/{ws}', 'get', 200>;
export type Member = Json<'/api/workspaces/{ws}/members/{userId}', 'patch', 200>;
export type Doc = Json<'/api/workspaces/{ws}/documents/{id}', 'get', 200>;
export type DocState = Doc['state'];
export type Accepted = Json<'/api/workspaces/{ws}/documents', 'post', 202>;
export type SearchResponse = Json<'/api/workspaces/{ws}/search', 'post', 200>;
export type SearchHit = SearchResponse['results'][number];
export type SearchMode = SearchResponse['mode'];
export type ApiKey = Json<'/api/keys', 'post', 201>;
export type Status = Json<'/api/status', 'get', 200>;

/** An RFC 9457 problem from the server, or a network failure described the same way. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly problem?: { type?: string; title?: string; detail?: string; instance?: string; errors?: { path?: string; message?: string }[] },
  ) {
    super(message);
  }
}

/** The text a person should read for any error: the problem's `detail`, never `[object Object]` or a stack. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof DOMException && err.name === 'AbortError') return 'cancelled';
  if (err instanceof TypeError) return 'Cannot reach the server. Check your connection and try again.';
  if (err instanceof Error && err.message) return err.message;
  return typeof err === 'string' ? err : 'Something went wrong.';
}

async function problemOf(res: Response): Promise<ApiError> {
  let body: unknown;
  const text = await res.text().catch(() => '');
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (body && typeof body === 'object') {
    const p = body as ApiError['problem'] & { message?: string; error?: unknown };
    let msg = (typeof p?.detail === 'string' && p.detail) || (typeof p?.title === 'string' && p.title) || (typeof p?.message === 'string' && p.message) || '';
    const fieldErrors = Array.isArray(p?.errors) ? p!.errors.filter((e) => e && typeof e.message === 'string') : [];
    if (fieldErrors.length > 0 && !msg.includes(fieldErrors[0]!.message!)) {
      msg = `${msg ? `${msg}: ` : ''}${fieldErrors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ')}`;
    }
    return new ApiError(msg || `The server answered ${res.status}.`, res.status, p);
  }
  return new ApiError(text && text.length < 300 && !text.startsWith('<') ? text : `The server answered ${res.status} ${res.statusText}.`, res.status);
}

// ---- session storage ----------------------------------------------------------------------------------------------

const KEY = 'docupod.session';
type Stored = { accessToken: string; refreshToken: string; user: User };
let session: Stored | null = (() => {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? 'null') as Stored | null;
  } catch {
    return null;
  }
})();
const listeners = new Set<(s: Stored | null) => void>();

export function currentSession(): Stored | null {
  return session;
}
export function setSession(s: Session | null): void {
  session = s ? { accessToken: s.accessToken, refreshToken: s.refreshToken, user: s.user } : null;
  if (session) localStorage.setItem(KEY, JSON.stringify(session));
  else localStorage.removeItem(KEY);
  for (const l of listeners) l(session);
}
export function onSession(l: (s: Stored | null) => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

let refreshing: Promise<boolean> | null = null;
/** One refresh at a time: a refresh token works once, so parallel 401s must share the same attempt. */
function refresh(): Promise<boolean> {
  const rt = session?.refreshToken;
  if (!rt) return Promise.resolve(false);
  refreshing ??= fetch('/api/auth/refresh', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refreshToken: rt }),
  })
    .then(async (res) => {
      if (!res.ok) {
        setSession(null);
        return false;
      }
      setSession((await res.json()) as Session);
      return true;
    })
    .catch(() => false)
    .finally(() => (refreshing = null));
  return refreshing;
}

function authHeaders(): Record<string, string> {
  return session ? { authorization: `Bearer ${session.accessToken}` } : {};
}

/** fetch with the access token; on 401 refreshes once and retries. Throws ApiError for any non-2xx answer. */
export async function send(path: string, init: RequestInit = {}): Promise<Response> {
  const go = () => fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string>) } });
  let res = await go();
  if (res.status === 401 && session && !path.startsWith('/api/auth/') && (await refresh())) res = await go();
  if (!res.ok) throw await problemOf(res);
  return res;
}

export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await send(path, {
    method,
    signal,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

export const ws = (w: string) => `/api/workspaces/${encodeURIComponent(w)}`;

// ---- Server-Sent Events over fetch ---------------------------------------------------------------------------------

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Parses an event stream; calls onEvent for each event. Resolves when the stream ends. */
export async function sse(path: string, init: RequestInit, onEvent: (e: SseEvent) => void): Promise<void> {
  const res = await send(path, { ...init, headers: { accept: 'text/event-stream', ...(init.headers as Record<string, string>) } });
  const type = res.headers.get('content-type') ?? '';
  if (!type.includes('text/event-stream')) {
    // A server may answer a non-streaming request with plain JSON: hand it over as one final event.
    onEvent({ event: 'json', data: await res.text() });
    return;
  }
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev: SseEvent = { event: 'message', data: '' };
  let hasData = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl: number;
    while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (hasData) onEvent(ev);
        ev = { event: 'message', data: '' };
        hasData = false;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? '' : line.slice(colon + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'event') ev.event = val;
      else if (field === 'data') {
        ev.data = hasData ? `${ev.data}\n${val}` : val;
        hasData = true;
      } else if (field === 'id') ev.id = val;
    }
  }
  if (hasData) onEvent(ev);
}

export function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

// ---- uploads -------------------------------------------------------------------------------------------------------

/** Multipart upload of one file with byte progress. Resolves with the 202 body. */
export function upload(workspace: string, file: File, onProgress: (fraction: number) => void, signal?: AbortSignal): Promise<Accepted> {
  const attempt = () =>
    new Promise<{ status: number; text: string; type: string }>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `${ws(workspace)}/documents`);
      const h = authHeaders();
      if (h.authorization) xhr.setRequestHeader('authorization', h.authorization);
      xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
      xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText, type: xhr.getResponseHeader('content-type') ?? '' });
      xhr.onerror = () => reject(new TypeError('network error'));
      xhr.onabort = () => reject(new DOMException('aborted', 'AbortError'));
      signal?.addEventListener('abort', () => xhr.abort());
      const form = new FormData();
      form.append('file', file, file.name);
      xhr.send(form);
    });
  return attempt().then(async (r) => {
    if (r.status === 401 && (await refresh())) r = await attempt();
    if (r.status < 200 || r.status >= 300) throw await problemOf(new Response(r.text, { status: r.status, headers: { 'content-type': r.type } }));
    return JSON.parse(r.text) as Accepted;
  });
}
