import { sql, type SQL } from 'drizzle-orm';
import { rowsOf, type Db } from '../../storage/database.js';
import type { SearchRequest } from './contract.js';
import type { Row } from './row.js';

export interface Bm25Params {
  k1: number;
  b: number;
  /** How many times an occurrence in the title or a heading (tsvector weight A) counts. */
  headingBoost: number;
}

/**
 * BM25 in SQL from the term statistics the ingest role maintains (term_stats, index_stats). Postgres's ts_rank_cd
 * has no IDF; BM25 is the reference our eval set measures against (MiniSearch), so we score it directly.
 */
export async function lexicalSearch(
  db: Db,
  args: { workspaceId: string; req: SearchRequest; limit: number; language: string; bm25: Bm25Params; filters: SQL },
): Promise<Row[]> {
  const { workspaceId, req, limit, bm25 } = args;
  const cfg = args.language;
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
      where c.workspace_id = ${workspaceId} and c.tsv @@ (select query from tq) ${args.filters}
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
}
