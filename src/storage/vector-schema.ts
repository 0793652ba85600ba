import { sql } from 'drizzle-orm';
import type { Db } from './database.js';

// The vector half of the schema exists only where pgvector does, so it is created here (idempotently, after the SQL
// migrations) rather than in a migration that would fail on a server without the extension. Embedding dimensions
// differ per workspace, so the column is untyped `vector` and each dimension gets its own partial HNSW index.

export async function ensureVectorSchema(db: Db): Promise<void> {
  await db.execute(sql`create table if not exists chunk_embeddings (
    chunk_id uuid primary key references chunks(id) on delete cascade,
    workspace_id uuid not null references workspaces(id) on delete cascade,
    document_id uuid not null references documents(id) on delete cascade,
    dims integer not null,
    embedding vector not null)`);
  await db.execute(sql`create index if not exists chunk_embeddings_workspace_idx on chunk_embeddings (workspace_id)`);
}

/** An HNSW cosine index for one dimension (created the first time a workspace embeds at that size). */
export async function ensureHnswIndex(db: Db, dims: number): Promise<void> {
  if (!Number.isInteger(dims) || dims < 1 || dims > 16000) throw new Error(`invalid embedding dimension ${dims}`);
  // dims is a validated integer: identifiers and typmods cannot be bound as parameters.
  await db.execute(
    sql.raw(`create index if not exists chunk_embeddings_hnsw_${dims} on chunk_embeddings
      using hnsw ((embedding::vector(${dims})) vector_cosine_ops) where dims = ${dims}`),
  );
}
