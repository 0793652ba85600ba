import { randomUUID } from 'node:crypto';
import { and, asc, count, desc, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { DocupodError, Problems, fail } from '../../core/errors.js';
import { roleStatus } from '../../core/role-status.js';
import type { BlobStore } from '../../adapters/blob/blob-store.js';
import type { JobQueue } from '../../jobs/queue.js';
import type { Db } from '../../storage/database.js';
import { isUniqueViolation } from '../../storage/errors.js';
import { chunks, documents } from '../../storage/schema-documents.js';
import type { ImplOf } from '../../http/contract.js';
import type { DocumentInfo, IngestContract, SubmitResult } from './contract.js';
import { removeDocumentIndex } from './index-writer.js';
import { embeddingStatus } from './reembed.js';

export const INGEST_JOB = 'ingest.document';
export const IngestPayload = z.object({ workspaceId: z.uuid(), documentId: z.uuid() });
export type IngestPayload = z.infer<typeof IngestPayload>;

export interface IngestServiceDeps {
  db: Db;
  blobs: BlobStore;
  jobs: JobQueue;
  version: string;
  ready: () => Promise<true | string>;
}

type DocumentRow = typeof documents.$inferSelect;

export function toInfo(d: DocumentRow): DocumentInfo {
  const iso = (v: Date | string | null) => (v === null ? null : new Date(v).toISOString());
  return {
    id: d.id,
    workspaceId: d.workspaceId,
    source: d.source,
    title: d.title,
    mime: d.mime,
    sizeBytes: Number(d.sizeBytes),
    contentHash: d.contentHash,
    state: d.state,
    error: d.error,
    pages: d.pages,
    chunkCount: d.chunkCount,
    replacesId: d.replacesId,
    progress: (d.progress ?? {}) as DocumentInfo['progress'],
    createdAt: iso(d.createdAt)!,
    updatedAt: iso(d.updatedAt)!,
    indexedAt: iso(d.indexedAt),
  };
}

/** The ingest role's in-process implementation: document records, submission, deletion; the work runs in jobs. */
type ChunkRow = Pick<typeof chunks.$inferSelect, 'id' | 'documentId' | 'idx' | 'text' | 'headingPath' | 'page' | 'charStart' | 'charEnd'>;
const chunkColumns = {
  id: chunks.id,
  documentId: chunks.documentId,
  idx: chunks.idx,
  text: chunks.text,
  headingPath: chunks.headingPath,
  page: chunks.page,
  charStart: chunks.charStart,
  charEnd: chunks.charEnd,
};
const toChunkInfo = (c: ChunkRow) => ({
  chunkId: c.id,
  documentId: c.documentId,
  index: c.idx,
  text: c.text,
  headingPath: c.headingPath,
  page: c.page,
  charStart: c.charStart,
  charEnd: c.charEnd,
});

export function createIngestService(deps: IngestServiceDeps): ImplOf<typeof IngestContract> {
  const { db } = deps;

  const load = async (workspaceId: string, documentId: string): Promise<DocumentRow> => {
    const [row] = await db.select().from(documents).where(and(eq(documents.workspaceId, workspaceId), eq(documents.id, documentId)));
    if (!row) throw fail.notFound(`document ${documentId}`);
    return row;
  };

  return {
    status: () => roleStatus('ingest', deps.version, deps.ready),

    async submit({ workspaceId, userId, files }) {
      const results: SubmitResult[] = [];
      const liveCopy = async (contentHash: string) =>
        (
          await db
            .select()
            .from(documents)
            .where(and(eq(documents.workspaceId, workspaceId), eq(documents.contentHash, contentHash), sql`${documents.state} not in ('failed', 'cancelled')`))
        )[0];
      const duplicateOf = async (f: (typeof files)[number], dup: DocumentRow): Promise<SubmitResult> => {
        await deps.blobs.delete(f.blobKey).catch(() => {}); // the gateway stored it before we knew
        return { id: dup.id, source: dup.source, state: dup.state, duplicate: true, replacesId: dup.replacesId };
      };
      for (const f of files) {
        // Same bytes already live in this workspace: answer with that document, store and index nothing.
        const dup = await liveCopy(f.contentHash);
        if (dup) {
          results.push(await duplicateOf(f, dup));
          continue;
        }
        const id = randomUUID();
        const result = await db.transaction(async (tx) => {
          // A new upload under an existing source replaces that document once (and only if) it is indexed.
          const [previous] = await tx
            .select({ id: documents.id })
            .from(documents)
            .where(and(eq(documents.workspaceId, workspaceId), eq(documents.source, f.source), sql`${documents.state} not in ('failed', 'cancelled')`))
            .orderBy(desc(documents.createdAt))
            .limit(1);
          // The same bytes uploaded at the same moment (two requests, or twice in one) both pass the check above;
          // the unique index on live (workspace, hash) lets one insert through, and the other waits for it and
          // inserts nothing (see documents_workspace_hash_key).
          const inserted = await tx
            .insert(documents)
            .values({
              id,
              workspaceId,
              source: f.source,
              contentHash: f.contentHash,
              sizeBytes: f.sizeBytes,
              blobKey: f.blobKey,
              state: 'uploaded',
              replacesId: previous?.id ?? null,
              createdBy: userId,
              progress: { step: 'queued', bytes: f.sizeBytes },
            })
            .onConflictDoNothing({ target: [documents.workspaceId, documents.contentHash], where: sql`state not in ('failed', 'cancelled')` })
            .returning({ id: documents.id });
          if (inserted.length === 0) return undefined;
          await deps.jobs.enqueue(INGEST_JOB, { workspaceId, documentId: id } satisfies IngestPayload, { workspaceId, db: tx as unknown as Db });
          return { id, source: f.source, state: 'uploaded' as const, duplicate: false, replacesId: previous?.id ?? null };
        });
        if (result) {
          results.push(result);
          continue;
        }
        const winner = await liveCopy(f.contentHash);
        if (!winner) throw new Error(`an upload of the same content conflicted, but no live document holds hash ${f.contentHash}`);
        results.push(await duplicateOf(f, winner));
      }
      return { documents: results };
    },

    async list({ workspaceId, state, limit, offset }) {
      const where = state ? and(eq(documents.workspaceId, workspaceId), eq(documents.state, state)) : eq(documents.workspaceId, workspaceId);
      const rows = await db.select().from(documents).where(where).orderBy(desc(documents.createdAt)).limit(limit).offset(offset);
      const [{ n }] = (await db.select({ n: count() }).from(documents).where(where)) as [{ n: number }];
      return { documents: rows.map(toInfo), total: Number(n) };
    },

    async get({ workspaceId, documentId }) {
      return toInfo(await load(workspaceId, documentId));
    },

    async delete({ workspaceId, documentId }) {
      await load(workspaceId, documentId);
      await deps.jobs.cancelWhere(INGEST_JOB, 'documentId', documentId);
      const blobKey = await db.transaction(async (tx) => {
        // The row is locked and its state read here, not before: an indexing commit (which locks the same row) either
        // finished first, and its chunks are uncounted below as indexed ones, or waits and then finds the row gone.
        // A state read outside would miss a commit in between and leave its statistics behind for ever.
        const [doc] = await tx
          .select({ state: documents.state, blobKey: documents.blobKey })
          .from(documents)
          .where(and(eq(documents.workspaceId, workspaceId), eq(documents.id, documentId)))
          .for('update');
        if (!doc) return undefined; // deleted meanwhile by another request
        await removeDocumentIndex(tx as unknown as Db, workspaceId, documentId, doc.state === 'indexed');
        await tx.delete(documents).where(and(eq(documents.workspaceId, workspaceId), eq(documents.id, documentId)));
        return doc.blobKey;
      });
      if (blobKey === undefined) throw fail.notFound(`document ${documentId}`);
      await deps.blobs.delete(blobKey);
      return { deleted: true as const };
    },

    async reindex({ workspaceId, documentId }) {
      const doc = await load(workspaceId, documentId);
      if (!['indexed', 'failed', 'cancelled'].includes(doc.state))
        throw new DocupodError(Problems.conflict, `document ${documentId} is ${doc.state}; wait until it is indexed or failed`);
      await db
        .transaction(async (tx) => {
          // Stays searchable (state indexed) until the new index replaces the old in one transaction.
          await tx
            .update(documents)
            .set({ error: null, state: doc.state === 'indexed' ? 'indexed' : 'uploaded', progress: { step: 'queued', bytes: Number(doc.sizeBytes) }, updatedAt: sql`now()` })
            .where(eq(documents.id, documentId));
          await deps.jobs.enqueue(INGEST_JOB, { workspaceId, documentId, reindex: true }, { workspaceId, db: tx as unknown as Db });
        })
        .catch(async (err: unknown) => {
          // A failed document brought back while the same bytes were uploaded again since: one live copy only.
          if (!isUniqueViolation(err)) throw err;
          const [live] = await db
            .select({ id: documents.id, source: documents.source })
            .from(documents)
            .where(and(eq(documents.workspaceId, workspaceId), eq(documents.contentHash, doc.contentHash), sql`${documents.state} not in ('failed', 'cancelled')`));
          throw fail.conflict(
            `document ${documentId} has the same content as ${live ? `document ${live.id} ("${live.source}")` : 'another document'}, which is live in this workspace; use that one, or delete it first`,
          );
        });
      return toInfo(await load(workspaceId, documentId));
    },

    async chunks({ workspaceId, documentId, offset, limit }) {
      const doc = await load(workspaceId, documentId);
      const where = and(eq(chunks.workspaceId, workspaceId), eq(chunks.documentId, documentId));
      const rows = await db.select(chunkColumns).from(chunks).where(where).orderBy(asc(chunks.idx)).limit(limit).offset(offset);
      const [{ n }] = (await db.select({ n: count() }).from(chunks).where(where)) as [{ n: number }];
      return { document: toInfo(doc), chunks: rows.map(toChunkInfo), total: Number(n), offset };
    },

    async chunk({ workspaceId, chunkId }) {
      const [row] = await db.select(chunkColumns).from(chunks).where(and(eq(chunks.workspaceId, workspaceId), eq(chunks.id, chunkId)));
      if (!row) throw fail.notFound(`chunk ${chunkId}`);
      return { ...toChunkInfo(row), document: toInfo(await load(workspaceId, row.documentId)) };
    },

    async totals({ workspaceId }) {
      const rows = await db
        .select({ state: documents.state, n: count(), chunks: sql<number>`coalesce(sum(${documents.chunkCount}), 0)::int`, bytes: sql<number>`coalesce(sum(${documents.sizeBytes}), 0)::bigint` })
        .from(documents)
        .where(eq(documents.workspaceId, workspaceId))
        .groupBy(documents.state);
      const byState: Record<string, number> = {};
      let docsN = 0;
      let chunksN = 0;
      let bytes = 0;
      for (const r of rows) {
        byState[r.state] = Number(r.n);
        docsN += Number(r.n);
        if (r.state === 'indexed') chunksN += Number(r.chunks);
        bytes += Number(r.bytes);
      }
      return { documents: docsN, chunks: chunksN, bytes, byState, embedding: await embeddingStatus(db, workspaceId) };
    },
  };
}
