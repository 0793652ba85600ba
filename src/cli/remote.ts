import type { DocumentInfo, SubmitResult } from '../roles/ingest/contract.js';
import type { SearchRequest, SearchResponse } from '../roles/retrieval/contract.js';
import { isUuid } from '../roles/gateway/workspaces/repository.js';
import { slugify } from '../roles/gateway/workspaces/service.js';
import type { Backend, UploadFile, WorkspaceRef } from './ingest.js';

// The CLI's `--url` form: the same commands through the public HTTP API with an API key, so a script can drive a
// server exactly as the embedded form drives the local data directory.

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

export class RemoteBackend implements Backend {
  readonly kind = 'remote' as const;
  private readonly base: string;

  constructor(
    url: string,
    private readonly apiKey: string,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}` };
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
    const text = await res.text();
    if (!res.ok) {
      let detail = text.slice(0, 300);
      try {
        const p = JSON.parse(text) as { detail?: string; title?: string };
        detail = p.detail ?? p.title ?? detail;
      } catch {
        /* not JSON: keep the text */
      }
      const hint = res.status === 401 ? ' (check --api-key / DOCUPOD_API_KEY)' : '';
      throw new RemoteError(res.status, `${method} ${path}: ${res.status} ${detail}${hint}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async workspace(name: string, create: boolean): Promise<WorkspaceRef> {
    const ref = isUuid(name) ? name : slugify(name);
    try {
      const w = await this.call<{ id: string; slug: string }>('GET', `/api/workspaces/${encodeURIComponent(ref)}`);
      return { id: w.id, slug: w.slug, created: false };
    } catch (err) {
      if (!(err instanceof RemoteError && err.status === 404)) throw err;
    }
    if (!create) throw new Error(`no workspace "${name}" on ${this.base}; ingest something into it first`);
    const w = await this.call<{ id: string; slug: string }>('POST', '/api/workspaces', { name, slug: ref });
    return { id: w.id, slug: w.slug, created: true };
  }

  async submit(ws: WorkspaceRef, files: UploadFile[]): Promise<SubmitResult[]> {
    const form = new FormData();
    // The server keeps the part's file name as the document's source (directories are dropped by the multipart
    // parser, so the embedded form's relative paths become base names here).
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

  search(ws: WorkspaceRef, req: Partial<SearchRequest> & { query: string }): Promise<SearchResponse> {
    return this.call<SearchResponse>('POST', `/api/workspaces/${ws.slug}/search`, req);
  }

  describe(): Record<string, unknown> {
    return { url: this.base };
  }

  async close(): Promise<void> {}
}
