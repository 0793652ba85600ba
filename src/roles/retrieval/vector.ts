import { is, sql, type SQL } from 'drizzle-orm';
import { PgliteSession } from 'drizzle-orm/pglite';
import { rowsOf, type Db } from '../../storage/database.js';
import { embeddingExpr } from '../../storage/vector-schema.js';
import type { Row } from './row.js';

/**
 * Measured at 100,000 chunks (bench/search.bench.js), over three builds of the same index (pgvector draws HNSW levels
 * at random, so each build differs): ef_search 40 → recall@10 0.88–0.90, 64 → 0.92–0.94, 100 → 0.946–0.976,
 * 128 → 0.976 (p50/p99 +0.3/+0.5 ms over 100). 100 fell below 0.95 on one build of three, so the default is 128.
 * DOCUPOD_VECTOR_EF_SEARCH overrides it.
 */
export const DEFAULT_EF_SEARCH = 128;

/** The ef_search each PGlite connection holds at session level (PGlite is one connection per process). */
const sessionEf = new WeakMap<object, number>();

/** Nearest chunks by cosine distance through the per-dimension HNSW index (see src/storage/vector-schema.ts). */
export async function vectorSearch(db: Db, args: { workspaceId: string; query: number[]; limit: number; efSearch?: number; filters: SQL }): Promise<Row[]> {
  const { workspaceId, limit, query } = args;
  const dims = query.length;
  // 9 significant digits name a float32 exactly (the index holds float32); the 17 of JSON.stringify only cost
  // parsing time, which PGlite's WASM float parser makes noticeable (~1 ms for 384 values).
  const literal = `[${query
    .map((x) => {
      if (!Number.isFinite(x)) throw new Error(`the query embedding has a non-finite value (${x})`);
      return +x.toPrecision(9);
    })
    .join(',')}]`;
  // The same typed expression as the per-dimension HNSW index (see src/storage/vector-schema.ts), or the planner
  // cannot use it. dims is validated there: a typmod cannot be a bound parameter.
  const { expr, type } = embeddingExpr(dims);
  const column = sql.raw(`e.${expr}`);
  const cast = sql.raw(type);
  // HNSW returns at most ef_search rows: never fewer candidates than rows asked for.
  const ef = Math.trunc(Math.max(args.efSearch ?? DEFAULT_EF_SEARCH, limit));
  if (!(ef >= 1 && ef <= 1000)) throw new Error(`invalid hnsw.ef_search ${ef}`);
  const search = (tx: Db) =>
    tx.execute(sql`
      select c.id as chunk_id, c.document_id, d.source, d.title, c.heading_path, c.text, c.page, c.char_start, c.char_end,
        (1 - (${column} <=> ${literal}::${cast}))::float8 as score
      from chunk_embeddings e
      join chunks c on c.id = e.chunk_id
      join documents d on d.id = c.document_id and d.state = 'indexed'
      where e.workspace_id = ${workspaceId} and e.dims = ${dims} ${args.filters}
      order by ${column} <=> ${literal}::${cast}
      limit ${limit}`);
  // PGlite is a single connection that only this module tunes: set ef_search on the session when it changes and
  // search in one round trip, instead of BEGIN, SET LOCAL, the search and COMMIT (4 round trips, ~1 ms of a ~5 ms
  // search). A pooled server connection could be anyone's next, so there the setting stays local to a transaction.
  const session = (db as unknown as { session?: unknown }).session;
  const client = is(session, PgliteSession) ? (session as unknown as { client: object }).client : undefined;
  // (Inside a caller's transaction the handle is a PGlite Transaction, with rollback(): keep SET LOCAL there.)
  if (client && !('rollback' in client)) {
    if (sessionEf.get(client) !== ef) {
      await db.execute(sql.raw(`set hnsw.ef_search = ${ef}`));
      sessionEf.set(client, ef);
    }
    return rowsOf<Row>(await search(db));
  }
  return db.transaction(async (tx) => {
    await tx.execute(sql.raw(`set local hnsw.ef_search = ${ef}`));
    return rowsOf<Row>(await search(tx));
  });
}
