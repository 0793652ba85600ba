import type { AnswerResult } from '../roles/chat/contract.js';
import type { DocumentInfo, SubmitResult } from '../roles/ingest/contract.js';
import type { SearchRequest, SearchResponse } from '../roles/retrieval/contract.js';
import { isUuid } from '../roles/gateway/workspaces/repository.js';
import { slugify } from '../roles/gateway/workspaces/service.js';
import type { Backend, BackendKind, UploadFile, WorkspaceRef } from './ingest.js';

// Every CLI command talks to docupod through its public HTTP API: a server given with --url and an API key, the
// server that owns the local data directory (its local operator token), or the one the command started in-process
// (local-server.ts). Same routes, same intake, same authorisation as any other client.

/** An HTTP error answer, with the server's problem+json detail when there is one. */
export class RemoteError extends Error {
  override name = 'RemoteError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface RemoteOptions {
  /** remote: --url; local: the server owning the data directory; embedded: started by this command. */
  kind?: BackendKind;
  /** How messages name the instance ("./data", "the database"); default the URL. */
  where?: string;
  dataDir?: string;
  /** Settings to report (eval) when this process knows them; for a local server they come from /api/config. */
  settings?: Record<string, unknown>;
  /** Appended to a 401's message. */
  authHint?: string;
  close?: () => Promise<void>;
}

export class RemoteBackend implements Backend {
  readonly kind: BackendKind;
  private readonly base: string;

  constructor(
    url: string,
    private readonly token: string,
    private readonly opts: RemoteOptions = {},
  ) {
    this.base = url.replace(/\/+$/, '');
    this.kind = opts.kind ?? 'remote';
  }

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    let payload: FormData | string | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, headers, body: payload });
    } catch (err) {
      throw new Error(`cannot reach ${this.base}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`, { cause: err });
    }
    if (!res.ok) {
      const text = await res.text();
      let detail = text.slice(0, 300);
      try {
        const p = JSON.parse(text) as { detail?: string; title?: string };
        detail = p.detail ?? p.title ?? detail;
      } catch {
        /* not JSON: keep the text */
      }
      const hint = res.status === 401 ? (this.opts.authHint ?? ' (check --api-key / DOCUPOD_API_KEY)') : '';
      throw new RemoteError(res.status, `${method} ${path}: ${res.status} ${detail}${hint}`);
    }
    return res;
  }

  /** One JSON call to the API; public for the admin commands (user and apikey create). */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const text = await (await this.request(method, path, body)).text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** The server's base URL and the bearer token this backend sends: for a client of another protocol (docupod mcp). */
  get endpoint(): { url: string; token: string } {
    return { url: this.base, token: this.token };
  }

  private get where(): string {
    return this.opts.where ?? this.base;
  }

  async workspace(name: string, create: boolean): Promise<WorkspaceRef> {
    const ref = isUuid(name) ? name : slugify(name);
    try {
      const w = await this.call<{ id: string; slug: string }>('GET', `/api/workspaces/${encodeURIComponent(ref)}`);
      return { id: w.id, slug: w.slug, created: false };
    } catch (err) {
      if (!(err instanceof RemoteError && err.status === 404)) throw err;
    }
    if (!create || isUuid(name)) throw new Error(`no workspace "${name}" in ${this.where}; ingest something into it first (docupod ingest <files> --workspace ${name})`);
    const w = await this.call<{ id: string; slug: string }>('POST', '/api/workspaces', { name: name.trim(), slug: ref });
    return { id: w.id, slug: w.slug, created: true };
  }

  async submit(ws: WorkspaceRef, files: UploadFile[]): Promise<SubmitResult[]> {
    const form = new FormData();
    // The part's file name is the document's source, relative directories included (`guide/intro.md`).
    for (const f of files) form.append('file', new Blob([f.bytes]), f.source);
    const r = await this.call<{ documents: SubmitResult[] }>('POST', `/api/workspaces/${ws.slug}/documents`, form);
    return r.documents;
  }

  get(ws: WorkspaceRef, documentId: string): Promise<DocumentInfo> {
    return this.call<DocumentInfo>('GET', `/api/workspaces/${ws.slug}/documents/${documentId}`);
  }

  async list(ws: WorkspaceRef): Promise<DocumentInfo[]> {
    const out: DocumentInfo[] = [];
    for (let offset = 0; ; offset += 1000) {
      const r = await this.call<{ documents: DocumentInfo[]; total: number }>('GET', `/api/workspaces/${ws.slug}/documents?limit=1000&offset=${offset}`);
      out.push(...r.documents);
      if (r.documents.length < 1000) return out;
    }
  }

  async delete(ws: WorkspaceRef, documentId: string): Promise<void> {
    await this.call('DELETE', `/api/workspaces/${ws.slug}/documents/${documentId}`);
  }

  /** Through the OpenAI-compatible endpoint: model `docupod:{workspace}` answers from that workspace. */
  async answer(ws: WorkspaceRef, question: string): Promise<string> {
    const r = await this.call<{ choices: Array<{ message: { content: string | null } }> }>('POST', '/v1/chat/completions', {
      model: `docupod:${ws.slug}`,
      messages: [{ role: 'user', content: question }],
    });
    return r.choices[0]?.message.content ?? '';
  }

  /** A workspace chat (saved like one asked in the web UI), streamed: tokens as they come, then the final result. */
  async ask(ws: WorkspaceRef, question: string, onToken: (text: string) => void): Promise<AnswerResult> {
    const chat = await this.call<{ id: string }>('POST', `/api/workspaces/${ws.slug}/chats`, { title: question.slice(0, 80) });
    const res = await this.request('POST', `/api/workspaces/${ws.slug}/chats/${chat.id}/messages`, { content: question, stream: true });
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const event = /^event: (\w+)/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!event || !data) continue;
        const parsed = JSON.parse(data) as { text?: string; detail?: string } & AnswerResult;
        if (event === 'token') onToken(parsed.text ?? '');
        else if (event === 'error') throw new Error(parsed.detail ?? 'the answer failed');
        else if (event === 'final') return parsed;
      }
    }
    throw new Error('the server ended the answer without a result');
  }

  search(ws: WorkspaceRef, req: Partial<SearchRequest> & { query: string }): Promise<SearchResponse> {
    return this.call<SearchResponse>('POST', `/api/workspaces/${ws.slug}/search`, req);
  }

  async describe(): Promise<Record<string, unknown>> {
    if (this.kind === 'remote') return { url: this.base };
    let settings = this.opts.settings;
    if (!settings) {
      // The server that owns the data directory chunks the documents: its settings, not this process's.
      const c = await this.call<{ ingest?: { chunkTokens?: number; chunkOverlap?: number }; search?: { language?: string } }>('GET', '/api/config');
      settings = { chunkTokens: c.ingest?.chunkTokens, chunkOverlap: c.ingest?.chunkOverlap, language: c.search?.language };
    }
    return { ...settings, ...(this.opts.dataDir ? { dataDir: this.opts.dataDir } : {}), ...(this.kind === 'local' ? { server: this.base } : {}) };
  }

  async close(): Promise<void> {
    await this.opts.close?.();
  }
}
