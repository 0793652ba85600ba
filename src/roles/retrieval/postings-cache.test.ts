import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { backends, freshDatabase, type TestDatabase } from '../../../test/fixtures/database.js';
import { createMetricsRegistry } from '../../observability/metrics.js';
import type { Db } from '../../storage/database.js';
import { documents } from '../../storage/schema-documents.js';
import { workspaces } from '../../storage/schema.js';
import { removeDocumentIndex, writeDocumentIndex } from '../ingest/index-writer.js';
import { PostingsCache } from './postings-cache.js';
import { createRetrievalService } from './service.js';

// The in-memory postings cache must rank exactly as the SQL path, see every write at once, and keep workspaces apart.

const words = ['kernel', 'module', 'package', 'network', 'printer', 'locale', 'mirror', 'backup', 'firewall', 'sudo'];
const filler = (n: number) => Array.from({ length: n }, (_, i) => ['green', 'river', 'stone', 'cloud', 'paper', 'window'][i % 6]).join(' ');

async function workspace(db: Db, slug: string): Promise<string> {
  const id = randomUUID();
  await db.insert(workspaces).values({ id, slug, name: slug, description: '' });
  return id;
}

async function addDocument(db: Db, workspaceId: string, source: string, texts: string[], heading?: string): Promise<string> {
  const id = randomUUID();
  await db.insert(documents).values({ id, workspaceId, source, contentHash: randomUUID().replace(/-/g, '').padEnd(64, '0'), sizeBytes: 1, blobKey: id, state: 'indexed' });
  await db.transaction((tx) =>
    writeDocumentIndex(tx, { workspaceId, documentId: id, title: null, language: 'english', chunks: texts.map((text) => ({ text, headingPath: heading ? [heading] : [], charStart: 0, charEnd: text.length, tokenCount: 10 })) }),
  );
  return id;
}

/** Chunks where word i appears with probability ~1/(i+1), "debian" in all, some under a matching heading. */
async function corpus(db: Db, workspaceId: string, docs: number, seed: number): Promise<void> {
  const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let d = 0; d < docs; d++) {
    const texts = Array.from({ length: 40 }, () => {
      const n = 3 + Math.floor(rand() * 12);
      return ['debian', ...Array.from({ length: n }, () => words[Math.floor(words.length * rand() ** 2.5)]!), filler(Math.floor(rand() * 20))].join(' ');
    });
    await addDocument(db, workspaceId, `doc-${d}.md`, texts, d % 2 ? 'Kernel notes' : undefined);
  }
}

const QUERIES = ['debian sudo', 'debian kernel module', 'kernel module package', 'debian firewall backup mirror', 'kernel', 'locale debian', 'printer sudo kernel debian', 'sudo backup', 'network printer'];

describe.each(backends())('lexical postings cache (%s)', (backend) => {
  let t: TestDatabase | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const service = (db: Db, cache: PostingsCache | number) =>
    createRetrievalService({
      db,
      vectorEnabled: false,
      language: 'english',
      metrics: createMetricsRegistry({ defaultMetrics: false }),
      version: 'test',
      ready: async () => true,
      ...(typeof cache === 'number' ? { lexicalCacheBytes: cache } : { lexicalCache: cache }),
    });
  const run = (s: ReturnType<typeof service>, workspaceId: string, query: string) =>
    s.search({ workspaceId, query, k: 10, highlight: false, mode: 'lexical' }).then((r) => r.results.map((x) => [x.chunkId, x.score, x.source]));

  it('returns exactly the chunks and scores of the SQL path, cold, warm and when a term is too large to load inline', async () => {
    t = await freshDatabase(backend);
    const db = t.database.db;
    const ws = await workspace(db, 'same');
    await corpus(db, ws, 4, 3);
    const sqlOnly = service(db, 0);
    const cache = new PostingsCache(db, 64 * 1024 * 1024);
    const cached = service(db, cache);
    // Terms with more postings than this wait for a background load; the query meanwhile goes to SQL.
    const small = new PostingsCache(db, 64 * 1024 * 1024, { inlineLoadPostings: 20 });
    const spill = service(db, small);
    for (const q of QUERIES) {
      const expected = await run(sqlOnly, ws, q);
      expect(expected.length, q).toBeGreaterThan(0);
      expect(await run(cached, ws, q), `${q} (cold)`).toEqual(expected);
      expect(await run(cached, ws, q), `${q} (warm)`).toEqual(expected);
      expect(await run(spill, ws, q), `${q} (spill)`).toEqual(expected);
    }
    // The cached path really ran: every query after the first load of its terms was a hit.
    expect(cache.stats().hits).toBeGreaterThanOrEqual(QUERIES.length);
    expect(cache.stats().bytes).toBeGreaterThan(0);
    // And the large terms, loaded in the background, give the same answers from memory.
    await small.flush();
    const before = small.stats().hits;
    for (const q of QUERIES) expect(await run(spill, ws, q), `${q} (after background load)`).toEqual(await run(sqlOnly, ws, q));
    expect(small.stats().hits - before).toBe(QUERIES.length);
    // Warmed at start (the terms in at least 20 chunks): the first queries on those terms are hits.
    const warmed = new PostingsCache(db, 64 * 1024 * 1024, { warmMinDf: 20, inlineLoadPostings: 0 });
    await warmed.warm();
    expect(warmed.stats().terms).toBeGreaterThan(5);
    const w = service(db, warmed);
    for (const q of ['debian kernel module', 'kernel', 'debian kernel']) expect(await run(w, ws, q), `${q} (warmed)`).toEqual(await run(sqlOnly, ws, q));
    expect(warmed.stats()).toMatchObject({ hits: 3, misses: 0 });
    // A budget too small for a term's postings still answers (from SQL), identically.
    const tiny = service(db, 256);
    for (const q of QUERIES) expect(await run(tiny, ws, q), `${q} (tiny budget)`).toEqual(await run(sqlOnly, ws, q));
  });

  it('sees a write at once: a new document is found and a removed one is gone on the next query', async () => {
    t = await freshDatabase(backend);
    const db = t.database.db;
    const ws = await workspace(db, 'fresh');
    await corpus(db, ws, 2, 5);
    const cache = new PostingsCache(db, 64 * 1024 * 1024);
    const s = service(db, cache);
    expect((await run(s, ws, 'zeppelin')).length).toBe(0);
    expect(await run(s, ws, 'kernel module')).not.toEqual([]);
    const hitsBefore = cache.stats().hits;
    expect((await run(s, ws, 'kernel module')).some((r) => r[2] === 'new.md')).toBe(false);
    expect(cache.stats().hits).toBe(hitsBefore + 1); // both terms are held now
    const id = await addDocument(db, ws, 'new.md', ['The zeppelin kernel module, kernel module, kernel module.']);
    // Cached terms gained a posting: the stale copies must not be used.
    expect((await run(s, ws, 'kernel module'))[0]?.[2]).toBe('new.md');
    expect((await run(s, ws, 'zeppelin')).map((r) => r[2])).toEqual(['new.md']);
    expect((await run(s, ws, 'kernel module'))[0]?.[2]).toBe('new.md');
    await db.transaction((tx) => removeDocumentIndex(tx, ws, id, true));
    expect((await run(s, ws, 'zeppelin')).length).toBe(0);
    expect((await run(s, ws, 'kernel module')).some((r) => r[2] === 'new.md')).toBe(false);
    // Same answers as SQL after the churn.
    const sqlOnly = service(db, 0);
    for (const q of QUERIES) expect(await run(s, ws, q), q).toEqual(await run(sqlOnly, ws, q));
  });

  it("never returns another workspace's chunks", async () => {
    t = await freshDatabase(backend);
    const db = t.database.db;
    const a = await workspace(db, 'ws-a');
    const b = await workspace(db, 'ws-b');
    await corpus(db, a, 2, 7);
    await corpus(db, b, 2, 11);
    const cache = new PostingsCache(db, 64 * 1024 * 1024);
    const s = service(db, cache);
    const sqlOnly = service(db, 0);
    const chunksOf = async (ws: string) => new Set(((await db.execute(`select id::text from chunks where workspace_id = '${ws}'`)) as { rows: Array<{ id: string }> }).rows.map((r) => r.id));
    const inA = await chunksOf(a);
    const inB = await chunksOf(b);
    for (const q of QUERIES) {
      for (const [ws, own] of [[a, inA], [b, inB]] as const) {
        const got = await run(s, ws, q);
        expect(got.every((r) => own.has(r[0] as string)), q).toBe(true);
        expect(got, q).toEqual(await run(sqlOnly, ws, q));
      }
    }
    expect(cache.stats().workspaces).toBe(2);
  });
});
