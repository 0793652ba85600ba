import { is, sql, type SQL } from 'drizzle-orm';
import { PgliteSession } from 'drizzle-orm/pglite';
import { rowsOf, type Db } from '../../storage/database.js';
import { quantizedExpr, quantizedLiteral } from '../../storage/vector-schema.js';
import type { Row } from './row.js';

/**
 * How many candidates the binary-quantised HNSW index returns for exact re-ranking (hnsw.ef_search, and the inner
 * LIMIT). Measured at 100,000 clustered 384-d vectors over five builds (bench/search.bench.js): recall@10 after
 * re-ranking 0.85–0.90 at 40 candidates, 0.93–0.98 at 64, 0.985–0.997 at 100 and 0.988–0.997 at 128; p99 rose
 * ~1–2 ms from 100 to 128. 100 keeps a margin over 0.95 on every build. DOCUPOD_VECTOR_EF_SEARCH overrides it.
 */
export const DEFAULT_EF_SEARCH = 100;

/** The ef_search each PGlite connection holds at session level (PGlite is one connection per process). */
const sessionEf = new WeakMap<object, number>();

export interface VectorSearchArgs {
  workspaceId: string;
  query: number[];
  limit: number;
  efSearch?: number;
  filters: SQL;
}

/** The search's SQL and its ef_search (exported for the test that checks the plan uses the index). */
export function vectorSearchQuery(args: VectorSearchArgs): { ef: number; statement: SQL } {
  const { workspaceId, limit, query } = args;
  const dims = query.length;
  // 9 significant digits name a float32 exactly; the 17 of JSON.stringify only cost parsing time, which PGlite's WASM
  // float parser makes noticeable (~1 ms for 384 values).
  const literal = `[${query
    .map((x) => {
      if (!Number.isFinite(x)) throw new Error(`the query embedding has a non-finite value (${x})`);
      return +x.toPrecision(9);
    })
    .join(',')}]`;
  // The same expression as the per-dimension index, or the planner cannot use it; dims is validated there (a typmod
  // cannot be a bound parameter). The query's bits are computed here, so PGlite parses its floats once.
  const indexed = sql.raw(quantizedExpr(dims, 'c.embedding'));
  const bitType = sql.raw(`bit(${dims})`);
  const halfType = sql.raw(`halfvec(${dims})`);
  // HNSW returns at most ef_search rows: never fewer candidates than rows asked for.
  const ef = Math.trunc(Math.max(args.efSearch ?? DEFAULT_EF_SEARCH, limit));
  if (!(ef >= 1 && ef <= 1000)) throw new Error(`invalid hnsw.ef_search ${ef}`);
  // Two steps, each a subquery the planner keeps apart (each ends in LIMIT):
  // 1. walk the index for ef_search candidates of this workspace's indexed documents that pass the filters, with
  //    their exact distances. The scan is iterative (pgvector ≥ 0.8, hnsw.iterative_scan = relaxed_order, set in
  //    vectorSearch): when the workspace, state or filters reject candidates, the index walk goes on instead of
  //    returning fewer rows, so a small workspace sharing the index with a large one still gets its nearest chunks
  //    (up to hnsw.max_scan_tuples, 20,000 visited). chunk_embeddings is aliased `c` (it has document_id), so the
  //    service's filters read as they do elsewhere. "Relaxed" order is fine: step 2 re-ranks exactly.
  // 2. take the best `limit` by exact distance, then read only those chunks' text. Reading the chunks row of every
  //    candidate cost ~4 ms of a ~9 ms search at 100,000 chunks (a random page read each).
  const statement = sql`
      select c.id as chunk_id, c.document_id, d.source, d.title, c.heading_path, c.text, c.page, c.char_start, c.char_end,
        (1 - best.distance)::float8 as score
      from (
        select k.id, k.distance
        from (
          select c.chunk_id as id, (c.embedding <=> ${literal}::${halfType}) as distance
          from chunk_embeddings c
          join documents d on d.id = c.document_id and d.state = 'indexed'
          where c.workspace_id = ${workspaceId} and c.dims = ${dims} ${args.filters}
          order by ${indexed} <~> ${quantizedLiteral(query)}::${bitType}
          limit ${ef}) k
        order by k.distance, k.id
        limit ${limit}) best
      join chunks c on c.id = best.id
      join documents d on d.id = c.document_id
      order by best.distance, c.id`;
  return { ef, statement };
}

/**
 * Nearest chunks by cosine distance, in two stages (see src/storage/vector-schema.ts): the per-dimension HNSW index
 * over sign bits yields ef_search candidates by Hamming distance, which are re-ranked by exact cosine distance over
 * the stored halfvec values.
 */
export async function vectorSearch(db: Db, args: VectorSearchArgs): Promise<Row[]> {
  const { ef, statement } = vectorSearchQuery(args);
  const search = (tx: Db) => tx.execute(statement);
  // PGlite is a single connection that only this module tunes: set ef_search (and the iterative scan) on the session
  // when it changes and search in one round trip, instead of BEGIN, SET LOCAL, the search and COMMIT (4 round trips,
  // ~1 ms of a ~5 ms search). A pooled server connection could be anyone's next, so there the settings stay local to
  // a transaction.
  const session = (db as unknown as { session?: unknown }).session;
  const client = is(session, PgliteSession) ? (session as unknown as { client: object }).client : undefined;
  // (Inside a caller's transaction the handle is a PGlite Transaction, with rollback(): keep SET LOCAL there.)
  if (client && !('rollback' in client)) {
    if (sessionEf.get(client) !== ef) {
      await db.execute(sql`select set_config('hnsw.ef_search', ${String(ef)}, false), set_config('hnsw.iterative_scan', 'relaxed_order', false)`);
      sessionEf.set(client, ef);
    }
    return rowsOf<Row>(await search(db));
  }
  return db.transaction(async (tx) => {
    await tx.execute(sql`select set_config('hnsw.ef_search', ${String(ef)}, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)`);
    return rowsOf<Row>(await search(tx));
  });
}
