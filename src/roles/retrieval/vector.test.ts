import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, freshDatabase } from '../../../test/fixtures/database.js';
import { openDatabase, rowsOf, type Database, type Db } from '../../storage/database.js';
import { documents } from '../../storage/schema-documents.js';
import { workspaces } from '../../storage/schema.js';
import { ensureHnswIndex, ensureVectorSchema, hnswIndexName, quantizedLiteral } from '../../storage/vector-schema.js';
import { writeDocumentIndex } from '../ingest/index-writer.js';
import { writeEmbeddings } from '../ingest/embedding-writer.js';
import { vectorSearch, vectorSearchQuery } from './vector.js';

// Two-stage vector search on pgvector: the HNSW index over sign bits (binary_quantize) proposes candidates, exact
// cosine distance over the stored halfvec values ranks them. These tests pin what the stages must agree on, on PGlite
// and (with DOCUPOD_TEST_DATABASE_URL) over the pg driver on PostgreSQL 15 with pgvector 0.8.

const DIMS = 16;
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
const randomVector = () => Array.from({ length: DIMS }, () => rand());
const cosine = (a: number[], b: number[]) => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return dot / Math.sqrt(na * nb);
};

async function addWorkspace(db: Db): Promise<string> {
  const id = randomUUID();
  await db.insert(workspaces).values({ id, slug: `w-${id.slice(0, 8)}`, name: 'w', description: '' });
  return id;
}

/** An indexed document with one chunk per vector, written as the ingest pipeline writes them. */
async function addDocument(db: Db, workspaceId: string, source: string, embeddings: number[][]): Promise<{ documentId: string; chunkIds: string[] }> {
  const documentId = randomUUID();
  await db.insert(documents).values({ id: documentId, workspaceId, source, contentHash: documentId.replace(/-/g, '').padEnd(64, '0'), sizeBytes: 1, blobKey: documentId, state: 'indexed' });
  const chunkIds = await db.transaction(async (tx) => {
    const ids = await writeDocumentIndex(tx, { workspaceId, documentId, title: null, language: 'english', chunks: embeddings.map((_, i) => ({ text: `${source} ${i}`, headingPath: [], charStart: 0, charEnd: 5, tokenCount: 2 })) });
    await writeEmbeddings(tx, { workspaceId, documentId, chunkIds: ids, embeddings });
    return ids;
  });
  return { documentId, chunkIds };
}

/** Ids of the k vectors nearest the query by exact cosine, best first. */
const exactTop = (query: number[], vs: number[][], ids: string[], k: number) =>
  vs
    .map((v, i) => ({ id: ids[i]!, s: cosine(query, v) }))
    .sort((a, b) => b.s - a.s)
    .slice(0, k);

describe.each(backends())('vector search on %s', (backend) => {
  let t: { database: Database; url?: string; close: () => Promise<void> };
  let workspaceId: string;
  let vectors: number[][];
  let chunkIds: string[];

  beforeAll(async () => {
    t = await freshDatabase(backend);
    await t.database.migrate();
    const db = t.database.db;
    workspaceId = await addWorkspace(db);
    vectors = Array.from({ length: 300 }, randomVector);
    ({ chunkIds } = await addDocument(db, workspaceId, 'a.md', vectors));
    await ensureHnswIndex(db, DIMS);
  });
  afterAll(async () => t?.close());

  it("computes the query's bits exactly as pgvector's binary_quantize does (a bit per component > 0)", async () => {
    for (const v of [[0, -0, 1e-8, -1e-8, 3, -3, 0.5, -0.5], randomVector()]) {
      const [r] = rowsOf<{ bits: string }>(await t.database.db.execute(sql`select binary_quantize(${`[${v.join(',')}]`}::vector)::text as bits`));
      expect(quantizedLiteral(v)).toBe(r!.bits);
    }
  });

  it('walks the binary HNSW index in the inner query: the expressions match (the plan names it)', async () => {
    const { statement, ef } = vectorSearchQuery({ workspaceId, query: randomVector(), limit: 5, filters: sql`` });
    const plan = await t.database.db.transaction(async (tx) => {
      await tx.execute(sql.raw(`set local hnsw.ef_search = ${ef}`));
      // 300 rows: a scan of the workspace's rows would be cheaper, so only the HNSW path is left open. Were the
      // expressions different, the planner could not use the index at all and would keep a (disabled) scan.
      await tx.execute(sql`set local enable_seqscan = off`);
      await tx.execute(sql`set local enable_bitmapscan = off`);
      return rowsOf<Record<string, string>>(await tx.execute(sql`explain ${statement}`)).map((r) => Object.values(r)[0]).join('\n');
    });
    expect(plan).toContain(`Index Scan using ${hnswIndexName(DIMS)}`);
  });

  it('returns the exact cosine top-k, best first, with the similarity as score, when the candidates cover it', async () => {
    for (let q = 0; q < 5; q++) {
      const query = randomVector();
      // ef_search ≥ the rows of the workspace: every row is a candidate, so the re-ranked top 5 must be exact.
      const rows = await vectorSearch(t.database.db, { workspaceId, query, limit: 5, efSearch: 400, filters: sql`` });
      const exact = exactTop(query, vectors, chunkIds, 5);
      expect(rows.map((r) => r.chunk_id)).toEqual(exact.map((e) => e.id));
      // halfvec keeps ~3 significant digits of each component
      for (const [i, r] of rows.entries()) expect(Number(r.score)).toBeCloseTo(exact[i]!.s, 2);
    }
  });

  it('applies document and source filters (as the service writes them) to the candidates', async () => {
    const db = t.database.db;
    const near = vectors[0]!.map((x) => x + 0.01);
    const { documentId: otherId, chunkIds: [otherChunk] } = await addDocument(db, workspaceId, 'notes/b.md', [near]);
    const all = await vectorSearch(db, { workspaceId, query: near, limit: 3, efSearch: 400, filters: sql`` });
    expect(all.map((r) => r.chunk_id)).toContain(otherChunk);
    const bySource = await vectorSearch(db, { workspaceId, query: near, limit: 3, efSearch: 400, filters: sql`and (d.source like ${'notes/%'})` });
    expect(bySource.map((r) => r.chunk_id)).toEqual([otherChunk]);
    const byDocument = await vectorSearch(db, { workspaceId, query: near, limit: 3, efSearch: 400, filters: sql`and c.document_id in (${otherId}::uuid)` });
    expect(byDocument.map((r) => r.chunk_id)).toEqual([otherChunk]);
    const excluded = await vectorSearch(db, { workspaceId, query: near, limit: 3, efSearch: 400, filters: sql`and c.document_id in (${randomUUID()}::uuid)` });
    expect(excluded).toEqual([]);
    await db.delete(documents).where(sql`id = ${otherId}`);
  });

  it("finds a small workspace's chunks through an index another workspace fills (iterative scan), and filtered chunks beyond ef_search", async () => {
    const db = t.database.db;
    const smallWs = await addWorkspace(db);
    // Three vectors opposite the query: the 300 of the large workspace are all nearer, so the first ef_search = 10
    // candidates of a plain HNSW scan would all belong to the other workspace and be filtered out.
    const query = randomVector();
    const opposite = [0, 1, 2].map(() => query.map((x) => -x + rand() * 0.05));
    const { chunkIds: smallIds } = await addDocument(db, smallWs, 'small.md', opposite);
    // 300 rows are few enough for the planner to prefer an exact scan: leave it the HNSW path only, as it is at any
    // real size (in one transaction, so that on a pool the settings reach the connection that searches).
    const onHnswOnly = (f: (tx: Db) => Promise<Awaited<ReturnType<typeof vectorSearch>>>) =>
      db.transaction(async (tx) => {
        await tx.execute(sql`set local enable_seqscan = off`);
        await tx.execute(sql`set local enable_bitmapscan = off`);
        return f(tx as unknown as Db);
      });
    const rows = await onHnswOnly((tx) => vectorSearch(tx, { workspaceId: smallWs, query, limit: 3, efSearch: 10, filters: sql`` }));
    expect(rows.map((r) => r.chunk_id).sort()).toEqual([...smallIds].sort());
    // The same inside one workspace: a source filter that only its two farthest chunks pass.
    const { documentId: farDoc, chunkIds: farIds } = await addDocument(db, workspaceId, 'far.md', opposite.slice(0, 2));
    const far = await onHnswOnly((tx) => vectorSearch(tx, { workspaceId, query, limit: 5, efSearch: 10, filters: sql`and (d.source like ${'far.md'})` }));
    expect(far.map((r) => r.chunk_id).sort()).toEqual([...farIds].sort());
    await db.delete(documents).where(sql`id = ${farDoc}`);
    await db.delete(workspaces).where(sql`id = ${smallWs}`);
  });

  it('replaces the float-graph index of earlier versions by the binary one at migration', async () => {
    const db = t.database.db;
    await db.execute(sql.raw(`drop index ${hnswIndexName(DIMS)}`));
    await db.execute(sql.raw(`create index chunk_embeddings_hnsw_h${DIMS} on chunk_embeddings using hnsw ((embedding::vector(${DIMS})) vector_cosine_ops) where dims = ${DIMS}`));
    await ensureVectorSchema(db);
    const names = rowsOf<{ name: string }>(await db.execute(sql`select indexname as name from pg_indexes where tablename = 'chunk_embeddings'`)).map((r) => r.name);
    expect(names).toContain(hnswIndexName(DIMS));
    expect(names).not.toContain(`chunk_embeddings_hnsw_h${DIMS}`);
  });

  it.runIf(backend === 'postgres')('keeps its settings local to its transaction over the pg driver, as a pooled server needs', async () => {
    // One connection, so the check after the search runs on the session that searched.
    const single = await openDatabase({ url: t.url!, poolMax: 1 });
    try {
      const query = randomVector();
      const rows = await vectorSearch(single.db, { workspaceId, query, limit: 3, efSearch: 64, filters: sql`` });
      expect(rows.map((r) => r.chunk_id)).toEqual(exactTop(query, vectors, chunkIds, 3).map((e) => e.id));
      const [after] = rowsOf<{ ef: string; scan: string }>(await single.db.execute(sql`select current_setting('hnsw.ef_search') as ef, current_setting('hnsw.iterative_scan') as scan`));
      expect(after).toEqual({ ef: '40', scan: 'off' });
    } finally {
      await single.close();
    }
  });
});
