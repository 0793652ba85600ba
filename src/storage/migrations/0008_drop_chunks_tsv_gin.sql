-- Lexical search reads the postings table (0004); the proximity re-score tests `tsv @@` on its few candidate rows
-- only. The GIN index over every chunk's tsvector served no query and cost ingest time and disk.
DROP INDEX IF EXISTS "chunks_tsv_idx";
