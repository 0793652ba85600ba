import { sql } from 'drizzle-orm';
import type { Db } from '../../storage/database.js';
import { INSERT_BATCH } from './index-writer.js';

/** Stores one vector per chunk (chunk_embeddings exists only where pgvector does; see src/storage/vector-schema.ts). */
export async function writeEmbeddings(tx: Db, args: { workspaceId: string; documentId: string; chunkIds: string[]; embeddings: number[][] }): Promise<void> {
  const { workspaceId, documentId, chunkIds, embeddings } = args;
  for (let start = 0; start < chunkIds.length; start += INSERT_BATCH) {
    const rows = chunkIds
      .slice(start, start + INSERT_BATCH)
      .map((id, i) => sql`(${id}::uuid, ${workspaceId}::uuid, ${documentId}::uuid, ${embeddings[start + i]!.length}, ${JSON.stringify(embeddings[start + i])}::vector)`);
    await tx.execute(sql`insert into chunk_embeddings (chunk_id, workspace_id, document_id, dims, embedding) values ${sql.join(rows, sql`, `)}`);
  }
}
