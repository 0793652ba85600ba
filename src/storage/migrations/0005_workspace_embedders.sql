CREATE TABLE "staged_embeddings" (
	"chunk_id" uuid PRIMARY KEY NOT NULL,
	"workspace_id" uuid NOT NULL,
	"embedder" text NOT NULL,
	"dims" integer NOT NULL,
	"vector" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "workspace_embedders" (
	"workspace_id" uuid PRIMARY KEY NOT NULL,
	"embedder" text NOT NULL,
	"dims" integer,
	"target" text,
	"chunks_done" integer DEFAULT 0 NOT NULL,
	"chunks_total" integer DEFAULT 0 NOT NULL,
	"error" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "staged_embeddings" ADD CONSTRAINT "staged_embeddings_chunk_id_chunks_id_fk" FOREIGN KEY ("chunk_id") REFERENCES "public"."chunks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "staged_embeddings" ADD CONSTRAINT "staged_embeddings_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workspace_embedders" ADD CONSTRAINT "workspace_embedders_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "public"."workspaces"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "staged_embeddings_workspace_idx" ON "staged_embeddings" USING btree ("workspace_id","embedder");