// Ingestion throughput of the Debian Reference HTML corpus (apt-get install debian-reference-en), same machine and
// run, two pipelines:
// - docupod: the real path minus HTTP — originals into the local blob store, IngestService.submit (content hash,
//   document rows, durable jobs), the job queue (2 workers: BENCH_INGEST_WORKERS) running the ingest pipeline: HTML
//   parsed and chunked in the worker pool (2 threads: BENCH_PARSER_THREADS), written with tsvectors, postings and
//   BM25 statistics to PGlite (file-backed), each document flipped to indexed in one transaction. The clock stops
//   when every document is indexed.
//   Where the time goes (profiled, Nov 2026): PGlite runs Postgres single-threaded on the main thread, and ~85% of
//   that thread is Postgres itself: per document one INSERT … SELECT whose cost is mostly the postings rows (one per
//   lexeme and chunk, ~52,000 here, each in two B-trees), to_tsvector, and the term statistics (the GIN index on
//   the tsvectors, ~20% of the indexing step, was dropped in migration 0008). The parser threads take most of the
//   rest; one pool serves every round (see run()).
// - LangChain.js: the same files' text (htmlparser2), RecursiveCharacterTextSplitter (1,000 characters, 128 overlap
//   ≈ docupod's 256 tokens / 32), and a MiniSearch index of the chunks, all in memory, nothing durable.
// Medians over BENCH_ROUNDS runs (default 3), each on a fresh database.
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import MiniSearch from 'minisearch';
import { RecursiveCharacterTextSplitter } from '@langchain/textsplitters';
import { benchDatabase, corpusFiles, dist, htmlText, machine, median } from './lib/common.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WORKERS = Number(process.env.BENCH_INGEST_WORKERS ?? 2);
/** Parser worker threads (the server's DOCUPOD_INGEST_PARSER_THREADS, default 2). */
const PARSER_THREADS = Number(process.env.BENCH_PARSER_THREADS ?? 2);

/**
 * CPU seconds of this process (every thread: main, parser workers) since c0. On a shared machine the wall clock
 * varies with other people's load several-fold between runs; CPU time varies far less, so both are reported.
 */
function cpuSeconds(c0) {
  const u = process.cpuUsage(c0);
  return (u.user + u.system) / 1e6;
}

async function docupodOnce(files, parsers) {
  const { LocalBlobStore } = await import(dist('adapters/blob/local.js'));
  const { createIngestPipeline } = await import(dist('roles/ingest/pipeline.js'));
  const { chunkForIndex } = await import(dist('roles/ingest/chunks.js'));
  const { createIngestService, INGEST_JOB, IngestPayload } = await import(dist('roles/ingest/service.js'));
  const { JobQueue } = await import(dist('jobs/queue.js'));
  const { silentLogger } = await import(dist('observability/logger.js'));
  const { createMetricsRegistry } = await import(dist('observability/metrics.js'));
  const { z } = await import('zod');

  const b = await benchDatabase();
  const blobDir = mkdtempSync(path.join(tmpdir(), 'docupod-bench-blobs-'));
  const blobs = new LocalBlobStore(blobDir);
  const chunkOptions = { chunkTokens: 256, overlapTokens: 32 };
  const log = silentLogger();
  const metrics = createMetricsRegistry({ defaultMetrics: false });
  const queue = new JobQueue({ db: b.db, log, metrics, pollMs: 20 });
  try {
    const pipeline = createIngestPipeline({
      db: b.db,
      blobs,
      vectorEnabled: b.database.vectorEnabled,
      language: 'english',
      parse: (bytes, filename) => parsers.parse(bytes, filename),
      chunk: (doc) => chunkForIndex(doc, chunkOptions),
      log,
      metrics,
    });
    queue.register(INGEST_JOB, IngestPayload.extend({ reindex: z.boolean().optional() }), pipeline.run, { concurrency: WORKERS, onFailed: pipeline.onFailed });
    queue.start();
    const service = createIngestService({ db: b.db, blobs, jobs: queue, version: 'bench', ready: async () => true });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const submitted = [];
    for (const f of files) {
      const blobKey = `${b.workspaceId}/${randomUUID()}`;
      await blobs.put(blobKey, f.bytes, b.workspaceId);
      submitted.push({ source: f.name, blobKey, sizeBytes: f.bytes.byteLength, contentHash: createHash('sha256').update(f.bytes).digest('hex') });
    }
    await service.submit({ workspaceId: b.workspaceId, files: submitted });
    for (;;) {
      const [r] = (await b.db.execute(sql`select count(*) filter (where state in ('indexed', 'failed'))::int as done, count(*) filter (where state = 'failed')::int as failed,
        coalesce(sum(chunk_count), 0)::int as chunks from documents`)).rows;
      if (r.done === files.length) {
        const s = (performance.now() - t0) / 1000;
        const cpu = cpuSeconds(c0);
        if (r.failed > 0) throw new Error(`${r.failed} documents failed`);
        // Where the time went, from the pipeline's own step histogram (summed over documents and workers).
        const steps = {};
        for (const v of (await metrics.getSingleMetric('docupod_ingest_step_seconds').get()).values)
          if (v.metricName?.endsWith('_sum')) steps[v.labels.state] = v.value;
        return { s, cpu, chunks: r.chunks, steps };
      }
      await new Promise((res) => setTimeout(res, 10));
    }
  } finally {
    await queue.stop();
    await b.close();
    rmSync(blobDir, { recursive: true, force: true });
  }
}

async function langchainOnce(files) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const splitter = new RecursiveCharacterTextSplitter({ chunkSize: 1000, chunkOverlap: 128 });
  const mini = new MiniSearch({ fields: ['text', 'source'], storeFields: ['source'] });
  let chunks = 0;
  for (const f of files) {
    const text = htmlText(f.bytes.toString('utf8'));
    const docs = await splitter.createDocuments([text], [{ source: f.name }]);
    mini.addAll(docs.map((d) => ({ id: chunks++, text: d.pageContent, source: f.name })));
  }
  return { s: (performance.now() - t0) / 1000, cpu: cpuSeconds(c0), chunks };
}

export async function run() {
  const files = corpusFiles();
  const mb = files.reduce((n, f) => n + f.bytes.byteLength, 0) / 1024 / 1024;
  console.log(`${machine()}; ${files.length} Debian Reference HTML files, ${mb.toFixed(2)} MiB; ${ROUNDS} rounds, medians`);
  const d = [];
  const l = [];
  // One parser pool for every round, as a server keeps one for its lifetime (src/modules/inits.ts; its workers chunk
  // too). Its threads warm up in round 1 as LangChain's main thread does (a cold pool parsed the corpus in ~0.54 s
  // of wall time, a warm one in ~0.16 s), so the median compares warm code with warm code.
  const { ParserPool } = await import(dist('roles/ingest/parse/index.js'));
  const { DEFAULT_LIMITS } = await import(dist('roles/ingest/parse/limits.js'));
  const parsers = new ParserPool({ size: PARSER_THREADS, limits: DEFAULT_LIMITS, chunk: { chunkTokens: 256, overlapTokens: 32 } });
  await parsers.parse(Buffer.from('<html><body><p>warm</p></body></html>'), 'warm.html');
  for (let r = 0; r < ROUNDS; r++) {
    d.push(await docupodOnce(files, parsers));
    l.push(await langchainOnce(files));
    const steps = Object.entries(d.at(-1).steps).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
    console.log(`  round ${r + 1}: docupod ${d.at(-1).s.toFixed(2)} s, CPU ${d.at(-1).cpu.toFixed(2)} s (${d.at(-1).chunks} chunks; step seconds summed over ${WORKERS} workers: ${steps}), LangChain ${l.at(-1).s.toFixed(2)} s, CPU ${l.at(-1).cpu.toFixed(2)} s (${l.at(-1).chunks} chunks); load average ${loadavg()[0].toFixed(1)}`);
  }
  await parsers.close();
  const ds = median(d.map((x) => x.s));
  const ls = median(l.map((x) => x.s));
  console.log(`docupod  (blob store, jobs, worker-pool parse, chunk, PGlite index; durable): ${ds.toFixed(2)} s, ${(mb / ds).toFixed(2)} MiB/s, ${(d[0].chunks / ds).toFixed(0)} chunks/s`);
  console.log(`LangChain (RecursiveCharacterTextSplitter + MiniSearch; in memory):          ${ls.toFixed(2)} s, ${(mb / ls).toFixed(2)} MiB/s, ${(l[0].chunks / ls).toFixed(0)} chunks/s`);
  console.log(`throughput ratio docupod/LangChain: ${(ls / ds).toFixed(2)}× (goal ≥ 5×); by CPU time: ${(median(l.map((x) => x.cpu)) / median(d.map((x) => x.cpu))).toFixed(2)}× (docupod ${median(d.map((x) => x.cpu)).toFixed(2)} s, LangChain ${median(l.map((x) => x.cpu)).toFixed(2)} s)`);
}
