import { sql, type SQL } from 'drizzle-orm';
import { DocupodError, Problems } from '../../core/errors.js';
import { globToLike, reciprocalRankFusion } from '../../core/rank-fusion.js';
import { roleStatus } from '../../core/role-status.js';
import type { Embedder } from '../../adapters/embed/embedder.js';
import type { ImplOf } from '../../http/contract.js';
import { Gauge, Histogram, metric, type Registry } from '../../observability/metrics.js';
import { rowsOf, type Db } from '../../storage/database.js';
import { embeddingStatus } from '../../storage/workspace-embedders.js';
import { DEFAULT_BM25, lexicalSearch, type Bm25Params } from './lexical.js';
import { vectorSearch } from './vector.js';
import { PostingsCache } from './postings-cache.js';
import type { Row } from './row.js';
import type { RetrievalContract, SearchMode, SearchRequest, SearchResult } from './contract.js';

// Search over one workspace's indexed chunks. Lexical ranking is BM25 computed in SQL from the term statistics the
// ingest role maintains (Postgres's ts_rank_cd has no IDF and ranked below BM25 on our eval set), or identically in
// memory over the postings cache (postings-cache.ts) when it holds the query's terms; vector search is pgvector HNSW
// with cosine distance, and hybrid fuses both with reciprocal rank fusion.

export interface RetrievalDeps {
  db: Db;
  embedder?: Embedder;
  vectorEnabled: boolean;
  language: string;
  metrics: Registry;
  version: string;
  ready: () => Promise<true | string>;
  /** Vector candidates from the binary HNSW index re-ranked by exact cosine: higher = better recall, slower. */
  efSearch?: number;
  bm25?: Partial<Bm25Params>;
  /**
   * Bytes of postings lexical search may hold in memory (see postings-cache.ts); 0 scores every query in SQL.
   * Default DEFAULT_LEXICAL_CACHE_BYTES. Ignored when lexicalCache is given.
   */
  lexicalCacheBytes?: number;
  /** A cache made by the caller (the benchmark, to warm and measure it). */
  lexicalCache?: PostingsCache;
  /** Load the most frequent terms' postings in the background now (the server does; tests need not). */
  warmLexicalCache?: boolean;
}

/** DOCUPOD_LEXICAL_CACHE_MB's default: 128 MiB, ~8 million postings (~100,000+ chunks of typical documentation). */
export const DEFAULT_LEXICAL_CACHE_BYTES = 128 * 1024 * 1024;


export function createRetrievalService(deps: RetrievalDeps): ImplOf<typeof RetrievalContract> {
  const { db } = deps;
  const bm25: Bm25Params = { ...DEFAULT_BM25, ...deps.bm25 };
  const cache = deps.lexicalCache ?? new PostingsCache(db, deps.lexicalCacheBytes ?? DEFAULT_LEXICAL_CACHE_BYTES);
  // A failed warm-up only leaves the cache colder: queries load or fall back to SQL as they would anyway.
  if (deps.warmLexicalCache) void cache.warm().catch(() => {});
  metric(deps.metrics, 'docupod_lexical_cache_bytes', () => new Gauge({
    name: 'docupod_lexical_cache_bytes',
    help: 'Bytes of postings (and chunk ids) held by the lexical postings cache; see DOCUPOD_LEXICAL_CACHE_MB',
    registers: [deps.metrics],
    collect() {
      this.set(cache.stats().bytes);
    },
  }));
  const latency = metric(deps.metrics, 'docupod_retrieval_seconds', () => new Histogram({ name: 'docupod_retrieval_seconds', help: 'Search latency by mode', labelNames: ['mode'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [deps.metrics] }));
  const returned = metric(deps.metrics, 'docupod_retrieval_chunks_returned', () => new Histogram({ name: 'docupod_retrieval_chunks_returned', help: 'Chunks returned per search', labelNames: ['mode'] as const, buckets: [0, 1, 3, 5, 10, 20, 50, 100], registers: [deps.metrics] }));
  const canVector = () => deps.vectorEnabled && deps.embedder !== undefined;

  const filters = (req: SearchRequest): SQL => {
    const parts: SQL[] = [];
    if (req.documentIds?.length) parts.push(sql`and c.document_id in (${sql.join(req.documentIds.map((id) => sql`${id}::uuid`), sql`, `)})`);
    if (req.sources?.length) parts.push(sql`and (${sql.join(req.sources.map((g) => sql`d.source like ${globToLike(g)}`), sql` or `)})`);
    return sql.join(parts, sql` `);
  };

  const lexical = (workspaceId: string, req: SearchRequest, limit: number) =>
    lexicalSearch(db, { workspaceId, req, limit, language: deps.language, bm25, filters: filters(req), cache });

  const vector = async (workspaceId: string, req: SearchRequest, limit: number, notes: string[]): Promise<Row[]> => {
    if (!canVector())
      throw new DocupodError(Problems.badRequest, deps.vectorEnabled ? 'vector search needs an embedder: set DOCUPOD_EMBED_PROVIDER' : 'vector search needs pgvector in the database; this one is lexical-only');
    // Vectors of two embedders (or dimensions) must never be compared: while the ingest role re-embeds a workspace,
    // or while this pod's embedder differs from the one recorded (e.g. mid rolling update), vector search sits out
    // and says why instead of ranking by meaningless distances.
    const status = await embeddingStatus(db, workspaceId);
    if (status?.state === 'reembedding') {
      notes.push(`vector search is paused while this workspace is re-embedded with ${status.target} (${status.chunksDone}/${status.chunksTotal} chunks)`);
      return [];
    }
    if (status && status.embedder !== deps.embedder!.id) {
      notes.push(`vector search skipped: this workspace's vectors were made with ${status.embedder}, this server embeds with ${deps.embedder!.id}`);
      return [];
    }
    const [q] = await deps.embedder!.embed([req.query]);
    return vectorSearch(db, { workspaceId, query: q!, limit, efSearch: deps.efSearch, filters: filters(req) });
  };

  const toResult = (r: Row, score: number): SearchResult => ({
    chunkId: r.chunk_id,
    documentId: r.document_id,
    source: r.source,
    title: r.title,
    heading: (r.heading_path ?? []).at(-1) ?? r.title ?? '',
    headingPath: r.heading_path ?? [],
    text: r.text,
    page: r.page,
    charStart: Number(r.char_start),
    charEnd: Number(r.char_end),
    score,
  });

  const highlight = async (req: SearchRequest, results: SearchResult[]): Promise<void> => {
    if (results.length === 0) return;
    const rows = rowsOf<{ id: string; h: string }>(
      await db.execute(sql`select c.id, ts_headline(${deps.language}::regconfig, c.text, websearch_to_tsquery(${deps.language}::regconfig, ${req.query}),
          'StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=30, MinWords=10') as h
        from chunks c where c.id in (${sql.join(results.map((r) => sql`${r.chunkId}::uuid`), sql`, `)})`),
    );
    const byId = new Map(rows.map((r) => [r.id, r.h]));
    for (const r of results) r.highlight = byId.get(r.chunkId);
  };

  return {
    status: () => roleStatus('retrieval', deps.version, deps.ready),

    async search(input) {
      const { workspaceId, ...req } = input;
      let mode: SearchMode = req.mode ?? (canVector() ? 'hybrid' : 'lexical');
      const t0 = performance.now();
      let results: SearchResult[];
      const notes: string[] = [];
      // Hybrid is the default a client may ask for without knowing the install: with no vectors it is the lexical
      // half, said so in `notes` (an explicit vector search still fails with the reason).
      if (mode === 'hybrid' && !canVector()) {
        mode = 'lexical';
        notes.push(`hybrid search answered lexically: ${deps.vectorEnabled ? 'no embedder is configured (DOCUPOD_EMBED_PROVIDER=none)' : 'the database has no pgvector (lexical-only)'}`);
      }
      if (mode === 'lexical') results = (await lexical(workspaceId, req, req.k)).map((r) => toResult(r, Number(r.score)));
      else if (mode === 'vector') results = (await vector(workspaceId, req, req.k, notes)).map((r) => toResult(r, Number(r.score)));
      else {
        const depth = Math.max(req.k * 4, 40);
        const [lex, vec] = await Promise.all([lexical(workspaceId, req, depth), vector(workspaceId, req, depth, notes)]);
        results = reciprocalRankFusion([lex, vec], (r) => r.chunk_id)
          .slice(0, req.k)
          .map((f) => toResult(f.item, f.score));
      }
      if (req.highlight) await highlight(req, results);
      const tookMs = performance.now() - t0;
      latency.observe({ mode }, tookMs / 1000);
      returned.observe({ mode }, results.length);
      return { results, mode, tookMs: Math.round(tookMs * 100) / 100, ...(notes.length ? { notes } : {}) };
    },
  };
}
