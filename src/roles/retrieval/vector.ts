import { sql, type SQL } from 'drizzle-orm';
import { rowsOf, type Db } from '../../storage/database.js';
import { embeddingExpr } from '../../storage/vector-schema.js';
import type { Row } from './row.js';

/** Nearest chunks by cosine distance through the per-dimension HNSW index (see src/storage/vector-schema.ts). */
export async function vectorSearch(db: Db, args: { workspaceId: string; query: number[]; limit: number; efSearch?: number; filters: SQL }): Promise<Row[]> {
  const { workspaceId, limit, query } = args;
  const dims = query.length;
  const literal = JSON.stringify(query);
  // The same typed expression as the per-dimension HNSW index (see src/storage/vector-schema.ts), or the planner
  // cannot use it. dims is validated there: a typmod cannot be a bound parameter.
  const { expr, type } = embeddingExpr(dims);
  const column = sql.raw(`e.${expr}`);
  const cast = sql.raw(type);
  return db.transaction(async (tx) => {
    // Measured at 100,000 chunks (bench/search.bench.js): ef_search 40 → recall@10 0.898, 64 → 0.944, 100 → 0.973
    // at p99 ≈ 11 ms, so the default favours recall.
    await tx.execute(sql.raw(`set local hnsw.ef_search = ${Math.trunc(args.efSearch ?? Math.max(100, limit * 4))}`));
    const result = await tx.execute(sql`
      select c.id as chunk_id, c.document_id, d.source, d.title, c.heading_path, c.text, c.page, c.char_start, c.char_end,
        (1 - (${column} <=> ${literal}::${cast}))::float8 as score
      from chunk_embeddings e
      join chunks c on c.id = e.chunk_id
      join documents d on d.id = c.document_id and d.state = 'indexed'
      where e.workspace_id = ${workspaceId} and e.dims = ${dims} ${args.filters}
      order by ${column} <=> ${literal}::${cast}
      limit ${limit}`);
    return rowsOf<Row>(result);
  });
}
