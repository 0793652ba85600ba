import { sql, type SQL } from 'drizzle-orm';
import { rowsOf, type Db } from '../../storage/database.js';
import type { SearchRequest } from './contract.js';
import type { Row } from './row.js';
import { identifierText } from '../../core/identifiers.js';

export interface Bm25Params {
  k1: number;
  b: number;
  /** How many times an occurrence in the title or a heading (tsvector weight A) counts. */
  headingBoost: number;
  /**
   * Proximity: a chunk where two consecutive query words appear close together and in order (as in the query, within
   * one extra word) earns proximityWeight × the smaller IDF of the two, per such pair. 0 turns it off.
   */
  proximityWeight: number;
  /** Chunks re-scored for proximity: the BM25 top max(limit × this, 50). */
  proximityDepth: number;
}

export const DEFAULT_BM25: Bm25Params = { k1: 1.2, b: 0.75, headingBoost: 2, proximityWeight: 1, proximityDepth: 5 };

/** Consecutive query words as Postgres phrase queries: `a <1> b | a <2> b` for words adjacent in the query. */
function proximityPairs(lexemes: Array<{ lexeme: string; positions: number[] }>): Array<{ a: string; b: string; query: string }> {
  const byPos = lexemes.flatMap((l) => l.positions.map((p) => ({ p, lexeme: l.lexeme }))).sort((x, y) => x.p - y.p);
  const pairs = new Map<string, { a: string; b: string; query: string }>();
  const lit = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  for (let i = 0; i + 1 < byPos.length; i++) {
    const x = byPos[i]!;
    const y = byPos[i + 1]!;
    if (x.lexeme === y.lexeme) continue;
    // Stop words removed from the query leave gaps ("log of the last boot": log <3> last); allow one more word.
    const gap = Math.min(y.p - x.p, 3);
    const alts = Array.from({ length: gap + 1 }, (_, d) => `${lit(x.lexeme)} <${d + 1}> ${lit(y.lexeme)}`);
    pairs.set(`${x.lexeme} ${y.lexeme}`, { a: x.lexeme, b: y.lexeme, query: alts.join(' | ') });
  }
  return [...pairs.values()];
}

/**
 * BM25 in SQL from the term statistics the ingest role maintains (term_stats, index_stats). Postgres's ts_rank_cd
 * has no IDF; BM25 is the reference our eval set measures against (MiniSearch), so we score it directly, then add a
 * proximity bonus for query words that appear next to each other in the chunk (positions are in the tsvector).
 */
export async function lexicalSearch(
  db: Db,
  args: { workspaceId: string; req: SearchRequest; limit: number; language: string; bm25: Bm25Params; filters: SQL },
): Promise<Row[]> {
  const { workspaceId, req, limit, bm25 } = args;
  const cfg = args.language;
  const extra = identifierText(req.query);
  // The query's lexemes (stemmed as the index was, identifiers whole and split) with the positions of its words.
  const terms = rowsOf<{ lexeme: string; positions: number[] | null; extra: boolean }>(
    await db.execute(sql`
      select u.lexeme, u.positions, false as extra from unnest(to_tsvector(${cfg}::regconfig, ${req.query})) u
      union all select u.lexeme, null, true from unnest(to_tsvector(${cfg}::regconfig, ${extra})) u`),
  );
  if (terms.length === 0) return [];
  const lexemes = [...new Set(terms.map((t) => t.lexeme))];
  const pairs = bm25.proximityWeight > 0 ? proximityPairs(terms.filter((t) => !t.extra && t.positions).map((t) => ({ lexeme: t.lexeme, positions: t.positions! }))) : [];
  const depth = Math.max(limit * bm25.proximityDepth, 50);
  // Filters refer to c (chunks) and d (documents): join them only when a filter needs them.
  const filtered = Boolean(args.req.documentIds?.length || args.req.sources?.length);
  const textArray = (xs: string[]) => sql`${`{${xs.map((x) => `"${x.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`}::text[]`;

  // Only the query's lexemes are read from each candidate's tsvector (unnest + filter, no per-lexeme subquery for
  // the rest); the heading weight counts per position. Proximity is checked on the BM25 top `depth` only.
  const result = await db.execute(sql`
    with st as (
      select greatest(chunks, 1)::float8 as n, greatest(lexemes::float8 / nullif(chunks, 0), 1) as avgdl
      from index_stats where workspace_id = ${workspaceId}
    ),
    idf as (
      select ts.term, ln(1 + (st.n - ts.df + 0.5) / (ts.df + 0.5)) as idf
      from term_stats ts, st where ts.workspace_id = ${workspaceId} and ts.term = any(${textArray(lexemes)}) and ts.df > 0
    ),
    -- BM25 from the postings of the query's lexemes only (an inverted index with term frequencies). Every posting
    -- belongs to a searchable chunk: postings are written and removed with their chunk in the indexing transaction.
    bm as (
      select p.chunk_id as id,
        sum(idf.idf * ((p.tf + ${bm25.headingBoost - 1}::float8 * p.tf_head) * ${bm25.k1 + 1}::float8)
          / ((p.tf + ${bm25.headingBoost - 1}::float8 * p.tf_head) + ${bm25.k1}::float8 * (1 - ${bm25.b}::float8 + ${bm25.b}::float8 * p.dl / st.avgdl))) as score
      from postings p join idf on idf.term = p.term cross join st
      ${filtered ? sql`join chunks c on c.id = p.chunk_id join documents d on d.id = c.document_id` : sql``}
      where p.workspace_id = ${workspaceId} and p.term = any(${textArray(lexemes)}) ${args.filters}
      group by p.chunk_id
      order by score desc, p.chunk_id
      limit ${depth}
    ),
    prox as (
      select bm.id, bm.score + ${bm25.proximityWeight}::float8 * coalesce(sum(least(ia.idf, ib.idf)) filter (where c.tsv @@ p.query::tsquery), 0) as score
      from bm join chunks c on c.id = bm.id
      left join (select * from unnest(${textArray(pairs.map((p) => p.a))}, ${textArray(pairs.map((p) => p.b))}, ${textArray(pairs.map((p) => p.query))}) as x(a, b, query)) p on true
      left join idf ia on ia.term = p.a
      left join idf ib on ib.term = p.b
      group by bm.id, bm.score
      order by score desc, bm.id
      limit ${limit}
    )
    select c.id as chunk_id, c.document_id, d.source, d.title, c.heading_path, c.text, c.page, c.char_start, c.char_end, s.score::float8 as score
    from prox s join chunks c on c.id = s.id join documents d on d.id = c.document_id
    order by s.score desc, c.id`);
  return rowsOf<Row>(result);
}
