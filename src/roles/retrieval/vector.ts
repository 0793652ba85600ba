import { is, sql, type SQL } from 'drizzle-orm';
import { PgliteSession } from 'drizzle-orm/pglite';
import { rowsOf, type Db } from '../../storage/database.js';
import { quantizedExpr, quantizedLiteral } from '../../storage/vector-schema.js';
import type { Row } from './row.js';

/**
 * How many candidates the binary-quantised HNSW index returns for exact re-ranking (hnsw.ef_search, and the inner
 * LIMIT). Measured at 100,000 clustered 384-d vectors over three builds (bench/search.bench.js): recall@10 after
 * re-ranking 0.85–0.88 at 40 candidates, 0.93–0.97 at 64, 0.985–0.992 at 100 and 0.988–0.992 at 128, at p99 ~7 ms;
 * 128 leaves a margin for other builds and data. DOCUPOD_VECTOR_EF_SEARCH
 * overrides it.
 */
export const DEFAULT_EF_SEARCH = 128;

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
  const indexed = sql.raw(quantizedExpr(dims, 'e.embedding'));
  const bitType = sql.raw(`bit(${dims})`);
  const halfType = sql.raw(`halfvec(${dims})`);
  // HNSW returns at most ef_search rows: never fewer candidates than rows asked for.
  const ef = Math.trunc(Math.max(args.efSearch ?? DEFAULT_EF_SEARCH, limit));
  if (!(ef >= 1 && ef <= 1000)) throw new Error(`invalid hnsw.ef_search ${ef}`);
  // Three steps, each a subquery the planner keeps apart (they end in LIMIT): walk the index for ef_search
  // candidates and their exact distances; keep the candidates of indexed documents that pass the filters (the
  // candidate set is aliased `c` with the chunk's document_id, so the filters read as they do elsewhere) and take
  // the best `limit`; only then read those chunks' text. Reading the chunks row of every candidate cost ~4 ms of a
  // ~9 ms search at 100,000 chunks (a random page read each). As with a plain HNSW scan, which also returns at most
  // ef_search rows, a filter that excludes most of a workspace can leave fewer than `limit` results.
  const statement = sql`
      select c.id as chunk_id, c.document_id, d.source, d.title, c.heading_path, c.text, c.page, c.char_start, c.char_end,
        (1 - best.distance)::float8 as score
      from (
        select c.id, c.distance
        from (
          select e.chunk_id as id, e.document_id, (e.embedding <=> ${literal}::${halfType}) as distance
          from chunk_embeddings e
          where e.workspace_id = ${workspaceId} and e.dims = ${dims}
          order by ${indexed} <~> ${quantizedLiteral(query)}::${bitType}
          limit ${ef}) c
        join documents d on d.id = c.document_id and d.state = 'indexed'
        where true ${args.filters}
        order by c.distance, c.id
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
