import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { pino } from 'pino';
import { loadConfig, type Config } from '../config/schema.js';
import { readEnv } from '../config/env.js';
import { M } from '../modules/graph.js';
import { startRuntime, type Runtime } from '../modules/runtime.js';
import { createMetricsRegistry } from '../observability/metrics.js';
import type { BlobStore } from '../adapters/blob/blob-store.js';
import type { Database } from '../storage/database.js';
import { workspaces } from '../storage/schema.js';
import type { DocumentInfo, IngestClient, SubmitResult } from '../roles/ingest/contract.js';
import { SearchMode, type RetrievalClient, type SearchRequest, type SearchResponse } from '../roles/retrieval/contract.js';
import { WorkspacesRepo, isUuid } from '../roles/gateway/workspaces/repository.js';
import { slugify } from '../roles/gateway/workspaces/service.js';
import { RemoteBackend } from './remote.js';
import type { ChatClient } from '../roles/chat/contract.js';

/** The CLI has no user; answers it asks for count their tokens under this id. */
export const CLI_USER = '00000000-0000-0000-0000-000000000000';

// `docupod ingest`, and what `search` and `eval` share with it: one Backend interface with two forms.
//
// Embedded (no --url): the command starts only the ingest and retrieval roles in-process on the local data
// directory (startRuntime with DOCUPOD_ROLE=ingest,retrieval) and calls their in-process clients and the blob store
// directly: the same code path the gateway takes after authentication, without a user, an API key, a port or HTTP.
// The embedded form always waits for its documents: PGlite serves one process, so no server can be working the queue
// meanwhile, and an exit would leave the jobs for the next `docupod serve`.
//
// Remote (--url + --api-key, or DOCUPOD_URL/DOCUPOD_API_KEY): the public API (RemoteBackend in remote.ts).

export interface WorkspaceRef {
  id: string;
  slug: string;
  created: boolean;
}

export interface UploadFile {
  /** The document's source name: its path relative to the directory given, or its base name. */
  source: string;
  bytes: Uint8Array;
}

export interface Backend {
  readonly kind: 'embedded' | 'remote';
  /** Resolves a workspace by slug, id or display name; creates it when asked and missing. */
  workspace(name: string, create: boolean): Promise<WorkspaceRef>;
  submit(ws: WorkspaceRef, files: UploadFile[]): Promise<SubmitResult[]>;
  get(ws: WorkspaceRef, documentId: string): Promise<DocumentInfo>;
  list(ws: WorkspaceRef): Promise<DocumentInfo[]>;
  delete(ws: WorkspaceRef, documentId: string): Promise<void>;
  search(ws: WorkspaceRef, req: Partial<SearchRequest> & { query: string }): Promise<SearchResponse>;
  /** One grounded answer from the chat role (the configured LLM; extractive by default). */
  answer(ws: WorkspaceRef, question: string): Promise<string>;
  /** Settings worth reporting next to results (chunk size, search language, where the data is). */
  describe(): Record<string, unknown>;
  close(): Promise<void>;
}

export class EmbeddedBackend implements Backend {
  readonly kind = 'embedded' as const;
  private constructor(
    private readonly runtime: Runtime,
    readonly config: Config,
  ) {}

  static async open(): Promise<EmbeddedBackend> {
    const env = readEnv();
    env.DOCUPOD_ROLE = 'ingest,retrieval,chat';
    const config = loadConfig(env);
    // Logs go to stderr and only at error level unless asked for: stdout carries the command's output (--json).
    const log = pino({ level: env.DOCUPOD_LOG_LEVEL ? config.log.level : 'error', base: { role: 'cli' } }, pino.destination(2));
    const runtime = await startRuntime(config, log, { metrics: createMetricsRegistry({ defaultMetrics: false }) });
    return new EmbeddedBackend(runtime, config);
  }

  private get db() {
    return this.runtime.get<Database>(M.db).db;
  }
  private get ingest() {
    return this.runtime.get<IngestClient>(M.ingest);
  }

  async workspace(name: string, create: boolean): Promise<WorkspaceRef> {
    const repo = new WorkspacesRepo(this.db);
    const found = isUuid(name) ? await repo.byRef(name) : await repo.bySlug(slugify(name));
    if (found) return { id: found.id, slug: found.slug, created: false };
    if (!create || isUuid(name)) throw new Error(`no workspace "${name}" in ${this.config.storage.databaseUrl ? 'the database' : this.config.storage.dataDir}; ingest something into it first`);
    // No owner: the local operator made it. An instance admin can add members later through the API.
    const [row] = await this.db
      .insert(workspaces)
      .values({ id: randomUUID(), slug: slugify(name), name: name.trim(), description: 'created by the docupod CLI', createdBy: null })
      .onConflictDoNothing()
      .returning();
    const w = row ?? (await repo.bySlug(slugify(name)))!;
    return { id: w.id, slug: w.slug, created: row !== undefined };
  }

  async submit(ws: WorkspaceRef, files: UploadFile[]): Promise<SubmitResult[]> {
    const blobs = this.runtime.get<BlobStore>(M.blobs);
    const out: SubmitResult[] = [];
    for (let i = 0; i < files.length; i += 500) {
      const stored = [];
      for (const f of files.slice(i, i + 500)) {
        const blobKey = `${ws.id}/${randomUUID()}`;
        await blobs.put(blobKey, f.bytes, ws.id);
        stored.push({ source: f.source, blobKey, sizeBytes: f.bytes.byteLength, contentHash: createHash('sha256').update(f.bytes).digest('hex') });
      }
      out.push(...(await this.ingest.submit({ workspaceId: ws.id, files: stored })).documents);
    }
    return out;
  }

  get(ws: WorkspaceRef, documentId: string): Promise<DocumentInfo> {
    return this.ingest.get({ workspaceId: ws.id, documentId });
  }

  async list(ws: WorkspaceRef): Promise<DocumentInfo[]> {
    const out: DocumentInfo[] = [];
    for (let offset = 0; ; offset += 1000) {
      const r = await this.ingest.list({ workspaceId: ws.id, limit: 1000, offset });
      out.push(...r.documents);
      if (r.documents.length < 1000) return out;
    }
  }

  async delete(ws: WorkspaceRef, documentId: string): Promise<void> {
    await this.ingest.delete({ workspaceId: ws.id, documentId });
  }

  search(ws: WorkspaceRef, req: Partial<SearchRequest> & { query: string }): Promise<SearchResponse> {
    return this.runtime.get<RetrievalClient>(M.retrieval).search({ k: 10, highlight: false, ...req, workspaceId: ws.id });
  }

  async answer(ws: WorkspaceRef, question: string): Promise<string> {
    const chat = this.runtime.get<ChatClient>(M.chat);
    const r = await chat.answer({ workspaceId: ws.id, userId: CLI_USER, messages: [{ role: 'user', content: question }] });
    return r.answer;
  }

  describe(): Record<string, unknown> {
    const { ingest, search, storage } = this.config;
    return { dataDir: storage.databaseUrl ? undefined : storage.dataDir, chunkTokens: ingest.chunkTokens, chunkOverlap: ingest.chunkOverlap, language: search.language };
  }

  close(): Promise<void> {
    return this.runtime.stop();
  }
}

export interface ConnectionOptions {
  url?: string;
  apiKey?: string;
  workspace?: string;
}

/** --url/--api-key (or DOCUPOD_URL/DOCUPOD_API_KEY) select the remote form; otherwise the local data directory. */
export async function openBackend(opts: ConnectionOptions): Promise<Backend> {
  const url = opts.url ?? process.env.DOCUPOD_URL;
  if (url) {
    const key = opts.apiKey ?? process.env.DOCUPOD_API_KEY;
    if (!key) throw new Error('--url needs an API key: pass --api-key or set DOCUPOD_API_KEY (create one with `docupod apikey create`)');
    return new RemoteBackend(url, key);
  }
  return EmbeddedBackend.open();
}

export async function withBackend<T>(opts: ConnectionOptions, fn: (b: Backend) => Promise<T>): Promise<T> {
  const backend = await openBackend(opts);
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}

export function parseK(value: string | undefined, fallback = 10): number {
  if (value === undefined) return fallback;
  const k = Number(value);
  if (!Number.isInteger(k) || k < 1 || k > 100) throw new Error(`--k must be a whole number from 1 to 100, got "${value}"`);
  return k;
}

export function parseMode(value: string | undefined): SearchMode | undefined {
  if (value === undefined) return undefined;
  const m = SearchMode.safeParse(value);
  if (!m.success) throw new Error(`--mode must be one of ${SearchMode.options.join(', ')}, got "${value}"`);
  return m.data;
}

// ---------------------------------------------------------------------------------------------------------------
// Finding files

/** Extensions a directory walk picks up (explicit file arguments are always taken: the parser detects by content). */
export const DOCUMENT_EXTENSIONS = new Set(['pdf', 'docx', 'html', 'htm', 'xhtml', 'md', 'markdown', 'mdx', 'txt', 'text', 'csv', 'tsv']);

export interface FoundFile {
  path: string;
  source: string;
}

const isGlob = (p: string) => /[*?[]/.test(p);
const hidden = (name: string) => name.startsWith('.');

function walk(dir: string, onFile: (abs: string) => void): void {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (hidden(e.name)) continue;
    const abs = path.join(dir, e.name);
    if (e.isDirectory()) walk(abs, onFile);
    else if (e.isFile()) onFile(abs);
  }
}

/** A glob as a regular expression over '/'-separated paths: `**` any depth, `*` and `?` within one segment. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Expands file, directory and glob arguments. Sources are relative to the directory given (or to the glob's fixed
 * part), so `docupod ingest docs/` names documents `guide/intro.md`, not an absolute path.
 */
export function findFiles(args: string[]): FoundFile[] {
  const out = new Map<string, FoundFile>();
  const add = (abs: string, source: string) => {
    if (!out.has(abs)) out.set(abs, { path: abs, source: source.split(path.sep).join('/') });
  };
  for (const arg of args) {
    if (isGlob(arg)) {
      const parts = arg.split(/[\\/]/);
      const fixed = parts.slice(0, parts.findIndex(isGlob)).join('/') || '.';
      const rest = parts.slice(parts.findIndex(isGlob)).join('/');
      const re = globToRegExp(rest);
      const root = path.resolve(fixed);
      let matched = 0;
      try {
        walk(root, (abs) => {
          const rel = path.relative(root, abs).split(path.sep).join('/');
          if (re.test(rel)) {
            add(abs, rel);
            matched++;
          }
        });
      } catch {
        /* the fixed part does not exist: reported below */
      }
      if (matched === 0) throw new Error(`${arg}: no file matches`);
      continue;
    }
    let st;
    try {
      st = statSync(arg);
    } catch {
      throw new Error(`${arg}: no such file or directory`);
    }
    if (st.isDirectory()) {
      const root = path.resolve(arg);
      const before = out.size;
      walk(root, (abs) => {
        if (DOCUMENT_EXTENSIONS.has(path.extname(abs).slice(1).toLowerCase())) add(abs, path.relative(root, abs));
      });
      if (out.size === before) throw new Error(`${arg}: no documents in this directory (looked for ${[...DOCUMENT_EXTENSIONS].join(', ')})`);
    } else add(path.resolve(arg), path.basename(arg));
  }
  return [...out.values()];
}

// ---------------------------------------------------------------------------------------------------------------
// Submitting and following documents

const TERMINAL = new Set(['indexed', 'failed', 'cancelled']);

export interface IngestOutcome {
  /** What the server answered to the upload (one per file; duplicates name the existing document). */
  results: SubmitResult[];
  /** Final state of each document (empty when not waiting). */
  documents: DocumentInfo[];
  submitted: number;
  duplicates: number;
  failed: DocumentInfo[];
  chunks: number;
  bytes: number;
  seconds: number;
}

export interface IngestRunOptions {
  /** Follow the documents until each is indexed or failed. */
  wait: boolean;
  /** Where progress goes: bars when it is a TTY, one plain line per finished document otherwise. */
  progress: NodeJS.WriteStream;
  /** Print nothing but errors. */
  quiet?: boolean;
}

const formatBytes = (n: number) => (n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 ** 2).toFixed(1)} MB`);

export async function ingestFiles(backend: Backend, ws: WorkspaceRef, files: FoundFile[], opts: IngestRunOptions): Promise<IngestOutcome> {
  const t0 = performance.now();
  const line = (s: string) => {
    if (!opts.quiet) opts.progress.write(`${s}\n`);
  };
  const uploads: UploadFile[] = files.map((f) => ({ source: f.source, bytes: readFileSync(f.path) }));
  const totalBytes = uploads.reduce((s, u) => s + u.bytes.byteLength, 0);
  // Remote uploads go in requests of at most ~32 MB or 100 files; the embedded form takes them all at once.
  const results: SubmitResult[] = [];
  for (let i = 0; i < uploads.length; ) {
    let j = i;
    let size = 0;
    while (j < uploads.length && (j === i || (j - i < 100 && size + uploads[j]!.bytes.byteLength <= 32 * 1024 ** 2) || backend.kind === 'embedded')) size += uploads[j++]!.bytes.byteLength;
    results.push(...(await backend.submit(ws, uploads.slice(i, j))));
    i = j;
  }
  const duplicates = results.filter((r) => r.duplicate).length;
  const bytesOf = new Map(results.map((r, i) => [r.id, uploads[i]!.bytes.byteLength]));
  line(`submitted ${results.length} file(s) (${formatBytes(totalBytes)}) to workspace ${ws.slug}${ws.created ? ' (new)' : ''}${duplicates ? `; ${duplicates} already there with the same content` : ''}`);

  const ids = [...new Set(results.map((r) => r.id))];
  const docs = new Map<string, DocumentInfo>();
  if (!opts.wait) {
    for (const r of results) line(`${r.duplicate ? 'unchanged' : 'queued'}  ${r.source}${r.replacesId ? ' (replaces the previous version once indexed)' : ''}`);
    return { results, documents: [], submitted: results.length, duplicates, failed: [], chunks: 0, bytes: totalBytes, seconds: (performance.now() - t0) / 1000 };
  }

  const tty = opts.progress.isTTY === true && !opts.quiet;
  const bars = tty
    ? new cliProgress.MultiBar(
        { stream: opts.progress, clearOnComplete: false, hideCursor: true, etaBuffer: 20, format: ' {name} |{bar}| {label} | ETA {eta_formatted}', barsize: 30, fps: 8 },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  // Files advance by bytes (a 2 MB chapter is not a 2 KB note), which gives a steadier ETA; chunks by count.
  const fileBar = bars?.create(totalBytes || 1, 0, { name: 'files ', label: `0/${ids.length}` });
  const chunkBar = bars?.create(1, 0, { name: 'chunks', label: '0' });
  const reported = new Set<string>();
  const finish = (d: DocumentInfo) => {
    if (reported.has(d.id)) return;
    reported.add(d.id);
    const msg =
      d.state === 'indexed' ? `indexed   ${d.source} (${d.chunkCount} chunks)` : `${d.state.padEnd(9)} ${d.source}${d.error ? `: ${d.error}` : ''}`;
    if (bars) {
      if (d.state !== 'indexed') bars.log(`${msg}\n`);
    } else line(msg);
  };

  const interval = backend.kind === 'embedded' ? 150 : 500;
  for (;;) {
    const pending = ids.filter((id) => !TERMINAL.has(docs.get(id)?.state ?? ''));
    if (pending.length === 0) break;
    for (let i = 0; i < pending.length; i += 20) {
      const got = await Promise.all(pending.slice(i, i + 20).map((id) => backend.get(ws, id)));
      for (const d of got) docs.set(d.id, d);
    }
    const all = [...docs.values()];
    for (const d of all) if (TERMINAL.has(d.state)) finish(d);
    if (bars) {
      const done = all.filter((d) => TERMINAL.has(d.state));
      const bytesDone = done.reduce((s, d) => s + (bytesOf.get(d.id) ?? d.sizeBytes), 0);
      const chunksDone = all.reduce((s, d) => s + (d.state === 'indexed' ? d.chunkCount : (d.progress.chunksDone ?? 0)), 0);
      // Total chunks are known per document only once it is chunked: estimate the rest from the bytes seen so far.
      const knownBytes = done.reduce((s, d) => s + (bytesOf.get(d.id) ?? 0), 0);
      const estimate = knownBytes > 0 ? Math.round((chunksDone / knownBytes) * totalBytes) : 0;
      fileBar!.update(bytesDone, { label: `${done.length}/${ids.length}` });
      chunkBar!.setTotal(Math.max(estimate, chunksDone, 1));
      chunkBar!.update(chunksDone, { label: done.length === ids.length ? `${chunksDone}` : `${chunksDone}/~${Math.max(estimate, chunksDone)}` });
    }
    if (ids.every((id) => TERMINAL.has(docs.get(id)?.state ?? ''))) break;
    await new Promise((r) => setTimeout(r, interval));
  }
  bars?.stop();
  const documents = ids.map((id) => docs.get(id)!);
  const failed = documents.filter((d) => d.state !== 'indexed');
  const chunks = documents.reduce((s, d) => s + (d.state === 'indexed' ? d.chunkCount : 0), 0);
  const seconds = (performance.now() - t0) / 1000;
  line(`${documents.length - failed.length}/${documents.length} indexed, ${chunks} chunks, ${failed.length} failed, in ${seconds.toFixed(1)} s`);
  return { results, documents, submitted: results.length, duplicates, failed, chunks, bytes: totalBytes, seconds };
}

export interface IngestCommandOptions extends ConnectionOptions {
  wait?: boolean;
  json?: boolean;
}

/** `docupod ingest <file|dir|glob>… [--workspace NAME] [--wait]` */
export async function ingestCommand(paths: string[], opts: IngestCommandOptions): Promise<void> {
  const files = findFiles(paths);
  const outcome = await withBackend(opts, async (backend) => {
    const ws = await backend.workspace(opts.workspace ?? 'default', true);
    const wait = backend.kind === 'embedded' || opts.wait === true;
    const r = await ingestFiles(backend, ws, files, { wait, progress: opts.json ? process.stderr : process.stdout, quiet: opts.json });
    return { ws, r };
  });
  if (opts.json) {
    const { ws, r } = outcome;
    console.log(JSON.stringify({ workspace: ws.slug, submitted: r.submitted, duplicates: r.duplicates, chunks: r.chunks, seconds: r.seconds, documents: r.documents.length > 0
      ? r.documents.map((d) => ({ id: d.id, source: d.source, state: d.state, chunks: d.chunkCount, error: d.error }))
      : r.results.map((d) => ({ id: d.id, source: d.source, state: d.state, duplicate: d.duplicate })) }));
  }
  if (outcome.r.failed.length > 0) process.exitCode = 1;
}
