import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { AnswerResult } from '../roles/chat/contract.js';
import type { DocumentInfo, SubmitResult } from '../roles/ingest/contract.js';
import { SearchMode, type SearchRequest, type SearchResponse } from '../roles/retrieval/contract.js';
import { openLocalBackend } from './local-server.js';
import { RemoteBackend } from './remote.js';

// `docupod ingest`, and what `search`, `ask` and `eval` share with it: one Backend, always the public HTTP API.
// Which server: --url (remote), the server that owns the local data directory (local), or one this command starts
// in-process on the data directory when nobody owns it (embedded); see local-server.ts.
//
// The embedded form always waits for its documents: its server stops when the command ends, and the jobs would wait
// for the next start. Against a running server (local or remote) the command returns after the upload unless --wait.

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

export type BackendKind = 'embedded' | 'local' | 'remote';

export interface Backend {
  readonly kind: BackendKind;
  /** Resolves a workspace by slug, id or display name; creates it when asked and missing. */
  workspace(name: string, create: boolean): Promise<WorkspaceRef>;
  submit(ws: WorkspaceRef, files: UploadFile[]): Promise<SubmitResult[]>;
  get(ws: WorkspaceRef, documentId: string): Promise<DocumentInfo>;
  list(ws: WorkspaceRef): Promise<DocumentInfo[]>;
  delete(ws: WorkspaceRef, documentId: string): Promise<void>;
  search(ws: WorkspaceRef, req: Partial<SearchRequest> & { query: string }): Promise<SearchResponse>;
  /** One grounded answer from the chat role (the configured LLM; extractive by default). */
  answer(ws: WorkspaceRef, question: string): Promise<string>;
  /** A streamed answer with citations, asked in a workspace chat. */
  ask(ws: WorkspaceRef, question: string, onToken: (text: string) => void): Promise<AnswerResult>;
  /** Settings worth reporting next to results (chunk size, search language, where the data is). */
  describe(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface ConnectionOptions {
  url?: string;
  apiKey?: string;
  workspace?: string;
}

/** --url/--api-key (or DOCUPOD_URL/DOCUPOD_API_KEY) select a server; otherwise the local data directory's. */
export async function openBackend(opts: ConnectionOptions): Promise<RemoteBackend> {
  const url = opts.url ?? process.env.DOCUPOD_URL;
  if (url) {
    const key = opts.apiKey ?? process.env.DOCUPOD_API_KEY;
    if (!key) throw new Error('--url needs an API key: pass --api-key or set DOCUPOD_API_KEY (create one with `docupod apikey create`)');
    return new RemoteBackend(url, key);
  }
  return openLocalBackend();
}

export async function withBackend<T>(opts: ConnectionOptions, fn: (b: RemoteBackend) => Promise<T>): Promise<T> {
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
  // Uploads go in requests of at most ~32 MB or 100 files.
  const results: SubmitResult[] = [];
  for (let i = 0; i < uploads.length; ) {
    let j = i;
    let size = 0;
    while (j < uploads.length && (j === i || (j - i < 100 && size + uploads[j]!.bytes.byteLength <= 32 * 1024 ** 2))) size += uploads[j++]!.bytes.byteLength;
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
    // The embedded server stops with this command: its documents are followed to the end, whatever --wait says.
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
