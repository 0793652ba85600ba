import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from './database.js';

// The vector half of the schema exists only where pgvector does, so it is created here (idempotently, after the SQL
// migrations) rather than in a migration that would fail on a server without the extension. Embedding dimensions
// differ per workspace, so the column is untyped and each dimension gets its own partial HNSW index on a typed
// expression.
//
// Storage is `halfvec` (16-bit floats): half the bytes per row on disk and in the buffer cache, and embedding models'
// own precision is far coarser than float16's ~3 significant digits.
//
// The HNSW index is built on the *binary quantisation* of each vector (one sign bit per dimension, Hamming distance;
// pgvector ≥ 0.8 for the search's iterative scans), and a search re-ranks its candidates by exact cosine distance over
// the stored halfvec values (src/roles/retrieval/vector.ts), the two-stage search pgvector's README describes. Measured
// at 100,000 clustered 384-d vectors in PGlite (bench/search.bench.js): the graph over float32 took 70–83 s of CPU to
// build and 195 MB, because every graph step computes a 384-float distance in WASM without SIMD; over the 48-byte bit
// strings the build took ~32 s and 33 MB, and top-10 recall after re-ranking 100–128 candidates was 0.99 (0.976 for the
// float graph at ef_search 128) at lower latency. Bit strings also lift pgvector's HNSW limits of 2,000 (`vector`) and
// 4,000 (`halfvec`) dimensions: every dimension docupod accepts (≤ 16,000) is indexed. The cost: a model whose vectors
// do not spread around zero (every component positive, say) has uninformative sign bits, and recall drops unless
// DOCUPOD_VECTOR_EF_SEARCH (the candidates re-ranked) is raised.

/** HNSW build parameters; pgvector's defaults, kept explicit because the benchmark measures them. */
export const HNSW = { m: 16, efConstruction: 64 } as const;

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
  // Float-graph indexes of earlier versions (chunk_embeddings_hnsw_<dims> and _h<dims>) are replaced by the binary
  // ones: dropped, and a binary index is built for every dimension present (once, at the first start after upgrade).
  const floatIndexes = rowsOf<{ name: string }>(
    await db.execute(sql`select indexname as name from pg_indexes where tablename = 'chunk_embeddings' and indexname like 'chunk_embeddings_hnsw_%'`),
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
  if (floatIndexes.length > 0) {
    // Names come from the catalogue and match our own fixed pattern: safe to splice.
    for (const o of floatIndexes) if (/^chunk_embeddings_hnsw_h?\d+$/.test(o.name)) await db.execute(sql.raw(`drop index if exists ${o.name}`));
    const present = rowsOf<{ dims: number }>(await db.execute(sql`select distinct dims from chunk_embeddings`));
    for (const { dims } of present) await ensureHnswIndex(db, Number(dims));
  }
}

/** The expression every HNSW index and every search uses for one dimension (they must match exactly). */
export function quantizedExpr(dims: number, column = 'embedding'): string {
  checkDims(dims);
  return `binary_quantize(${column})::bit(${dims})`;
}

/** The query's side of quantizedExpr: pgvector's binary_quantize sets a bit for each component > 0. */
export function quantizedLiteral(query: readonly number[]): string {
  let bits = '';
  for (const x of query) bits += x > 0 ? '1' : '0';
  return bits;
}

export const hnswIndexName = (dims: number) => `chunk_embeddings_bq_${Math.trunc(dims)}`;

function checkDims(dims: number): void {
  if (!Number.isInteger(dims) || dims < 1 || dims > 16000) throw new Error(`invalid embedding dimension ${dims}`);
}

/**
 * The binary-quantised HNSW index for one dimension (created the first time a workspace embeds at that size).
 * Building is fastest after a bulk load, and only while the graph fits in maintenance_work_mem: beyond it pgvector
 * falls back to a much slower on-disk build, so the build gets a generous budget for its own transaction.
 */
export async function ensureHnswIndex(db: Db, dims: number, opts: { maintenanceWorkMem?: string } = {}): Promise<void> {
  checkDims(dims);
  const mem = opts.maintenanceWorkMem ?? '512MB';
  if (!/^\d+(kB|MB|GB)$/.test(mem)) throw new Error(`invalid maintenance_work_mem ${mem}`);
  await db.transaction(async (tx) => {
    await tx.execute(sql.raw(`set local maintenance_work_mem = '${mem}'`));
    // dims is a validated integer: identifiers and typmods cannot be bound as parameters.
    await tx.execute(
      sql.raw(`create index if not exists ${hnswIndexName(dims)} on chunk_embeddings
        using hnsw ((${quantizedExpr(dims)}) bit_hamming_ops) with (m = ${HNSW.m}, ef_construction = ${HNSW.efConstruction})
        where dims = ${dims}`),
    );
  });
}
