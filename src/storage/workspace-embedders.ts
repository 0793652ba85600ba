import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from './database.js';

// Read side of workspace_embedders (written by the ingest role, src/roles/ingest/reembed.ts), here so any role can
// ask which embedder made a workspace's vectors: e.g. retrieval, to skip vector search with a note while a workspace
// re-embeds (state 'reembedding') or when its recorded embedder is not the one it queries with.

/** What a workspace's vectors are made with (absent: nothing recorded yet, e.g. no document embedded). */
export interface EmbeddingStatus {
  /** Embedder.id of the vectors in chunk_embeddings ('none': the workspace has no vectors). */
  embedder: string;
  dims: number | null;
  state: 'ready' | 'reembedding';
  /** While re-embedding: the embedder being moved to, and chunks embedded so far of the total. */
  target: string | null;
  chunksDone: number;
  chunksTotal: number;
  error: string | null;
}

export async function embeddingStatus(db: Db, workspaceId: string): Promise<EmbeddingStatus | undefined> {
  const [r] = rowsOf<{ embedder: string; dims: number | null; target: string | null; chunks_done: number; chunks_total: number; error: string | null }>(
    await db.execute(sql`select embedder, dims, target, chunks_done, chunks_total, error from workspace_embedders where workspace_id = ${workspaceId}`),
  );
  if (!r) return undefined;
  return {
    embedder: r.embedder,
    dims: r.dims === null ? null : Number(r.dims),
    state: r.target ? 'reembedding' : 'ready',
    target: r.target,
    chunksDone: Number(r.chunks_done),
    chunksTotal: Number(r.chunks_total),
    error: r.error,
  };
}
