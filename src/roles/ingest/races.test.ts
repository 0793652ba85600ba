import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { backends, freshDatabase, type Backend, type TestDatabase } from '../../../test/fixtures/database.js';
import { PostgresBlobStore } from '../../adapters/blob/postgres.js';
import { JobQueue, type JobContext } from '../../jobs/queue.js';
import { silentLogger } from '../../observability/logger.js';
import { createMetricsRegistry } from '../../observability/metrics.js';
import { rowsOf, type Db } from '../../storage/database.js';
import { workspaces } from '../../storage/schema.js';
import { chunkForIndex } from './chunks.js';
import { DEFAULT_LIMITS, parseDocument } from './parse/index.js';
import { createIngestPipeline } from './pipeline.js';
import { createIngestService, INGEST_JOB, IngestPayload } from './service.js';

// Races around a document's indexing. Deleting a document while its indexing commits: the BM25 statistics
// (term_stats, index_stats, postings) must always equal a rebuild from the chunks that remain. A worker whose job
// was taken over: it must write nothing of the document. The real service, pipeline and queue on a real database; on
// Postgres the two transactions really run at once, on PGlite they are serialised but interleave between statements.

let t: TestDatabase | undefined;
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
  await t?.close();
  t = undefined;
});

// Documents share most of their words, so a drift shows as a wrong df of a shared term, not only as a stray row.
const WORDS = ['backup', 'restore', 'archive', 'cluster', 'replica', 'vacuum', 'index', 'lease', 'worker', 'queue', 'shard', 'snapshot'];
const text = (i: number) =>
  `# Runbook ${i}\n\n${Array.from({ length: 40 }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]).join(' ')} unique${i}word.\n\n## Part two\n\nThe ${WORDS[i % WORDS.length]} step number ${i}.\n`;

/** The product's ingest parts on one database; `queue` may be a subclass that adds a barrier. */
async function setup(
  backend: Backend,
  makeQueue: (opts: ConstructorParameters<typeof JobQueue>[0]) => JobQueue = (o) => new JobQueue(o),
  wrap?: (documentId: string, ctx: JobContext, run: () => Promise<void>) => Promise<void>,
  makeBlobs: (db: Db) => PostgresBlobStore = (db) => new PostgresBlobStore(db),
) {
  t = await freshDatabase(backend);
  const db = t.database.db;
  const workspaceId = randomUUID();
  await db.insert(workspaces).values({ id: workspaceId, slug: `w-${workspaceId.slice(0, 8)}`, name: 'w', description: '' });
  const blobs = makeBlobs(db);
  const log = silentLogger();
  const metrics = createMetricsRegistry({ defaultMetrics: false });
  const queue = makeQueue({ db, log, metrics, pollMs: 10, backoffMs: 10 });
  const pipeline = createIngestPipeline({
    db,
    blobs,
    vectorEnabled: false,
    language: 'english',
    parse: (bytes, filename) => parseDocument(bytes, filename, DEFAULT_LIMITS),
    chunk: (doc) => chunkForIndex(doc, { chunkTokens: 24, overlapTokens: 4 }),
    log,
    metrics,
  });
  queue.register(INGEST_JOB, IngestPayload.extend({ reindex: z.boolean().optional() }), (p, ctx) => (wrap ? wrap(p.documentId, ctx, () => pipeline.run(p, ctx)) : pipeline.run(p, ctx)), {
    concurrency: 2,
    onFailed: pipeline.onFailed,
  });
  queue.start();
  stops.push(() => queue.stop());
  const service = createIngestService({ db, blobs, jobs: queue, version: 'test', ready: async () => true });
  const submit = async (source: string, content: string) => {
    const bytes = new TextEncoder().encode(content);
    const blobKey = `${workspaceId}/${randomUUID()}`;
    await blobs.put(blobKey, bytes, workspaceId);
    const contentHash = createHash('sha256').update(bytes).digest('hex');
    const { documents } = await service.submit({ workspaceId, userId: undefined, files: [{ source, blobKey, sizeBytes: bytes.byteLength, contentHash }] });
    return documents[0]!;
  };
  return { db, workspaceId, service, submit };
}

const stateOf = async (db: Db, id: string) => rowsOf<{ state: string }>(await db.execute(sql`select state from documents where id = ${id}`))[0]?.state;

async function until(check: () => Promise<boolean> | boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('timed out');
}

const idle = async (db: Db) =>
  until(async () => rowsOf<{ n: number }>(await db.execute(sql`select count(*)::int as n from jobs where state in ('queued', 'running')`))[0]!.n === 0);

/** The statistics as stored, and as a rebuild from the remaining chunks computes them; the test wants them equal. */
async function statistics(db: Db, workspaceId: string) {
  const q = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await db.execute(query));
  const stored = {
    terms: await q<{ term: string; df: number }>(sql`select term, df from term_stats where workspace_id = ${workspaceId} order by term`),
    totals: await q<{ chunks: number; lexemes: string }>(sql`select chunks, lexemes::text from index_stats where workspace_id = ${workspaceId}`),
    postings: await q<{ n: number }>(sql`select count(*)::int as n from postings where workspace_id = ${workspaceId}`),
  };
  const rebuilt = {
    terms: await q<{ term: string; df: number }>(sql`select t.term, count(*)::int as df from chunks c, unnest(tsvector_to_array(c.tsv)) as t(term)
      where c.workspace_id = ${workspaceId} group by t.term order by t.term`),
    totals: await q<{ chunks: number; lexemes: string }>(sql`select count(*)::int as chunks, coalesce(sum(lexeme_count), 0)::bigint::text as lexemes
      from chunks where workspace_id = ${workspaceId}`),
    postings: await q<{ n: number }>(sql`select count(*)::int as n from chunks c, unnest(tsvector_to_array(c.tsv)) as t(term) where c.workspace_id = ${workspaceId}`),
  };
  // A workspace that never had an indexed chunk has no index_stats row yet: the same as zero.
  if (stored.totals.length === 0) stored.totals = [{ chunks: 0, lexemes: '0' }];
  const strays = await q<{ n: number }>(sql`select count(*)::int as n from chunks c left join documents d on d.id = c.document_id
    where c.workspace_id = ${workspaceId} and (d.id is null or d.state <> 'indexed')`);
  return { stored, rebuilt, strays: strays[0]!.n };
}

describe.each(backends())('deleting a document while it is indexed, on %s', (backend) => {
  it('uncounts the chunks of an indexing that committed after the delete first read the document', async () => {
    // The barrier sits in the real path: delete has read the document (not yet indexed) and is about to cancel its
    // queued jobs; the job commits the index right then. A delete that decided "not indexed, nothing to uncount"
    // from that earlier read would leave the committed chunks counted in the statistics for ever.
    const hold: { allBut?: string } = {}; // once set: every other document's job waits for the barrier
    let deleteHasRead!: () => void;
    const readByDelete = new Promise<void>((r) => (deleteHasRead = r));
    class CommitDuringDelete extends JobQueue {
      override async cancelWhere(name: string, field: string, value: string): Promise<void> {
        if (hold.allBut && value !== hold.allBut) {
          deleteHasRead();
          await until(async () => (await stateOf(s.db, value)) === 'indexed');
        }
        return super.cancelWhere(name, field, value);
      }
    }
    const s = await setup(backend, (o) => new CommitDuringDelete(o), async (documentId, _ctx, run) => {
      if (hold.allBut && documentId !== hold.allBut) await readByDelete; // starts only once delete has read the document
      await run();
    });
    const keep = await s.submit('keep.md', text(1));
    await until(async () => (await stateOf(s.db, keep.id)) === 'indexed');

    hold.allBut = keep.id;
    const gone = await s.submit('gone.md', text(2));
    expect(await stateOf(s.db, gone.id)).not.toBe('indexed');
    await s.service.delete({ workspaceId: s.workspaceId, documentId: gone.id });
    await idle(s.db);

    expect(await stateOf(s.db, gone.id)).toBeUndefined();
    const st = await statistics(s.db, s.workspaceId);
    expect(st.strays).toBe(0);
    expect(st.stored).toEqual(st.rebuilt);
    expect(st.rebuilt.totals[0]!.chunks).toBeGreaterThan(0); // the kept document is still counted
  });

  it('ends the job quietly, not failed, when the document and its original are deleted while the job reads them', async () => {
    // The job has read the document row and waits to read the stored original; the delete removes both right then.
    let reading!: () => void;
    const jobReads = new Promise<void>((r) => (reading = r));
    let release!: () => void;
    const deleted = new Promise<void>((r) => (release = r));
    const gated = new Set<string>();
    class GatedBlobs extends PostgresBlobStore {
      override async get(key: string) {
        if (gated.has(key)) {
          reading();
          await deleted;
        }
        return super.get(key);
      }
    }
    const s = await setup(backend, undefined, undefined, (db) => new GatedBlobs(db));
    const bytes = new TextEncoder().encode(text(3));
    const key = `${s.workspaceId}/${randomUUID()}`;
    gated.add(key);
    const blobs = new PostgresBlobStore(s.db);
    await blobs.put(key, bytes, s.workspaceId);
    const { documents: [doc] } = await s.service.submit({
      workspaceId: s.workspaceId,
      userId: undefined,
      files: [{ source: 'gone.md', blobKey: key, sizeBytes: bytes.byteLength, contentHash: createHash('sha256').update(bytes).digest('hex') }],
    });
    await jobReads;
    await s.service.delete({ workspaceId: s.workspaceId, documentId: doc!.id });
    release();
    await idle(s.db);
    const jobRows = rowsOf<{ state: string; last_error: string | null }>(await s.db.execute(sql`select state, last_error from jobs where payload->>'documentId' = ${doc!.id}`));
    expect(jobRows).toEqual([{ state: 'done', last_error: null }]);
  });

  it('keeps the statistics equal to a rebuild over many deletes racing their indexing and replacements, without deadlocks', async () => {
    const s = await setup(backend);
    const indexed = async (source: string, content: string) => {
      const d = await s.submit(source, content);
      await until(async () => (await stateOf(s.db, d.id)) === 'indexed');
      return d;
    };
    const t0 = Date.now();
    await indexed('kept.md', text(0));
    const indexMs = Date.now() - t0; // how long one indexing takes here: the deletes are spread over that window
    const rounds = 24;
    let deletedIndexed = 0;
    let deletedEarly = 0;
    for (let i = 1; i <= rounds; i++) {
      // Three races, in turn: delete a document while it is indexed; delete the old version of a file while its new
      // version commits (and removes it); delete another document while a new version of a file commits.
      const kind = i % 3;
      const old = kind === 0 ? undefined : await indexed(`r${i}.md`, text(1000 + i));
      const other = kind === 2 ? await indexed(`o${i}.md`, text(2000 + i)) : undefined;
      const doc = await s.submit(old ? `r${i}.md` : `d${i}.md`, text(i));
      const victim = kind === 0 ? doc : kind === 1 ? old! : other!;
      // Spread the delete over the document's indexing, from before parsing to past its commit.
      const delay = ((Math.floor((i - 1) / 3) % 4) / 4) * 1.5 * indexMs; // each race at each of four delays
      if (delay > 0) await new Promise((r) => setTimeout(r, delay)); // 0: at once, before the job even starts
      const before = await stateOf(s.db, doc.id);
      await s.service.delete({ workspaceId: s.workspaceId, documentId: victim.id }).catch((err: { status?: number }) => {
        if (!(kind === 1 && err.status === 404)) throw err; // the new version's commit may remove the old one first
      });
      if (before === 'indexed') deletedIndexed++;
      else deletedEarly++;
    }
    await idle(s.db);
    const st = await statistics(s.db, s.workspaceId);
    expect(st.strays).toBe(0);
    expect(st.stored).toEqual(st.rebuilt);
    // No commit failed on the way either (a deadlock would fail the job's attempt and leave its reason behind).
    expect(rowsOf(await s.db.execute(sql`select last_error from jobs where last_error is not null`))).toEqual([]);
    // Both sides of the race happened: deletes before the indexing committed, and after.
    expect(deletedEarly).toBeGreaterThan(0);
    expect(deletedIndexed).toBeGreaterThan(0);
  }, 120_000);
});

describe.each(backends())('a worker whose ingest job was taken over, on %s', (backend) => {
  it('writes no progress of the document the new owner is indexing', async () => {
    let releaseFirst!: () => void;
    const firstMayRun = new Promise<void>((r) => (releaseFirst = r));
    let releaseSecond!: () => void;
    const secondMayRun = new Promise<void>((r) => (releaseSecond = r));
    const entered: number[] = [];
    let firstDone = false;
    const s = await setup(backend, undefined, async (_documentId, ctx, run) => {
      entered.push(ctx.attempt);
      if (ctx.attempt === 1) {
        await firstMayRun;
        await run().finally(() => (firstDone = true));
      } else {
        await secondMayRun;
        await run();
      }
    });
    // A failed expectation must not leave a handler waiting: the queue's stop would wait for it.
    stops.push(async () => (releaseFirst(), releaseSecond()));
    const doc = await s.submit('taken.md', text(7));
    await until(() => entered.includes(1));
    // Its lease runs out (as if its heartbeats had stalled); the queue's other loop claims the job: attempt 2.
    await s.db.execute(sql`update jobs set locked_until = now() - interval '1 second' where payload->>'documentId' = ${doc.id}`);
    await until(() => entered.includes(2));
    const before = rowsOf<{ state: string; progress: unknown }>(await s.db.execute(sql`select state, progress from documents where id = ${doc.id}`))[0]!;
    releaseFirst(); // the first attempt now runs the pipeline: "parsing", then its heartbeat finds the lease gone
    await until(() => firstDone);
    expect(rowsOf(await s.db.execute(sql`select state, progress from documents where id = ${doc.id}`))[0]).toEqual(before);
    expect(before.state).toBe('uploaded');
    releaseSecond();
    await until(async () => (await stateOf(s.db, doc.id)) === 'indexed');
    const st = await statistics(s.db, s.workspaceId);
    expect(st.stored).toEqual(st.rebuilt);
  });
});
