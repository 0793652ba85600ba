import { sql, type SQL } from 'drizzle-orm';
import { DocupodError, Problems } from '../../core/errors.js';
import { globToLike, reciprocalRankFusion } from '../../core/rank-fusion.js';
import { roleStatus } from '../../core/role-status.js';
import type { Embedder } from '../../adapters/embed/embedder.js';
import type { ImplOf } from '../../http/contract.js';
import { Histogram, metric, type Registry } from '../../observability/metrics.js';
import { rowsOf, type Db } from '../../storage/database.js';
import type { RetrievalContract, SearchMode, SearchRequest, SearchResult } from './contract.js';

// Search over one workspace's indexed chunks. Lexical ranking is BM25 computed in SQL from the term statistics the
// ingest role maintains (Postgres's ts_rank_cd has no IDF and ranked below BM25 on our eval set), vector search is
// pgvector HNSW with cosine distance, and hybrid fuses both with reciprocal rank fusion.

export interface RetrievalDeps {
  db: Db;
  embedder?: Embedder;
  vectorEnabled: boolean;
  language: string;
  metrics: Registry;
  version: string;
  ready: () => Promise<true | string>;
  /** HNSW candidate list size: higher = better recall, slower. */
  efSearch?: number;
  bm25?: { k1: number; b: number; headingBoost: number };
}

const DEFAULT_BM25 = { k1: 1.2, b: 0.75, headingBoost: 2 };

interface Row {
  chunk_id: string;
  document_id: string;
  source: string;
  title: string | null;
  heading_path: string[];
  text: string;
  page: number | null;
  char_start: number;
  char_end: number;
  score: number;
}

export function createRetrievalService(deps: RetrievalDeps): ImplOf<typeof RetrievalContract> {
  const { db } = deps;
  const bm25 = deps.bm25 ?? DEFAULT_BM25;
  const latency = metric(deps.metrics, 'docupod_retrieval_seconds', () => new Histogram({ name: 'docupod_retrieval_seconds', help: 'Search latency by mode', labelNames: ['mode'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [deps.metrics] }));
  const returned = metric(deps.metrics, 'docupod_retrieval_chunks_returned', () => new Histogram({ name: 'docupod_retrieval_chunks_returned', help: 'Chunks returned per search', labelNames: ['mode'] as const, buckets: [0, 1, 3, 5, 10, 20, 50, 100], registers: [deps.metrics] }));
  const canVector = () => deps.vectorEnabled && deps.embedder !== undefined;

  const filters = (req: SearchRequest): SQL => {
    const parts: SQL[] = [];
    if (req.documentIds?.length) parts.push(sql`and c.document_id in (${sql.join(req.documentIds.map((id) => sql`${id}::uuid`), sql`, `)})`);
    if (req.sources?.length) parts.push(sql`and (${sql.join(req.sources.map((g) => sql`d.source like ${globToLike(g)}`), sql` or `)})`);
    return sql.join(parts, sql` `);
  };

  const lexical = async (workspaceId: string, req: SearchRequest, limit: number): Promise<Row[]> => {
    const cfg = deps.language;
    // Query lexemes (stemmed as the index was), their IDF from term_stats, and BM25 over the candidate chunks.
    // Heading/title occurrences (weight A) count headingBoost times, so a match in a heading ranks higher.
    const result = await db.execute(sql`
      with q as (
        select distinct term from unnest(tsvector_to_array(to_tsvector(${cfg}::regconfig, ${req.query}))) as term
      ),
      st as (
        select greatest(chunks, 1)::float8 as n, greatest(lexemes::float8 / nullif(chunks, 0), 1) as avgdl
        from index_stats where workspace_id = ${workspaceId}
      ),
      idf as (
        select ts.term, ln(1 + (st.n - ts.df + 0.5) / (ts.df + 0.5)) as idf
        from term_stats ts, st where ts.workspace_id = ${workspaceId} and ts.term in (select term from q)
      ),
      tq as (select string_agg(quote_literal(term), ' | ')::tsquery as query from idf),
      cand as (
        select c.id, c.tsv, c.lexeme_count from chunks c
        join documents d on d.id = c.document_id and d.state = 'indexed'
        where c.workspace_id = ${workspaceId} and c.tsv @@ (select query from tq) ${filters(req)}
      ),
      scored as (
        select cand.id, sum(idf.idf * (u.tf * ${bm25.k1 + 1}::float8) / (u.tf + ${bm25.k1}::float8 * (1 - ${bm25.b}::float8 + ${bm25.b}::float8 * cand.lexeme_count / st.avgdl))) as score
        from cand cross join st
        cross join lateral (
          select x.lexeme, (select sum(case when w = 'A' then ${bm25.headingBoost}::float8 else 1 end) from unnest(x.weights) w) as tf
          from unnest(cand.tsv) x
        ) u
        join idf on idf.term = u.lexeme
        group by cand.id
        order by score desc
        limit ${limit}
      )
      select c.id as chunk_id, c.document_id, d.source, d.title, c.heading_path, c.text, c.page, c.char_start, c.char_end, s.score::float8 as score
      from scored s join chunks c on c.id = s.id join documents d on d.id = c.document_id
      order by s.score desc, c.id`);
    return rowsOf<Row>(result);
  };

  const vector = async (workspaceId: string, req: SearchRequest, limit: number): Promise<Row[]> => {
    if (!canVector())
      throw new DocupodError(Problems.badRequest, deps.vectorEnabled ? 'vector search needs an embedder: set DOCUPOD_EMBED_PROVIDER' : 'vector search needs pgvector in the database; this one is lexical-only');
    const [q] = await deps.embedder!.embed([req.query]);
    const dims = q!.length;
    const literal = JSON.stringify(q);
    // dims is an integer from the embedder: a typmod cannot be a bound parameter.
    const cast = sql.raw(`vector(${Math.trunc(dims)})`);
    return db.transaction(async (tx) => {
      await tx.execute(sql.raw(`set local hnsw.ef_search = ${Math.trunc(deps.efSearch ?? Math.max(40, limit * 2))}`));
      const result = await tx.execute(sql`
        select c.id as chunk_id, c.document_id, d.source, d.title, c.heading_path, c.text, c.page, c.char_start, c.char_end,
          (1 - (e.embedding::${cast} <=> ${literal}::${cast}))::float8 as score
        from chunk_embeddings e
        join chunks c on c.id = e.chunk_id
        join documents d on d.id = c.document_id and d.state = 'indexed'
        where e.workspace_id = ${workspaceId} and e.dims = ${dims} ${filters(req)}
        order by e.embedding::${cast} <=> ${literal}::${cast}
        limit ${limit}`);
      return rowsOf<Row>(result);
    });
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
      const mode: SearchMode = req.mode ?? (canVector() ? 'hybrid' : 'lexical');
      const t0 = performance.now();
      let results: SearchResult[];
      if (mode === 'lexical') results = (await lexical(workspaceId, req, req.k)).map((r) => toResult(r, Number(r.score)));
      else if (mode === 'vector') results = (await vector(workspaceId, req, req.k)).map((r) => toResult(r, Number(r.score)));
      else {
        const depth = Math.max(req.k * 4, 40);
        const [lex, vec] = await Promise.all([lexical(workspaceId, req, depth), vector(workspaceId, req, depth)]);
        results = reciprocalRankFusion([lex, vec], (r) => r.chunk_id)
          .slice(0, req.k)
          .map((f) => toResult(f.item, f.score));
      }
      if (req.highlight) await highlight(req, results);
      const tookMs = performance.now() - t0;
      latency.observe({ mode }, tookMs / 1000);
      returned.observe({ mode }, results.length);
      return { results, mode, tookMs: Math.round(tookMs * 100) / 100 };
    },
  };
}
