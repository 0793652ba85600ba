ALTER TABLE "index_stats" ADD COLUMN "version" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
-- A workspace's index version changes in the same transaction as any write to its postings (the ingest index
-- writer's inserts, deletes through the chunks trigger of 0006, cascades), so the retrieval role's in-memory
-- postings cache can tell on every query whether what it holds is current. Statement-level triggers: one UPDATE per
-- statement, not per posting. Values come from a sequence so a version is never reused, even if a workspace's
-- index_stats row is deleted and created again.
CREATE SEQUENCE "index_version_seq";--> statement-breakpoint
CREATE FUNCTION "postings_bump_index_version"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "index_stats" s SET "version" = nextval('index_version_seq')
  WHERE s."workspace_id" IN (SELECT DISTINCT c."workspace_id" FROM "changed" c);
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "postings_insert_version" AFTER INSERT ON "postings" REFERENCING NEW TABLE AS "changed"
  FOR EACH STATEMENT EXECUTE FUNCTION "postings_bump_index_version"();--> statement-breakpoint
CREATE TRIGGER "postings_delete_version" AFTER DELETE ON "postings" REFERENCING OLD TABLE AS "changed"
  FOR EACH STATEMENT EXECUTE FUNCTION "postings_bump_index_version"();--> statement-breakpoint
CREATE TRIGGER "postings_update_version" AFTER UPDATE ON "postings" REFERENCING NEW TABLE AS "changed"
  FOR EACH STATEMENT EXECUTE FUNCTION "postings_bump_index_version"();
