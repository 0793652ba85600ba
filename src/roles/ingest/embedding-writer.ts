import { sql } from 'drizzle-orm';
import type { Db } from '../../storage/database.js';
import { INSERT_BATCH } from './index-writer.js';

/** Stores one vector per chunk as halfvec (chunk_embeddings exists only where pgvector does; see src/storage/vector-schema.ts). */
export async function writeEmbeddings(tx: Db, args: { workspaceId: string; documentId: string; chunkIds: string[]; embeddings: number[][] }): Promise<void> {
  const { workspaceId, documentId, chunkIds, embeddings } = args;
  for (let start = 0; start < chunkIds.length; start += INSERT_BATCH) {
    const rows = chunkIds
      .slice(start, start + INSERT_BATCH)
      .map((id, i) => sql`(${id}::uuid, ${workspaceId}::uuid, ${documentId}::uuid, ${embeddings[start + i]!.length}, ${literal(embeddings[start + i]!)}::halfvec)`);
    await tx.execute(sql`insert into chunk_embeddings (chunk_id, workspace_id, document_id, dims, embedding) values ${sql.join(rows, sql`, `)}`);
  }
}

/**
 * pgvector's text form with 7 significant digits: stored as halfvec (~3 digits), so the 17 digits JSON.stringify
 * writes for a double are wasted bytes to send and parse (~2.5× the text per vector).
 */
function literal(v: number[]): string {
  return `[${v
    .map((x) => {
      if (!Number.isFinite(x)) throw new Error(`the embedder returned a non-finite value (${x}); check the embedding model`);
      return +x.toPrecision(7);
    })
    .join(',')}]`;
}
