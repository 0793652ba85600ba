import { sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Embedder } from '../../adapters/embed/embedder.js';
import { DocupodError, Problems } from '../../core/errors.js';
import type { JobContext, JobQueue } from '../../jobs/queue.js';
import type { Logger } from '../../observability/logger.js';
import { rowsOf, type Db } from '../../storage/database.js';
import { ensureHnswIndex } from '../../storage/vector-schema.js';
import { embeddingStatus, type EmbeddingStatus } from '../../storage/workspace-embedders.js';
import { embeddingText } from './chunks.js';
import { writeEmbeddings } from './embedding-writer.js';

// Each workspace records which embedder made its stored vectors (workspace_embedders). When the configured embedder
// differs — checked when the ingest role starts — the workspace's old vectors are removed at once (a query embedded
// by the new model must never be compared with the old model's vectors, even at the same dimension) and a durable
// re-embedding job embeds every chunk again into staged_embeddings, invisible to search. When every chunk has a
// staged vector, one transaction moves them into chunk_embeddings and records the new embedder and dimension. Until
// then the workspace searches lexically only (vector search finds nothing there; hybrid is lexical).
//
// The job is idempotent and resumable: its state is the staged rows, so a crash or restart continues with the chunks
// still missing, and a document indexed meanwhile stages its own vectors (see vectorDestination). Embedder `none`
// removes the vectors and records `none`.

export { embeddingStatus, type EmbeddingStatus };

interface RecordRow {
  embedder: string;
  dims: number | null;
  target: string | null;
  chunks_done: number;
  chunks_total: number;
  error: string | null;
}

export const REEMBED_JOB = 'ingest.reembed';
export const ReembedPayload = z.object({ workspaceId: z.uuid() });
export type ReembedPayload = z.infer<typeof ReembedPayload>;

/**
 * Called by the pipeline inside a document's final transaction, before its vectors are written: where they go.
 * 'live': chunk_embeddings (the workspace's recorded embedder is this one; recorded now on first use);
 * 'staged': a re-embedding to this embedder is under way, so they wait with the others in staged_embeddings;
 * 'skip': the workspace is recorded with another embedder (e.g. a pod with an older configuration): writing would
 * mix two models, so the document is indexed for lexical search only.
 * Holds the record's row lock (shared) until the transaction ends, so the re-embedding's swap cannot interleave.
 */
export async function vectorDestination(tx: Db, workspaceId: string, embedderId: string, dims: number): Promise<'live' | 'staged' | 'skip'> {
  await tx.execute(sql`insert into workspace_embedders (workspace_id, embedder, dims) values (${workspaceId}, ${embedderId}, ${dims}) on conflict (workspace_id) do nothing`);
  const [r] = rowsOf<RecordRow>(await tx.execute(sql`select embedder, dims, target from workspace_embedders where workspace_id = ${workspaceId} for share`));
  if (!r) return 'skip';
  if (r.target === embedderId) return 'staged';
  if (r.target !== null || r.embedder !== embedderId) return 'skip';
  if (r.dims === null) {
    await tx.execute(sql`update workspace_embedders set dims = ${dims}, updated_at = now() where workspace_id = ${workspaceId}`);
    return 'live';
  }
  return Number(r.dims) === dims ? 'live' : 'skip';
}

/** pgvector's text form, 7 significant digits (the vectors end up as halfvec). */
function vectorText(v: number[]): string {
  return `[${v
    .map((x) => {
      if (!Number.isFinite(x)) throw new Error(`the embedder returned a non-finite value (${x}); check the embedding model`);
      return +x.toPrecision(7);
    })
    .join(',')}]`;
}

/** Stores vectors of a re-embedding in progress (replacing any earlier staged vector of the same chunk). */
export async function stageEmbeddings(tx: Db, args: { workspaceId: string; embedder: string; chunkIds: string[]; embeddings: number[][] }): Promise<void> {
  const { workspaceId, embedder, chunkIds, embeddings } = args;
  if (chunkIds.length === 0) return;
  const dims = embeddings.map((e) => e.length);
  await tx.execute(sql`insert into staged_embeddings (chunk_id, workspace_id, embedder, dims, vector)
    select u.chunk_id, ${workspaceId}::uuid, ${embedder}, u.dims, u.vector
    from unnest(${pgArray(chunkIds)}::uuid[], ${pgArray(dims.map(String))}::int[], ${pgArray(embeddings.map(vectorText))}::text[]) as u(chunk_id, dims, vector)
    on conflict (chunk_id) do update set workspace_id = excluded.workspace_id, embedder = excluded.embedder, dims = excluded.dims, vector = excluded.vector`);
}

/** A Postgres array literal bound as one text parameter (drizzle would spread a JS array into many parameters). */
export function pgArray(values: string[]): string {
  return `{${values.map((v) => `"${v.replace(/["\\]/g, '\\$&')}"`).join(',')}}`;
}

export interface ReembedDeps {
  db: Db;
  jobs: JobQueue;
  embedder?: Embedder;
  vectorEnabled: boolean;
  log: Logger;
  /** Chunks per embedding request of the job (default 64). */
  batch?: number;
}

/**
 * At start: compares every workspace's recorded embedder with the configured one and starts (or keeps) a
 * re-embedding where they differ. Safe to run from several pods at once (each workspace is decided under its row
 * lock, and a job is enqueued only when none is queued or running). Returns the workspaces that are re-embedding.
 */
export async function reconcileEmbedders(deps: ReembedDeps): Promise<string[]> {
  const { db, log } = deps;
  if (!deps.vectorEnabled) return []; // no pgvector: no vectors were ever stored, nothing to keep in step
  const target = deps.embedder?.id ?? 'none';
  const rows = rowsOf<{ id: string; embedder: string | null; target: string | null; has_chunks: boolean }>(
    await db.execute(sql`select w.id, e.embedder, e.target, exists (select 1 from chunks c where c.workspace_id = w.id) as has_chunks
      from workspaces w left join workspace_embedders e on e.workspace_id = w.id
      where e.workspace_id is not null or exists (select 1 from chunks c where c.workspace_id = w.id)`),
  );
  const reembedding: string[] = [];
  for (const w of rows) {
    if (w.embedder !== null && w.target === null && w.embedder === target) continue;
    if (w.embedder === null) {
      // Indexed before embedders were recorded: vectors of one dimension were made by the configured embedder as far
      // as anyone can tell (the configuration is the only record there was), so adopt them instead of re-embedding.
      const dims = rowsOf<{ dims: number }>(await db.execute(sql`select distinct dims from chunk_embeddings where workspace_id = ${w.id}`));
      if (target !== 'none' && dims.length === 1) {
        await db.execute(sql`insert into workspace_embedders (workspace_id, embedder, dims) values (${w.id}, ${target}, ${Number(dims[0]!.dims)}) on conflict (workspace_id) do nothing`);
        log.info({ workspaceId: w.id, embedder: target, dims: Number(dims[0]!.dims) }, 'recorded the embedder of existing vectors');
        continue;
      }
      await db.execute(sql`insert into workspace_embedders (workspace_id, embedder) values (${w.id}, ${dims.length > 0 ? 'unknown' : 'none'}) on conflict (workspace_id) do nothing`);
    }
    const state = await switchEmbedder(deps, w.id, target);
    if (state === 'reembedding') reembedding.push(w.id);
  }
  return reembedding;
}

async function switchEmbedder(deps: ReembedDeps, workspaceId: string, target: string): Promise<'ready' | 'reembedding'> {
  const { db, log } = deps;
  return db.transaction(async (tx) => {
    const txDb = tx as unknown as Db;
    const [r] = rowsOf<RecordRow>(await tx.execute(sql`select embedder, dims, target from workspace_embedders where workspace_id = ${workspaceId} for update`));
    if (!r || (r.target === null && r.embedder === target)) return 'ready';
    const [{ chunks }] = rowsOf<{ chunks: number }>(await tx.execute(sql`select count(*)::int as chunks from chunks where workspace_id = ${workspaceId}`)) as [{ chunks: number }];
    if (r.target !== target) {
      // The old vectors go now, in the same transaction that records the switch: from here on queries are embedded
      // by the new model, and comparing them with the old model's vectors would rank nonsense.
      await tx.execute(sql`delete from chunk_embeddings where workspace_id = ${workspaceId}`);
      await tx.execute(sql`delete from staged_embeddings where workspace_id = ${workspaceId} and embedder <> ${target}`);
    }
    if (target === 'none' || Number(chunks) === 0) {
      await tx.execute(sql`update workspace_embedders set embedder = ${target}, dims = null, target = null, chunks_done = 0, chunks_total = 0, error = null, updated_at = now()
        where workspace_id = ${workspaceId}`);
      log.info({ workspaceId, from: r.target ?? r.embedder, embedder: target }, target === 'none' ? 'embedder is none: removed the workspace vectors (lexical search only)' : 'embedder changed on an empty index: recorded');
      return 'ready';
    }
    await tx.execute(sql`update workspace_embedders set embedder = 'none', dims = null, target = ${target}, chunks_total = ${chunks},
        chunks_done = (select count(*)::int from staged_embeddings where workspace_id = ${workspaceId} and embedder = ${target}), error = null, updated_at = now()
      where workspace_id = ${workspaceId}`);
    const [queued] = rowsOf(await tx.execute(sql`select 1 from jobs where name = ${REEMBED_JOB} and workspace_id = ${workspaceId} and state in ('queued', 'running') limit 1`));
    if (!queued) await deps.jobs.enqueue(REEMBED_JOB, { workspaceId } satisfies ReembedPayload, { workspaceId, maxAttempts: 20, db: txDb });
    log.info({ workspaceId, from: r.target ?? r.embedder, embedder: target, chunks: Number(chunks) }, 'embedder changed: re-embedding the workspace (vector search is off there until it finishes)');
    return 'reembedding';
  });
}

/** The re-embedding job: embeds the chunks still missing a staged vector, batch by batch, then swaps them in. */
export function createReembedder(deps: ReembedDeps) {
  const { db } = deps;
  const batch = deps.batch ?? 64;

  const run = async ({ workspaceId }: ReembedPayload, ctx: JobContext): Promise<void> => {
    const embedder = deps.embedder;
    if (!embedder || !deps.vectorEnabled) return;
    const target = embedder.id;
    const log = deps.log.child({ workspaceId, job: REEMBED_JOB });
    let lastLogged = -1;
    for (;;) {
      if (ctx.signal.aborted) throw new Error('stopped');
      const [r] = rowsOf<RecordRow>(await db.execute(sql`select embedder, dims, target, chunks_done, chunks_total from workspace_embedders where workspace_id = ${workspaceId}`));
      if (!r || r.target !== target) {
        // Finished meanwhile, or the workspace moved to yet another embedder (that process's job does it).
        log.info({ recorded: r?.embedder, target: r?.target }, 're-embedding not needed (any more)');
        return;
      }
      const rows = rowsOf<{ id: string; text: string; heading_path: string[]; title: string | null }>(
        await db.execute(sql`select c.id, c.text, c.heading_path, d.title from chunks c join documents d on d.id = c.document_id
          where c.workspace_id = ${workspaceId}
            and not exists (select 1 from staged_embeddings s where s.chunk_id = c.id and s.embedder = ${target})
          order by c.id limit ${batch}`),
      );
      if (rows.length === 0) {
        if (await swap(workspaceId, target, log, ctx)) return;
        continue; // a document was indexed between the scan and the swap: embed its chunks too
      }
      const vectors = await embedder.embed(
        rows.map((c) => embeddingText(c.title ?? undefined, { headingPath: c.heading_path ?? [], text: c.text })),
        ctx.signal,
      );
      if (vectors.length !== rows.length) throw new Error(`the embedder returned ${vectors.length} vectors for ${rows.length} texts`);
      await stageEmbeddings(db, { workspaceId, embedder: target, chunkIds: rows.map((c) => c.id), embeddings: vectors });
      const [p] = rowsOf<{ done: number; total: number }>(
        await db.execute(sql`update workspace_embedders set
            chunks_done = (select count(*)::int from staged_embeddings where workspace_id = ${workspaceId} and embedder = ${target}),
            chunks_total = (select count(*)::int from chunks where workspace_id = ${workspaceId}), updated_at = now()
          where workspace_id = ${workspaceId} and target = ${target} and ${ctx.holdsLease} returning chunks_done as done, chunks_total as total`),
      );
      if (p) {
        const pct = Math.floor((Number(p.done) / Math.max(1, Number(p.total))) * 10);
        if (pct !== lastLogged) {
          lastLogged = pct;
          log.info({ embedder: target, chunksDone: Number(p.done), chunksTotal: Number(p.total) }, 're-embedding progress');
        }
      }
      await ctx.heartbeat();
    }
  };

  /** Moves every staged vector into chunk_embeddings and records the embedder, in one transaction. False: not all chunks have one yet. */
  const swap = async (workspaceId: string, target: string, log: Logger, ctx: JobContext): Promise<boolean> => {
    const dims = rowsOf<{ dims: number }>(await db.execute(sql`select distinct dims from staged_embeddings where workspace_id = ${workspaceId} and embedder = ${target}`)).map((d) => Number(d.dims));
    if (dims.length > 1)
      throw new DocupodError(Problems.unprocessable, `the embedder ${target} returned vectors of different lengths (${dims.join(', ')}); check the model`, { retryable: false });
    if (dims.length === 1) await ensureHnswIndex(db, dims[0]!);
    const t0 = performance.now();
    const moved = await db.transaction(async (tx) => {
      const txDb = tx as unknown as Db;
      // A worker whose job was taken over leaves the swap to the new owner (see JobContext.lockLease).
      if (!(await ctx.lockLease(txDb))) throw new Error('lease lost: the re-embedding job was taken over');
      const [r] = rowsOf<RecordRow>(await tx.execute(sql`select target from workspace_embedders where workspace_id = ${workspaceId} for update`));
      if (!r || r.target !== target) return 0;
      const [missing] = rowsOf(
        await tx.execute(sql`select 1 from chunks c where c.workspace_id = ${workspaceId}
          and not exists (select 1 from staged_embeddings s where s.chunk_id = c.id and s.embedder = ${target}) limit 1`),
      );
      if (missing) return -1;
      await tx.execute(sql`delete from chunk_embeddings where workspace_id = ${workspaceId}`);
      // Document by document, so memory holds one document's vectors at a time (the transaction holds them all).
      const docs = rowsOf<{ document_id: string }>(await tx.execute(sql`select distinct document_id from chunks where workspace_id = ${workspaceId}`));
      let moved = 0;
      for (const { document_id: documentId } of docs) {
        const staged = rowsOf<{ chunk_id: string; vector: string }>(
          await tx.execute(sql`select s.chunk_id, s.vector from staged_embeddings s join chunks c on c.id = s.chunk_id
            where c.document_id = ${documentId} and s.embedder = ${target} order by c.idx`),
        );
        if (staged.length === 0) continue;
        await writeEmbeddings(txDb, { workspaceId, documentId, chunkIds: staged.map((r) => r.chunk_id), embeddings: staged.map((r) => JSON.parse(r.vector) as number[]) });
        moved += staged.length;
      }
      await tx.execute(sql`delete from staged_embeddings where workspace_id = ${workspaceId}`);
      await tx.execute(sql`update workspace_embedders set embedder = ${target}, dims = ${dims[0] ?? null}, target = null,
          chunks_done = ${moved}, chunks_total = ${moved}, error = null, updated_at = now()
        where workspace_id = ${workspaceId}`);
      return moved;
    });
    if (moved < 0) return false;
    log.info({ embedder: target, dims: dims[0], chunks: moved, swapMs: Math.round(performance.now() - t0) }, 're-embedding finished: the new vectors are searchable');
    return true;
  };

  /** When the job gives up for good: the reason shows in the workspace stats; the next start tries again. */
  const onFailed = async ({ workspaceId }: ReembedPayload, reason: string): Promise<void> => {
    await db.execute(sql`update workspace_embedders set error = ${reason}, updated_at = now() where workspace_id = ${workspaceId}`);
  };

  return { run, onFailed };
}
