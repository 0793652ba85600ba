import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The built program as users run it (`docupod serve`, all roles, embedded PGlite), killed with SIGKILL while it is
// ingesting 100 documents, then restarted on the same data directory. Every document must end indexed exactly once:
// one row each, its chunks written once (unique (document_id, idx), count = chunk_count), the BM25 statistics
// counting each chunk once, and one finished job per document. The restart must not wait out the 60 s job lease.

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin/docupod.js');
const DOCS = 100;
const JWT_SECRET = 'crash-test-secret-that-is-at-least-32-characters';

interface Server {
  child: ChildProcess;
  url: string;
  /** documentId of every "document indexed" log line, in order. */
  indexed: string[];
  exited: Promise<number | null>;
}

let dataDir: string;
const indexedLog: string[] = [];

/** `npm test` builds first; a direct vitest run rebuilds dist/ when the ingest or queue sources are newer. */
function ensureBuilt() {
  const newest = ['src/jobs/queue.ts', 'src/roles/ingest/pipeline.ts', 'src/roles/ingest/service.ts', 'src/roles/ingest/index-writer.ts'].map(
    (f) => statSync(path.join(ROOT, f)).mtimeMs,
  );
  let built = 0;
  try {
    built = Math.min(statSync(path.join(ROOT, 'dist/jobs/queue.js')).mtimeMs, statSync(path.join(ROOT, 'dist/roles/ingest/pipeline.js')).mtimeMs);
  } catch {
    /* not built */
  }
  if (built < Math.max(...newest)) spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'ignore' });
}

async function start(): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DOCUPOD_DATA_DIR: dataDir,
      DOCUPOD_HOST: '127.0.0.1',
      DOCUPOD_LOG_LEVEL: 'info',
      DOCUPOD_JWT_SECRET: JWT_SECRET,
      DOCUPOD_INGEST_WORKERS: '2',
      DOCUPOD_SHUTDOWN_DELAY: '0s',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const indexed: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s: ${stderr}`)), 60_000);
    void exited.then((code) => reject(new Error(`server exited with ${code} during start: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: { msg?: string; documentId?: string };
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      const m = /docupod listening on (http:\/\/\S+)/.exec(entry.msg ?? '');
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
      if (entry.msg === 'document indexed' && entry.documentId) {
        indexed.push(entry.documentId);
        indexedLog.push(entry.documentId);
      }
    });
  });
  return { child, url, indexed, exited };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies of several shapes, checked by the assertions
async function api<T = any>(srv: Server, token: string | undefined, method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(srv.url + url, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body instanceof FormData || body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body instanceof FormData ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A small Markdown document of several chunks, with words found only in it. */
function documentText(i: number): string {
  const tag = `crashdoc${String(i).padStart(3, '0')}`;
  const sections = Array.from({ length: 6 }, (_, s) =>
    `## Part ${s + 1}\n\n` +
    Array.from({ length: 8 }, (_, p) => `Paragraph ${p + 1} of part ${s + 1} in ${tag} explains how the ingestion pipeline survives a crash, restart and lease recovery.`).join(' '),
  );
  return `# Document ${tag}\n\n${sections.join('\n\n')}\n`;
}

beforeAll(() => {
  ensureBuilt();
  dataDir = mkdtempSync(path.join(tmpdir(), 'docupod-crash-'));
}, 180_000);
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('crash during ingestion', () => {
  it('indexes all 100 documents exactly once after a SIGKILL mid-ingestion and a restart', async () => {
    const first = await start();
    let token: string;
    let slug: string;
    try {
      const signup = await api(first, undefined, 'POST', '/api/auth/signup', { email: 'crash@example.com', password: 'correct horse battery' });
      expect(signup.status, JSON.stringify(signup.body)).toBe(201);
      token = signup.body.accessToken;
      const ws = await api(first, token, 'POST', '/api/workspaces', { name: 'Crash' });
      expect(ws.status).toBe(201);
      slug = ws.body.slug;

      const form = new FormData();
      for (let i = 0; i < DOCS; i++) form.append('file', new Blob([documentText(i)]), `doc-${i}.md`);
      const up = await api(first, token, 'POST', `/api/workspaces/${slug}/documents`, form);
      expect(up.status, JSON.stringify(up.body)).toBe(202);
      expect(up.body.documents).toHaveLength(DOCS);

      // Kill once some documents are indexed and (most) others are not.
      const deadline = Date.now() + 30_000;
      while (first.indexed.length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    } finally {
      first.child.kill('SIGKILL');
    }
    await first.exited;
    const before = first.indexed.length;
    expect(before).toBeGreaterThanOrEqual(10);
    expect(before).toBeLessThan(DOCS);

    const second = await start();
    const t0 = Date.now();
    let states: Record<string, number> = {};
    try {
      for (;;) {
        const list = await api(second, token, 'GET', `/api/workspaces/${slug}/documents?limit=1000`);
        expect(list.status).toBe(200);
        expect(list.body.total).toBe(DOCS);
        states = {};
        for (const d of list.body.documents as Array<{ state: string }>) states[d.state] = (states[d.state] ?? 0) + 1;
        if (states.indexed === DOCS || states.failed) break;
        if (Date.now() - t0 > 40_000) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const resumeMs = Date.now() - t0;
      expect(states).toEqual({ indexed: DOCS });
      // Far below the 60 s lease: jobs the dead process held were requeued at start.
      expect(resumeMs).toBeLessThan(30_000);
      const hit = await api(second, token, 'POST', `/api/workspaces/${slug}/search`, { query: 'crashdoc042', k: 20 });
      expect(hit.status).toBe(200);
      expect(new Set((hit.body.results as Array<{ source: string }>).map((r) => r.source))).toEqual(new Set(['doc-42.md']));
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }

    // No document was indexed twice (logged lines may lag behind a SIGKILL, so at most once, never twice).
    const perDoc = new Map<string, number>();
    for (const id of indexedLog) perDoc.set(id, (perDoc.get(id) ?? 0) + 1);
    expect([...perDoc.values()].every((n) => n === 1)).toBe(true);

    // Straight into the data directory now that no server holds it.
    const pg = await PGlite.create(path.join(dataDir, 'pglite'), { extensions: { vector } });
    try {
      const q = async <T>(text: string) => (await pg.query<T>(text)).rows;
      expect(await q(`select state, count(*)::int as n from documents group by state`)).toEqual([{ state: 'indexed', n: DOCS }]);
      expect(await q(`select count(distinct source)::int as n from documents`)).toEqual([{ n: DOCS }]);
      expect(await q(`select document_id, idx from chunks group by 1, 2 having count(*) > 1`)).toEqual([]);
      // chunk_count agrees with the rows, and idx runs 0..n-1 with no gap or leftover from the killed attempt.
      expect(
        await q(`select d.id from documents d left join chunks c on c.document_id = d.id group by d.id, d.chunk_count
          having count(c.id) <> d.chunk_count or coalesce(max(c.idx), -1) <> d.chunk_count - 1 or d.chunk_count = 0`),
      ).toEqual([]);
      // The BM25 statistics count every chunk once.
      const [stats] = await q<{ chunks: number; real: number; lexemes: string; real_lexemes: string }>(
        `select s.chunks, (select count(*)::int from chunks) as real, s.lexemes::text, (select sum(lexeme_count)::text from chunks) as real_lexemes from index_stats s`,
      );
      expect(stats!.chunks).toBe(stats!.real);
      expect(stats!.lexemes).toBe(stats!.real_lexemes);
      // One ingest job per document, finished.
      expect(await q(`select state, count(*)::int as n, count(distinct payload->>'documentId')::int as docs from jobs group by state`)).toEqual([
        { state: 'done', n: DOCS, docs: DOCS },
      ]);
    } finally {
      await pg.close();
    }
  }, 150_000);
});
