-- Postings of deleted chunks go with them through one statement-level trigger instead of a foreign key, whose
-- per-row check on every inserted posting cost as much as the insert itself (see schema-documents.ts).
CREATE FUNCTION "postings_delete_with_chunks"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "postings" p USING "gone" g WHERE p."chunk_id" = g."id";
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "chunks_delete_postings" AFTER DELETE ON "chunks" REFERENCING OLD TABLE AS "gone"
  FOR EACH STATEMENT EXECUTE FUNCTION "postings_delete_with_chunks"();--> statement-breakpoint
ALTER TABLE "postings" DROP CONSTRAINT "postings_chunk_id_chunks_id_fk";
