import { sql } from 'drizzle-orm';
import { bigint, customType, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { workspaces } from './schema.js';

// Documents, their chunks, the durable job queue and the Postgres blob store. Every tenant row carries
// workspace_id. The vector side (chunk_embeddings) is created at run time only where pgvector exists; see
// src/storage/vector-schema.ts.

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });
const bytea = customType<{ data: Buffer }>({ dataType: () => 'bytea' });

export const DOCUMENT_STATES = ['uploaded', 'parsing', 'chunking', 'embedding', 'indexed', 'failed', 'cancelled'] as const;
export type DocumentState = (typeof DOCUMENT_STATES)[number];

export const documents = pgTable(
  'documents',
  {
    id: uuid('id').primaryKey(),
    workspaceId: uuid('workspace_id').notNull().references(() => workspaces.id, { onDelete: 'cascade' }),
    /** The name the user gave it (file name or relative path); a new upload under the same source replaces it. */
    source: text('source').notNull(),
    title: text('title'),
    mime: text('mime'),
    contentHash: text('content_hash').notNull(),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    blobKey: text('blob_key').notNull(),
    state: text('state', { enum: DOCUMENT_STATES }).notNull().default('uploaded'),
    /** Why it failed, in words a person can act on. */
    error: text('error'),
    pages: integer('pages'),
    chunkCount: integer('chunk_count').notNull().default(0),
    /** The document this upload replaces once it is indexed (same source, different content). */
    replacesId: uuid('replaces_id'),
    /** Progress for the SSE stream: step, done/total, bytes. */
    progress: jsonb('progress').notNull().default({}),
    createdBy: uuid('created_by'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    indexedAt: timestamp('indexed_at', { withTimezone: true }),
  },
  (t) => [
    index('documents_workspace_idx').on(t.workspaceId, t.createdAt),
    // One live copy of the same content per workspace: a second upload of identical bytes is a duplicate.
    uniqueIndex('documents_workspace_hash_key').on(t.workspaceId, t.contentHash).where(sql`state not in ('failed', 'cancelled')`),
  ],
);

export const chunks = pgTable(
  'chunks',
  {
    id: uuid('id').primaryKey(),
    workspaceId: uuid('workspace_id').notNull().references(() => workspaces.id, { onDelete: 'cascade' }),
    documentId: uuid('document_id').notNull().references(() => documents.id, { onDelete: 'cascade' }),
    idx: integer('idx').notNull(),
    text: text('text').notNull(),
    headingPath: text('heading_path').array().notNull().default(sql`'{}'::text[]`),
    page: integer('page'),
    charStart: integer('char_start').notNull(),
    charEnd: integer('char_end').notNull(),
    tokenCount: integer('token_count').notNull(),
    /** Weighted lexemes: title/headings weight A, body D (written with the workspace's text search config). */
    tsv: tsvector('tsv').notNull(),
    /** Number of lexeme occurrences, for BM25 length normalisation. */
    lexemeCount: integer('lexeme_count').notNull().default(0),
  },
  (t) => [
    uniqueIndex('chunks_document_idx_key').on(t.documentId, t.idx),
    index('chunks_workspace_idx').on(t.workspaceId),
    // No GIN index on tsv: lexical search reads the postings table, and the proximity re-score tests `tsv @@` on
    // its few candidate rows only, so a GIN index would only cost ingest time and disk (migration 0008).
  ],
);

/**
 * The inverted index with term frequencies: one row per (lexeme, chunk), written with the chunk in the transaction
 * that makes its document searchable. BM25 then reads only the postings of the query's lexemes instead of unnesting
 * every candidate chunk's tsvector. `tf` counts every occurrence, `tfHead` those in the title/headings (tsvector weight
 * A, which ranking may boost); `dl` is the chunk's lexeme count (BM25 length normalisation).
 */
export const postings = pgTable(
  'postings',
  {
    workspaceId: uuid('workspace_id').notNull(),
    term: text('term').notNull(),
    // No foreign key: its per-row check cost as much as the postings insert itself (~25% of indexing a document in
    // PGlite, EXPLAIN ANALYZE). A statement-level trigger on chunks deletes the postings of deleted chunks instead
    // (migration 0006), including chunks deleted by a cascade from their document or workspace.
    chunkId: uuid('chunk_id').notNull(),
    tf: integer('tf').notNull(),
    tfHead: integer('tf_head').notNull(),
    dl: integer('dl').notNull(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.term, t.chunkId] }), index('postings_chunk_idx').on(t.chunkId)],
);

/** Document frequencies per workspace and lexeme, maintained with the chunks, so BM25 scores in SQL. */
export const termStats = pgTable(
  'term_stats',
  {
    workspaceId: uuid('workspace_id').notNull().references(() => workspaces.id, { onDelete: 'cascade' }),
    term: text('term').notNull(),
    df: integer('df').notNull(),
  },
  (t) => [uniqueIndex('term_stats_key').on(t.workspaceId, t.term)],
);

export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;

/** The durable queue: leases with heartbeats, retries with backoff, a maximum of attempts. */
export const jobs = pgTable(
  'jobs',
  {
    id: uuid('id').primaryKey(),
    name: text('name').notNull(),
    workspaceId: uuid('workspace_id'),
    payload: jsonb('payload').notNull(),
    state: text('state', { enum: JOB_STATES }).notNull().default('queued'),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(5),
    runAt: timestamp('run_at', { withTimezone: true }).notNull().defaultNow(),
    lockedBy: text('locked_by'),
    lockedUntil: timestamp('locked_until', { withTimezone: true }),
    lastError: text('last_error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [index('jobs_ready_idx').on(t.state, t.runAt), index('jobs_workspace_idx').on(t.workspaceId)],
);

/** Blob store in Postgres itself: the distributed default, shared by every pod with no extra service. */
export const blobs = pgTable('blobs', {
  key: text('key').primaryKey(),
  workspaceId: uuid('workspace_id'),
  data: bytea('data').notNull(),
  sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Per-workspace totals for BM25 (chunk count and lexeme occurrences of indexed chunks), kept with term_stats. */
export const indexStats = pgTable('index_stats', {
  workspaceId: uuid('workspace_id').primaryKey().references(() => workspaces.id, { onDelete: 'cascade' }),
  chunks: integer('chunks').notNull().default(0),
  lexemes: bigint('lexemes', { mode: 'number' }).notNull().default(0),
  /**
   * Changes (from the sequence index_version_seq, so a value is never reused) in the transaction of every write to
   * the workspace's postings: the retrieval role's in-memory postings cache compares it on every query.
   */
  version: bigint('version', { mode: 'number' }).notNull().default(0),
});

/**
 * Which embedder made a workspace's stored vectors (chunk_embeddings), so a change of DOCUPOD_EMBED_* is noticed and
 * re-embeds instead of mixing vectors of two models. `embedder` is Embedder.id of the vectors in chunk_embeddings
 * ('none': the workspace holds no vectors); `target` is set while a re-embedding job moves the workspace to another
 * embedder (its vectors wait in staged_embeddings until the job swaps them in, in one transaction). See
 * src/roles/ingest/reembed.ts.
 */
export const workspaceEmbedders = pgTable('workspace_embedders', {
  workspaceId: uuid('workspace_id').primaryKey().references(() => workspaces.id, { onDelete: 'cascade' }),
  embedder: text('embedder').notNull(),
  dims: integer('dims'),
  target: text('target'),
  chunksDone: integer('chunks_done').notNull().default(0),
  chunksTotal: integer('chunks_total').notNull().default(0),
  /** Why the last re-embedding attempt failed (cleared when one succeeds). */
  error: text('error'),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Vectors of a re-embedding in progress, by chunk (pgvector's text form, so the table needs no extension). Invisible
 * to search; moved into chunk_embeddings when every chunk of the workspace has one. A crashed job resumes from them.
 */
export const stagedEmbeddings = pgTable(
  'staged_embeddings',
  {
    chunkId: uuid('chunk_id').primaryKey().references(() => chunks.id, { onDelete: 'cascade' }),
    workspaceId: uuid('workspace_id').notNull().references(() => workspaces.id, { onDelete: 'cascade' }),
    embedder: text('embedder').notNull(),
    dims: integer('dims').notNull(),
    vector: text('vector').notNull(),
  },
  (t) => [index('staged_embeddings_workspace_idx').on(t.workspaceId, t.embedder)],
);
