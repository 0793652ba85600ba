import { and, eq, sql } from 'drizzle-orm';
import type { ParsedDocument } from '../../core/document-model.js';
import { DocupodError, Problems } from '../../core/errors.js';
import type { BlobStore } from '../../adapters/blob/blob-store.js';
import type { Embedder } from '../../adapters/embed/embedder.js';
import type { JobContext } from '../../jobs/queue.js';
import type { Logger } from '../../observability/logger.js';
import { Counter, Histogram, metric, type Registry } from '../../observability/metrics.js';
import type { Db } from '../../storage/database.js';
import { documents, type DocumentState } from '../../storage/schema-documents.js';
import { ensureHnswIndex } from '../../storage/vector-schema.js';
import type { DocumentProgress } from './contract.js';
import { removeDocumentIndex, writeDocumentIndex, type IndexChunk } from './index-writer.js';
import type { IngestPayload } from './service.js';
import { embeddingText } from './chunks.js';
import { stageEmbeddings, vectorDestination } from './reembed.js';

// The per-document state machine: uploaded → parsing → chunking → embedding → indexed (or failed / cancelled).
// Every step is idempotent: the work before the final transaction only reads the original and computes, so a
// worker killed anywhere leaves nothing visible, and the job (whose lease expires) simply runs again. The final
// transaction replaces the document's index and flips its state together.

export interface PipelineDeps {
  db: Db;
  blobs: BlobStore;
  embedder?: Embedder;
  vectorEnabled: boolean;
  language: string;
  /** May chunk too (ParserPool with `chunk`): then its `chunks` are used and `chunk` is not called. */
  parse: (bytes: Uint8Array, filename: string, signal: AbortSignal) => Promise<ParsedDocument & { chunks?: IndexChunk[] }>;
  chunk: (doc: ParsedDocument) => IndexChunk[];
  log: Logger;
  metrics: Registry;
  embedBatch?: number;
}

export function ingestMetrics(registry: Registry) {
  return {
    step: metric(registry, 'docupod_ingest_step_seconds', () => new Histogram({ name: 'docupod_ingest_step_seconds', help: 'Time spent per ingestion step', labelNames: ['state'] as const, buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300], registers: [registry] })),
    documents: metric(registry, 'docupod_ingest_documents_total', () => new Counter({ name: 'docupod_ingest_documents_total', help: 'Documents that finished ingestion, by final state', labelNames: ['state'] as const, registers: [registry] })),
    failures: metric(registry, 'docupod_ingest_failures_total', () => new Counter({ name: 'docupod_ingest_failures_total', help: 'Failed documents by reason class (problem type)', labelNames: ['reason'] as const, registers: [registry] })),
    chunks: metric(registry, 'docupod_ingest_chunks_total', () => new Counter({ name: 'docupod_ingest_chunks_total', help: 'Chunks written to the index', registers: [registry] })),
  };
}

export function createIngestPipeline(deps: PipelineDeps) {
  const m = ingestMetrics(deps.metrics);
  const { db } = deps;

  /** Progress writes count only while this attempt holds the job: a worker whose job was taken over overwrites nothing. */
  const setState = async (ctx: JobContext, documentId: string, state: DocumentState | undefined, progress: DocumentProgress) => {
    await db
      .update(documents)
      .set({ ...(state ? { state } : {}), progress, updatedAt: sql`now()` })
      .where(and(eq(documents.id, documentId), sql`${documents.state} not in ('cancelled')`, ctx.holdsLease));
  };

  /** Whether the document is still there to index: a delete or cancel may land at any point of a run. */
  const stillWanted = async (documentId: string) => {
    const [row] = await db.select({ state: documents.state }).from(documents).where(eq(documents.id, documentId));
    return row !== undefined && row.state !== 'cancelled';
  };

  // A delete while the job runs removes the row and the stored original: whatever step fails because of that (the
  // blob read, usually) ends the job quietly as "nothing to do", not as a failed job with a misleading reason.
  const run = async (payload: IngestPayload & { reindex?: boolean }, ctx: JobContext): Promise<void> => {
    try {
      await runOnce(payload, ctx);
    } catch (err) {
      if (!ctx.signal.aborted && !(await stillWanted(payload.documentId).catch(() => true))) {
        deps.log.debug({ documentId: payload.documentId }, 'document deleted or cancelled while it was indexed: job ends');
        return;
      }
      throw err;
    }
  };

  const runOnce = async (payload: IngestPayload & { reindex?: boolean }, ctx: JobContext): Promise<void> => {
    const [doc] = await db.select().from(documents).where(and(eq(documents.workspaceId, payload.workspaceId), eq(documents.id, payload.documentId)));
    if (!doc || doc.state === 'cancelled') return; // deleted or cancelled meanwhile: nothing to do
    if (doc.state === 'indexed' && !payload.reindex) return; // finished by an earlier attempt
    const wasIndexed = doc.state === 'indexed';
    // While re-indexing, the old index stays searchable: only progress changes until the final transaction.
    const stateFor = (s: DocumentState) => (wasIndexed ? undefined : s);
    const log = deps.log.child({ documentId: doc.id, workspaceId: doc.workspaceId });
    const bytesTotal = Number(doc.sizeBytes);

    let t = performance.now();
    const lap = (state: string) => {
      const now = performance.now();
      m.step.observe({ state }, (now - t) / 1000);
      t = now;
    };

    await setState(ctx, doc.id, stateFor('parsing'), { step: 'parsing', bytes: bytesTotal });
    const bytes = await deps.blobs.get(doc.blobKey);
    const parsed = await deps.parse(bytes, doc.source, ctx.signal);
    lap('parsing');
    await ctx.heartbeat();

    await setState(ctx, doc.id, stateFor('chunking'), { step: 'chunking', bytes: bytesTotal, pages: parsed.pages });
    const chunks = parsed.chunks ?? deps.chunk(parsed);
    lap('chunking');
    if (chunks.length === 0) {
      // Indexing nothing would report success for a document no search can ever find: say why instead.
      const why =
        bytesTotal === 0
          ? 'the file is empty (0 bytes); upload it again with its content'
          : parsed.mime === 'application/pdf'
            ? 'the PDF has no text layer (a scan or images only); run OCR on it and upload the result'
            : 'no text was found in it';
      throw new DocupodError(Problems.unprocessable, `"${doc.source}" has nothing to index: ${why}`, { retryable: false });
    }

    let embeddings: number[][] | undefined;
    if (deps.embedder && deps.vectorEnabled && chunks.length > 0) {
      const batch = deps.embedBatch ?? 64;
      embeddings = [];
      const started = performance.now();
      await setState(ctx, doc.id, stateFor('embedding'), { step: 'embedding', bytes: bytesTotal, pages: parsed.pages, chunksDone: 0, chunksTotal: chunks.length });
      for (let i = 0; i < chunks.length; i += batch) {
        if (ctx.signal.aborted) throw new Error('stopped');
        const vectors = await deps.embedder.embed(chunks.slice(i, i + batch).map((c) => embeddingText(parsed.title?.trim(), c)), ctx.signal);
        embeddings.push(...vectors);
        const done = Math.min(chunks.length, i + batch);
        const perChunk = (performance.now() - started) / done / 1000;
        await setState(ctx, doc.id, undefined, { step: 'embedding', bytes: bytesTotal, pages: parsed.pages, chunksDone: done, chunksTotal: chunks.length, etaSeconds: Math.round(perChunk * (chunks.length - done) * 10) / 10 });
        await ctx.heartbeat();
      }
      await ensureHnswIndex(db, embeddings[0]!.length);
      lap('embedding');
    }

    const title = parsed.title?.trim() || null;
    const finished = await db.transaction(async (tx) => {
      const txDb = tx as unknown as Db;
      // Only the job's current owner commits: a worker whose lease was taken over leaves it to the new one.
      if (!(await ctx.lockLease(txDb))) return false;
      // Re-check under the row lock that delete takes too: a delete or cancel may have happened while we worked, and
      // a delete waiting behind this commit reads the state written here (so BM25 statistics stay exact).
      const [current] = await tx.select({ state: documents.state }).from(documents).where(eq(documents.id, doc.id)).for('update');
      if (!current || current.state === 'cancelled') return false;
      // The replaced version is locked before any statistics are touched: a delete of it holds its row and then the
      // term_stats rows, so taking the rows in this order cannot deadlock with it, and its state is read under lock.
      const [old] = doc.replacesId
        ? await tx.select().from(documents).where(and(eq(documents.id, doc.replacesId), eq(documents.workspaceId, doc.workspaceId))).for('update')
        : [];
      await removeDocumentIndex(txDb, doc.workspaceId, doc.id, current.state === 'indexed');
      // The workspace's recorded embedder decides where the vectors go (see reembed.ts): never beside another model's.
      const destination = embeddings && deps.embedder ? await vectorDestination(txDb, doc.workspaceId, deps.embedder.id, embeddings[0]!.length) : 'skip';
      const ids = await writeDocumentIndex(txDb, { workspaceId: doc.workspaceId, documentId: doc.id, title, language: deps.language, chunks, embeddings: destination === 'live' ? embeddings : undefined });
      if (destination === 'staged') await stageEmbeddings(txDb, { workspaceId: doc.workspaceId, embedder: deps.embedder!.id, chunkIds: ids, embeddings: embeddings! });
      if (destination === 'skip' && embeddings) log.warn({ embedder: deps.embedder?.id }, 'the workspace records another embedder: indexed without vectors (lexical only) until it re-embeds');
      await tx
        .update(documents)
        .set({ state: 'indexed', title, mime: parsed.mime, pages: parsed.pages ?? null, chunkCount: chunks.length, error: null, indexedAt: sql`now()`, updatedAt: sql`now()`, progress: { step: 'indexed', bytes: bytesTotal, pages: parsed.pages, chunksDone: chunks.length, chunksTotal: chunks.length } })
        .where(eq(documents.id, doc.id));
      if (old) {
        // The new version is in; the old one leaves in the same transaction (searchers see one or the other).
        await removeDocumentIndex(txDb, doc.workspaceId, old.id, old.state === 'indexed');
        await tx.delete(documents).where(eq(documents.id, old.id));
        return { replacedBlob: old.blobKey };
      }
      return true;
    });
    if (typeof finished === 'object') await deps.blobs.delete(finished.replacedBlob).catch(() => {});
    if (finished) {
      m.documents.inc({ state: 'indexed' });
      m.chunks.inc(chunks.length);
      lap('indexing');
      log.info({ chunks: chunks.length, pages: parsed.pages, embedded: embeddings !== undefined }, 'document indexed');
    }
  };

  /** When the queue gives up (a file problem, or attempts exhausted): the document fails with the reason. */
  const onFailed = async (payload: unknown, reason: string, err: unknown): Promise<void> => {
    m.failures.inc({ reason: err instanceof DocupodError ? err.problem.type.replace('/problems/', '') : 'error' });
    const p = payload as IngestPayload;
    const [doc] = await db.select({ state: documents.state }).from(documents).where(eq(documents.id, p.documentId));
    if (!doc || doc.state === 'cancelled') return;
    // A failed re-index keeps the old index (state stays indexed) but records why.
    await db
      .update(documents)
      .set({ ...(doc.state === 'indexed' ? {} : { state: 'failed' as const }), error: reason, progress: { step: 'failed' }, updatedAt: sql`now()` })
      .where(eq(documents.id, p.documentId));
    m.documents.inc({ state: 'failed' });
  };

  return { run, onFailed };
}

