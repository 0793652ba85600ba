import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Db } from '../../storage/database.js';
import { writeEmbeddings } from './embedding-writer.js';
import { identifierText } from '../../core/identifiers.js';

// Writes and removes a document's searchable index: chunks (with weighted tsvectors), the BM25 term statistics and
// embeddings. Called inside the transaction that flips the document's state, so a document is searchable all at
// once or not at all. Callers lock the document's row first (SELECT … FOR UPDATE) and pass `counted` from the state
// read under that lock: the statistics then count exactly the chunks of indexed documents.

export interface IndexChunk {
  text: string;
  headingPath: string[];
  page?: number;
  charStart: number;
  charEnd: number;
  tokenCount: number;
  /** identifierText(text), when the chunker already computed it (in the parser's worker thread). */
  identifiers?: string;
}

/** Rows per INSERT: keeps each statement's parameter count far below Postgres's 65,535 limit. */
export const INSERT_BATCH = 200;

/** Advisory-lock namespace ('dpix') of the per-workspace lock on the BM25 statistics. */
const STATS_LOCK_NAMESPACE = 0x64706978;

/**
 * One writer of a workspace's BM25 statistics at a time, until its transaction ends; called first by every writer
 * here (again in the same transaction is a no-op). Each such transaction updates the workspace's index_stats row
 * anyway, so they already wait for one another there; taking the lock before any term_stats row keeps them from
 * waiting while holding term rows. Without it a commit that uncounts old chunks and then counts new ones (two passes
 * over term_stats) deadlocks with a concurrent delete sharing some of those terms, and one of them fails.
 */
async function lockWorkspaceStats(tx: Db, workspaceId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${STATS_LOCK_NAMESPACE}::int, hashtext(${workspaceId}::text))`);
}

export async function writeDocumentIndex(
  tx: Db,
  args: { workspaceId: string; documentId: string; title: string | null; language: string; chunks: IndexChunk[]; embeddings?: number[][] },
): Promise<string[]> {
  const { workspaceId, documentId, language } = args;
  await lockWorkspaceStats(tx, workspaceId);
  const title = args.title ?? '';
  const ids = args.chunks.map(() => randomUUID());
  const headIds = new Map<string, string>(); // a section's chunks share their heading path
  // One statement per document: the chunks travel as one JSON parameter (no per-row parameters, no 65,535 limit),
  // each chunk's tsvector is computed once and unnested once, and the chunks, their postings, the BM25 term
  // statistics and the workspace totals are written from those same rows. Before, the chunks went in batches of
  // multi-row INSERTs and three more statements unnested every tsvector again (lexeme counts, postings, term
  // statistics): ~4× the work in PGlite's single-threaded WASM Postgres, which also runs the event loop.
  const rows = args.chunks.map((c, i) => {
    // Title and headings get weight A, body text D: ranking can favour a match in a heading.
    const head = [title, ...c.headingPath].filter(Boolean).join(' ');
    return {
      id: ids[i],
      idx: i,
      text: c.text,
      heading_path: c.headingPath,
      page: c.page ?? null,
      char_start: c.charStart,
      char_end: c.charEnd,
      token_count: c.tokenCount,
      head,
      // Identifiers whole and split (see identifierText) come after the text, so phrase positions stay intact.
      head_ids: headIds.get(head) ?? headIds.set(head, identifierText(head)).get(head)!,
      text_ids: c.identifiers ?? identifierText(c.text),
    };
  });
  const cfg = sql`${language}::regconfig`;
  await tx.execute(sql`
    with input as materialized (
      select r.id, r.idx, r.text, r.heading_path, r.page, r.char_start, r.char_end, r.token_count,
        setweight(to_tsvector(${cfg}, r.head), 'A') || setweight(to_tsvector(${cfg}, r.text), 'D')
          || setweight(to_tsvector(${cfg}, r.head_ids), 'A') || setweight(to_tsvector(${cfg}, r.text_ids), 'D') as tsv
      from json_to_recordset(${JSON.stringify(rows)}::json) as r(id uuid, idx int, text text, heading_path text[], page int,
        char_start int, char_end int, token_count int, head text, head_ids text, text_ids text)
    ),
    -- Per (lexeme, chunk): occurrences, all and in headings (weight A), for BM25 without unnesting at query time.
    occ as materialized (
      select i.id as chunk_id, u.lexeme as term, coalesce(array_length(u.positions, 1), 1) as tf,
        coalesce(array_length(array_positions(u.weights, 'A'::text), 1), 0) as tf_head
      from input i, unnest(i.tsv) u
    ),
    -- Lexeme occurrences per chunk: the BM25 document length.
    dl as materialized (
      select i.id as chunk_id, coalesce(sum(o.tf), 0)::int as dl from input i left join occ o on o.chunk_id = i.id group by i.id
    ),
    ins_chunks as (
      insert into chunks (id, workspace_id, document_id, idx, text, heading_path, page, char_start, char_end, token_count, tsv, lexeme_count)
      select i.id, ${workspaceId}::uuid, ${documentId}::uuid, i.idx, i.text, coalesce(i.heading_path, '{}'), i.page, i.char_start, i.char_end,
        i.token_count, i.tsv, d.dl
      from input i join dl d on d.chunk_id = i.id
    ),
    ins_postings as (
      insert into postings (workspace_id, term, chunk_id, tf, tf_head, dl)
      select ${workspaceId}::uuid, o.term, o.chunk_id, o.tf, o.tf_head, d.dl from occ o join dl d on d.chunk_id = o.chunk_id
    ),
    -- Terms in sorted order so two documents indexing at once lock term_stats rows in the same order (no deadlock).
    ins_terms as (
      insert into term_stats (workspace_id, term, df)
      select ${workspaceId}::uuid, o.term, count(*)::int from occ o group by o.term order by o.term
      on conflict (workspace_id, term) do update set df = term_stats.df + excluded.df
    )
    insert into index_stats (workspace_id, chunks, lexemes)
    select ${workspaceId}::uuid, count(*)::int, coalesce(sum(d.dl), 0)::bigint from dl d
    on conflict (workspace_id) do update set chunks = index_stats.chunks + excluded.chunks, lexemes = index_stats.lexemes + excluded.lexemes`);
  if (args.embeddings && args.embeddings.length > 0) await writeEmbeddings(tx, { workspaceId, documentId, chunkIds: ids, embeddings: args.embeddings });
  return ids;
}

/** Removes a document's chunks (embeddings cascade); when they were counted in the statistics, uncounts them. */
export async function removeDocumentIndex(tx: Db, workspaceId: string, documentId: string, counted: boolean): Promise<void> {
  await lockWorkspaceStats(tx, workspaceId);
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
