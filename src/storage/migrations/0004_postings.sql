CREATE TABLE "postings" (
	"workspace_id" uuid NOT NULL,
	"term" text NOT NULL,
	"chunk_id" uuid NOT NULL,
	"tf" integer NOT NULL,
	"tf_head" integer NOT NULL,
	"dl" integer NOT NULL,
	CONSTRAINT "postings_workspace_id_term_chunk_id_pk" PRIMARY KEY("workspace_id","term","chunk_id")
);
--> statement-breakpoint
ALTER TABLE "postings" ADD CONSTRAINT "postings_chunk_id_chunks_id_fk" FOREIGN KEY ("chunk_id") REFERENCES "public"."chunks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "postings_chunk_idx" ON "postings" USING btree ("chunk_id");--> statement-breakpoint
-- Backfill for chunks indexed before postings existed (same expression as src/roles/ingest/index-writer.ts).
INSERT INTO "postings" ("workspace_id", "term", "chunk_id", "tf", "tf_head", "dl")
SELECT c.workspace_id, u.lexeme, c.id, coalesce(array_length(u.positions, 1), 1),
  coalesce(array_length(array_positions(u.weights, 'A'::text), 1), 0), c.lexeme_count
FROM chunks c, unnest(c.tsv) u;
