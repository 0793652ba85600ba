import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Db } from '../../storage/database.js';
import { chunks } from '../../storage/schema-documents.js';
import { writeEmbeddings } from './embedding-writer.js';
import { identifierText } from '../../core/identifiers.js';

// Writes and removes a document's searchable index: chunks (with weighted tsvectors), the BM25 term statistics and
// embeddings. Called inside the transaction that flips the document's state, so a document is searchable all at
// once or not at all.

export interface IndexChunk {
  text: string;
  headingPath: string[];
  page?: number;
  charStart: number;
  charEnd: number;
  tokenCount: number;
}

/** Rows per INSERT: keeps each statement's parameter count far below Postgres's 65,535 limit. */
export const INSERT_BATCH = 200;

export async function writeDocumentIndex(
  tx: Db,
  args: { workspaceId: string; documentId: string; title: string | null; language: string; chunks: IndexChunk[]; embeddings?: number[][] },
): Promise<string[]> {
  const { workspaceId, documentId, language } = args;
  const ids: string[] = [];
  const title = args.title ?? '';
  for (let start = 0; start < args.chunks.length; start += INSERT_BATCH) {
    const batch = args.chunks.slice(start, start + INSERT_BATCH);
    const values = batch.map((c, i) => {
      const id = randomUUID();
      ids.push(id);
      // Title and headings get weight A, body text D: ranking can favour a match in a heading.
      const head = [title, ...c.headingPath].filter(Boolean).join(' ');
      return {
        id,
        workspaceId,
        documentId,
        idx: start + i,
        text: c.text,
        headingPath: c.headingPath,
        page: c.page ?? null,
        charStart: c.charStart,
        charEnd: c.charEnd,
        tokenCount: c.tokenCount,
        // Identifiers whole and split (see identifierText) come after the text, so phrase positions stay intact.
        tsv: sql`setweight(to_tsvector(${language}::regconfig, ${head}), 'A') || setweight(to_tsvector(${language}::regconfig, ${c.text}), 'D')
          || setweight(to_tsvector(${language}::regconfig, ${identifierText(head)}), 'A') || setweight(to_tsvector(${language}::regconfig, ${identifierText(c.text)}), 'D')`,
      };
    });
    await tx.insert(chunks).values(values);
  }
  // Lexeme occurrences per chunk (BM25 document length), then this document's contribution to the statistics.
  await tx.execute(sql`update chunks c set lexeme_count = coalesce((select sum(coalesce(array_length(u.positions, 1), 1)) from unnest(c.tsv) u), 0)
    where c.document_id = ${documentId}`);
  // Postings: per (lexeme, chunk) occurrence counts, all and in headings (weight A), for BM25 without unnesting.
  await tx.execute(sql`insert into postings (workspace_id, term, chunk_id, tf, tf_head, dl)
    select c.workspace_id, u.lexeme, c.id, coalesce(array_length(u.positions, 1), 1),
      coalesce(array_length(array_positions(u.weights, 'A'::text), 1), 0), c.lexeme_count
    from chunks c, unnest(c.tsv) u where c.document_id = ${documentId}`);
  await adjustStats(tx, workspaceId, documentId, +1);
  if (args.embeddings && args.embeddings.length > 0) await writeEmbeddings(tx, { workspaceId, documentId, chunkIds: ids, embeddings: args.embeddings });
  return ids;
}

/** Removes a document's chunks (embeddings cascade); when they were counted in the statistics, uncounts them. */
export async function removeDocumentIndex(tx: Db, workspaceId: string, documentId: string, counted: boolean): Promise<void> {
  if (counted) await adjustStats(tx, workspaceId, documentId, -1);
  await tx.execute(sql`delete from chunks where workspace_id = ${workspaceId} and document_id = ${documentId}`);
}

async function adjustStats(tx: Db, workspaceId: string, documentId: string, sign: 1 | -1): Promise<void> {
  // Terms in sorted order so two documents indexing at once lock term_stats rows in the same order (no deadlock).
  await tx.execute(sql`
    insert into term_stats (workspace_id, term, df)
    select ${workspaceId}::uuid, t.term, ${sign}::int * count(*)::int
    from chunks c, unnest(tsvector_to_array(c.tsv)) as t(term)
    where c.workspace_id = ${workspaceId} and c.document_id = ${documentId}
    group by t.term order by t.term
    on conflict (workspace_id, term) do update set df = term_stats.df + excluded.df`);
  if (sign < 0) await tx.execute(sql`delete from term_stats where workspace_id = ${workspaceId} and df <= 0`);
  await tx.execute(sql`
    insert into index_stats (workspace_id, chunks, lexemes)
    select ${workspaceId}::uuid, ${sign}::int * count(*)::int, ${sign}::bigint * coalesce(sum(lexeme_count), 0)::bigint
    from chunks where workspace_id = ${workspaceId} and document_id = ${documentId}
    on conflict (workspace_id) do update set chunks = index_stats.chunks + excluded.chunks, lexemes = index_stats.lexemes + excluded.lexemes`);
}
