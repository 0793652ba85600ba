// Shared helpers for the ingest and search benchmarks: an embedded (PGlite) database with one workspace, the Debian
// Reference corpus, and statistics. Benchmarks import the built program from dist/ (npm run bench builds first).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseDocument } from 'htmlparser2';

export const dist = (p) => new URL(`../../dist/${p}`, import.meta.url).href;

export const CORPUS_DIR = '/usr/share/debian-reference';

/** The Debian Reference HTML files (apt-get install debian-reference-en). */
export function corpusFiles() {
  let names;
  try {
    names = readdirSync(CORPUS_DIR).filter((f) => f.endsWith('.en.html')).sort();
  } catch {
    names = [];
  }
  if (names.length === 0) throw new Error(`no HTML under ${CORPUS_DIR}: run apt-get update && apt-get install -y debian-reference-en`);
  return names.map((name) => ({ name, bytes: readFileSync(path.join(CORPUS_DIR, name)) }));
}

/** Visible text of an HTML page with a real parser (the same library docupod's HTML parser uses). */
export function htmlText(html) {
  const out = [];
  const walk = (n) => {
    if (n.type === 'text') out.push(n.data);
    else if (n.type === 'tag' && ['script', 'style', 'head'].includes(n.name)) return;
    if (n.children) for (const c of n.children) walk(c);
    if (n.type === 'tag' && /^(p|div|h[1-6]|li|tr|pre|table|section|br|dt|dd)$/.test(n.name)) out.push('\n\n');
  };
  walk(parseDocument(html));
  return out.join('').replace(/[ \t]+/g, ' ').replace(/\n\s*\n\s*/g, '\n\n').trim();
}

/** A fresh embedded database in a temp dir (file-backed, like `docupod serve`), migrated, with one workspace. */
export async function benchDatabase() {
  const { openDatabase } = await import(dist('storage/database.js'));
  const dir = mkdtempSync(path.join(tmpdir(), 'docupod-bench-'));
  const database = await openDatabase({ dataDir: dir });
  await database.migrate();
  const workspaceId = randomUUID();
  const { sql } = await import('drizzle-orm');
  await database.db.execute(sql`insert into workspaces (id, slug, name) values (${workspaceId}, ${`bench-${workspaceId.slice(0, 8)}`}, 'bench')`);
  return {
    database,
    db: database.db,
    dir,
    workspaceId,
    close: async () => {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

/** Deterministic PRNG (the product's mulberry32) so every run and every system sees the same data. */
export const { mulberry32: rng } = await import(dist('roles/models/intent/split.js'));

export function gaussian(rand) {
  let u = 0;
  while (u === 0) u = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export function dirSizeBytes(dir) {
  return Number(execSync(`du -sb ${JSON.stringify(dir)}`).toString().split('\t')[0]);
}

export function machine() {
  let commit = '?';
  try {
    commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    /* not a checkout */
  }
  return `node ${process.version}, ${cpus().length}× ${cpus()[0]?.model ?? '?'}, commit ${commit}`;
}

export const fmtMs = (ms) => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));

/** JSON over HTTP to a running server (a bearer token when given); throws with the status and body on non-2xx. */
export async function api(base, method, p, { token, body } = {}) {
  const r = await fetch(base + p, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}
