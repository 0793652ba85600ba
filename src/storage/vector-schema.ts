import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from './database.js';

// The vector half of the schema exists only where pgvector does, so it is created here (idempotently, after the SQL
// migrations) rather than in a migration that would fail on a server without the extension. Embedding dimensions
// differ per workspace, so the column is untyped and each dimension gets its own partial HNSW index on a typed
// expression.
//
// Storage is `halfvec` (16-bit floats): half the bytes per row on disk and in the buffer cache, and embedding models'
// own precision is far coarser than float16's ~3 significant digits. The HNSW index, though, is built on the
// float32 expression `embedding::vector(dims)`: measured on PGlite (WASM, no F16C), an HNSW build over halfvec
// values took ~4× as long as over float32 (5,000 × 384-d: 61 s vs 16 s on the shared 2-core machine), because every
// distance converts halves in software. The index stores the cast float32 values, so builds and searches run at
// float32 speed, and the table stays half-size. Above 2,000 dimensions (pgvector's limit for `vector` in HNSW) the
// index is built on halfvec itself (limit 4,000); beyond that search is exact. See `npm run bench -- search`.

/** HNSW build parameters; pgvector's defaults, kept explicit because the benchmark measures them. */
export const HNSW = { m: 16, efConstruction: 64 } as const;
/** pgvector's HNSW limits: `vector` up to 2,000 dimensions, `halfvec` up to 4,000; above, search stays exact. */
export const MAX_FLOAT32_INDEXED_DIMS = 2000;
export const MAX_INDEXED_DIMS = 4000;

export async function ensureVectorSchema(db: Db): Promise<void> {
  await db.execute(sql`create table if not exists chunk_embeddings (
    chunk_id uuid primary key references chunks(id) on delete cascade,
    workspace_id uuid not null references workspaces(id) on delete cascade,
    document_id uuid not null references documents(id) on delete cascade,
    dims integer not null,
    embedding halfvec not null)`);
  await db.execute(sql`create index if not exists chunk_embeddings_workspace_idx on chunk_embeddings (workspace_id)`);
  // Databases created before halfvec hold a float32 `vector` column with indexes on vector expressions: convert
  // once (in one transaction); the per-dimension halfvec indexes are rebuilt by ensureHnswIndex on next use.
  const [col] = rowsOf<{ type: string }>(
    await db.execute(sql`select format_type(atttypid, atttypmod) as type from pg_attribute
      where attrelid = 'chunk_embeddings'::regclass and attname = 'embedding'`),
  );
  if (col?.type === 'vector') {
    await db.transaction(async (tx) => {
      const old = rowsOf<{ name: string }>(
        await tx.execute(sql`select indexname as name from pg_indexes where tablename = 'chunk_embeddings' and indexname like 'chunk_embeddings_hnsw_%'`),
      );
      // Index names come from the catalogue and match our own fixed pattern: safe to splice.
      for (const o of old) if (/^chunk_embeddings_hnsw_\d+$/.test(o.name)) await tx.execute(sql.raw(`drop index if exists ${o.name}`));
      await tx.execute(sql`alter table chunk_embeddings alter column embedding type halfvec using embedding::halfvec`);
    });
  }
}

/** The typed expression every HNSW index and every search uses for one dimension (they must match exactly). */
export function embeddingExpr(dims: number): { expr: string; type: string; opclass: string } {
  checkDims(dims);
  const type = dims <= MAX_FLOAT32_INDEXED_DIMS ? `vector(${dims})` : `halfvec(${dims})`;
  return { expr: `embedding::${type}`, type, opclass: dims <= MAX_FLOAT32_INDEXED_DIMS ? 'vector_cosine_ops' : 'halfvec_cosine_ops' };
}

/** Named apart from the float32-column indexes of older databases (chunk_embeddings_hnsw_<dims>), dropped above. */
export const hnswIndexName = (dims: number) => `chunk_embeddings_hnsw_h${Math.trunc(dims)}`;

function checkDims(dims: number): void {
  if (!Number.isInteger(dims) || dims < 1 || dims > 16000) throw new Error(`invalid embedding dimension ${dims}`);
}

/**
 * An HNSW cosine index for one dimension (created the first time a workspace embeds at that size). Building is
 * fastest after a bulk load, and only while the graph fits in maintenance_work_mem: beyond it pgvector falls back to
 * a much slower on-disk build, so the build gets a generous budget for its own transaction.
 */
export async function ensureHnswIndex(db: Db, dims: number, opts: { maintenanceWorkMem?: string } = {}): Promise<void> {
  checkDims(dims);
  if (dims > MAX_INDEXED_DIMS) return;
  const mem = opts.maintenanceWorkMem ?? '512MB';
  if (!/^\d+(kB|MB|GB)$/.test(mem)) throw new Error(`invalid maintenance_work_mem ${mem}`);
  await db.transaction(async (tx) => {
    await tx.execute(sql.raw(`set local maintenance_work_mem = '${mem}'`));
    // dims is a validated integer: identifiers and typmods cannot be bound as parameters.
    const { expr, opclass } = embeddingExpr(dims);
    await tx.execute(
      sql.raw(`create index if not exists ${hnswIndexName(dims)} on chunk_embeddings
        using hnsw ((${expr}) ${opclass}) with (m = ${HNSW.m}, ef_construction = ${HNSW.efConstruction})
        where dims = ${dims}`),
    );
  });
}
