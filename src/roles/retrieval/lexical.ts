import { sql, type SQL } from 'drizzle-orm';
import { rowsOf, type Db } from '../../storage/database.js';
import type { SearchRequest } from './contract.js';
import type { Row } from './row.js';
import { identifierText } from '../../core/identifiers.js';
import { scoreCached, type PostingsCache } from './postings-cache.js';

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
  /** Top-k pruning (see lexicalSearch); the ranking is the same without it, only slower (tests compare the two). */
  prune: boolean;
}

export const DEFAULT_BM25: Bm25Params = { k1: 1.2, b: 0.75, headingBoost: 2, proximityWeight: 1, proximityDepth: 5, prune: true };

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

/** A query lexeme found in the workspace's index. */
interface Term {
  term: string;
  df: number;
  idf: number;
}

const textArray = (xs: string[]) => sql`${`{${xs.map((x) => `"${x.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`}::text[]`;
const floatArray = (xs: number[]) => sql`${`{${xs.map((x) => x.toPrecision(17)).join(',')}}`}::float8[]`;

/**
 * BM25 in SQL from the term statistics the ingest role maintains (postings, term_stats, index_stats). Postgres's
 * ts_rank_cd has no IDF; BM25 is the reference our eval set measures against (MiniSearch), so we score it directly,
 * then add a proximity bonus for query words that appear next to each other in the chunk (positions are in the
 * tsvector).
 *
 * Top-k pruning (MaxScore): a posting's BM25 term is idf × tf'(k1+1) / (tf' + k1(1 − b + b·dl/avgdl)), which is
 * below idf × (k1 + 1) whatever the chunk. The query's most common lexemes ("debian" in every chunk of the Debian
 * Reference, "system", "file") hold most of the postings but little of the score, so only the rarer, "essential"
 * lexemes' postings are read in full; a chunk with none of them scores below the sum of the common lexemes' bounds
 * and cannot reach the top when that sum is below the score of the depth-th best candidate. Candidates are completed
 * with the common lexemes by primary-key lookups, the best first, then only those whose bound still reaches the
 * threshold. The top is the same as scoring every posting (checked against that threshold, else widened and run
 * again), at a fraction of the rows: the cost follows the rare lexemes, not the common ones.
 */
export async function lexicalSearch(
  db: Db,
  args: { workspaceId: string; req: SearchRequest; limit: number; language: string; bm25: Bm25Params; filters: SQL; cache?: PostingsCache },
): Promise<Row[]> {
  const { workspaceId, req, limit, bm25 } = args;
  const cfg = args.language;
  // The query's lexemes (stemmed as the index was, identifiers whole and split) with the positions of its words,
  // their document frequencies and the workspace's totals, in one round trip.
  const found = rowsOf<{ lexeme: string; positions: number[] | null; extra: boolean; df: number | null; n: number | null; lexemes: number | null; version: string | null }>(
    await db.execute(sql`
      with q as (
        select u.lexeme, u.positions, false as extra from unnest(to_tsvector(${cfg}::regconfig, ${req.query})) u
        union all select u.lexeme, null, true from unnest(to_tsvector(${cfg}::regconfig, ${identifierText(req.query)})) u)
      select q.lexeme, q.positions, q.extra, ts.df, st.chunks as n, st.lexemes::float8 as lexemes, st.version::text as version
      from q left join term_stats ts on ts.workspace_id = ${workspaceId} and ts.term = q.lexeme
      left join index_stats st on st.workspace_id = ${workspaceId}`),
  );
  const stats = found[0];
  if (!stats || stats.n === null) return [];
  const n = Math.max(Number(stats.n), 1);
  const avgdl = Math.max(Number(stats.lexemes) / Math.max(Number(stats.n), 1) || 0, 1);
  const byTerm = new Map<string, Term>();
  for (const f of found) {
    const df = Number(f.df ?? 0);
    if (df > 0 && !byTerm.has(f.lexeme)) byTerm.set(f.lexeme, { term: f.lexeme, df, idf: Math.log(1 + (n - df + 0.5) / (df + 0.5)) });
  }
  if (byTerm.size === 0) return [];
  // Most common (lowest IDF) first.
  const terms = [...byTerm.values()].sort((x, y) => x.idf - y.idf || (x.term < y.term ? -1 : 1));
  const pairs = bm25.proximityWeight > 0 ? proximityPairs(found.filter((t) => !t.extra && t.positions).map((t) => ({ lexeme: t.lexeme, positions: t.positions! }))) : [];
  const depth = Math.max(limit * bm25.proximityDepth, 50);
  const bound = (ts: Term[]) => maxScore(ts, bm25);

  // The postings cache when it holds this version of the workspace's index (filters go to SQL, which joins chunks
  // and documents for them).
  const filtered = Boolean(req.documentIds?.length || req.sources?.length);
  if (args.cache?.enabled && !filtered && stats.version !== null) {
    const got = await args.cache.get(workspaceId, stats.version, terms);
    if (got) {
      const top = scoreCached(got.entry, got.postings, terms.map((t) => t.idf * (bm25.k1 + 1)), bm25Parts(bm25, avgdl), depth);
      if (top.length === 0) return [];
      const bm = sql`bm(id, score) as (select * from unnest(${`{${top.map((t) => t.id).join(',')}}`}::uuid[], ${floatArray(top.map((t) => t.score))})),
          theta as (select null::float8 as t)`;
      return (await finish(db, { terms, bm25, bm, pairs, limit })).rows;
    }
  }

  // Non-essential: the longest run of common lexemes whose bounds add up to less than the rarest lexeme's IDF (a
  // chunk with that lexeme once, at average length, scores about its IDF), as long as the rarer ones still have
  // depth postings between them. Too optimistic a split is detected below and narrowed. A bolder split (e.g. up to
  // the sum of all IDFs) reads fewer postings but leaves most candidates above the threshold, and looking each one
  // up costs more than the postings saved (measured: "system which used" 470 → 900 ms at 100,000 chunks).
  let common = 0;
  if (bm25.prune) while (common + 1 < terms.length && bound(terms.slice(0, common + 1)) < terms.at(-1)!.idf && terms.slice(common + 1).reduce((s, t) => s + t.df, 0) >= depth) common++;
  for (;;) {
    const { rows, threshold } = await scoreTop(db, { workspaceId, args, terms, common, depth, limit, pairs, avgdl });
    // Exact when no chunk outside the candidates (none of the essential lexemes) can reach the threshold.
    // (The margin covers scores rounded to 1e-9 so that equal scores tie exactly and the chunk id decides.)
    if (common === 0 || (threshold !== null && bound(terms.slice(0, common)) + 1e-8 < threshold)) return rows;
    common--;
  }
}

/** The most a chunk can score from these lexemes: each term's tf part stays below k1 + 1. */
const maxScore = (ts: Term[], bm25: Bm25Params) => ts.reduce((s, t) => s + t.idf * (bm25.k1 + 1), 0);

async function scoreTop(
  db: Db,
  o: {
    workspaceId: string;
    args: { req: SearchRequest; bm25: Bm25Params; filters: SQL };
    terms: Term[];
    common: number;
    depth: number;
    limit: number;
    pairs: Array<{ a: string; b: string; query: string }>;
    avgdl: number;
  },
): Promise<{ rows: Row[]; threshold: number | null }> {
  const { workspaceId, terms, common, depth, limit, pairs } = o;
  const { bm25, filters } = o.args;
  const essential = terms.slice(common);
  const rest = terms.slice(0, common);
  // Per posting: w × tf' / (tf' + a + c·dl), with w = idf × (k1 + 1), a = k1(1 − b), c = k1·b / avgdl and
  // tf' = tf + (headingBoost − 1) × tf_head; the IDFs come from term_stats, computed once per query.
  const { hb, a, c } = bm25Parts(bm25, o.avgdl);
  const contribution = sql`q.w * (p.tf + ${hb}::float8 * p.tf_head) / ((p.tf + ${hb}::float8 * p.tf_head) + ${a}::float8 + ${c}::float8 * p.dl)`;
  // Filters refer to c (chunks) and d (documents): join them only when a filter needs them.
  const filtered = Boolean(o.args.req.documentIds?.length || o.args.req.sources?.length);
  const ess = sql`ess as (
      select p.chunk_id, sum(${contribution}) as s
      from postings p join q on q.term = p.term
      ${filtered ? sql`join chunks c on c.id = p.chunk_id join documents d on d.id = c.document_id` : sql``}
      where p.workspace_id = ${workspaceId} and p.term = any(${textArray(essential.map((t) => t.term))}) ${filters}
      group by p.chunk_id)`;
  // The common lexemes' share of a candidate's score, by primary-key lookups of (workspace, lexeme, chunk).
  const restOf = (from: string) => sql`select x.chunk_id, x.s + coalesce(sum(${contribution}), 0) as score
      from ${sql.raw(from)} x
      left join postings p on p.workspace_id = ${workspaceId} and p.term = any(${textArray(rest.map((t) => t.term))}) and p.chunk_id = x.chunk_id
      left join q on q.term = p.term
      group by x.chunk_id, x.s`;
  const bm =
    rest.length === 0
      ? sql`${ess}, bm as (select chunk_id as id, round(s * 1e9) / 1e9 as score from ess order by 2 desc, chunk_id limit ${depth}),
          theta as (select null::float8 as t)`
      : sql`${ess},
          top_ess as (select chunk_id, s from ess order by s desc, chunk_id limit ${depth}),
          top_full as (${restOf('top_ess')}),
          -- The depth-th best complete score so far: the final threshold is at least this.
          theta as (select case when count(*) >= ${depth} then min(score) end as t from top_full),
          cand as (select e.chunk_id, e.s from ess e, theta where e.s + ${maxScore(rest, bm25) + 1e-8}::float8 >= coalesce(theta.t, '-infinity'::float8)),
          bm as (select chunk_id as id, round(score * 1e9) / 1e9 as score from (${restOf('cand')}) f order by 2 desc, chunk_id limit ${depth})`;
  return finish(db, { terms, bm25, bm, pairs, limit });
}

/** The constants of a posting's BM25 part: w × tf' / (tf' + a + c·dl) with tf' = tf + hb × tf_head. */
function bm25Parts(bm25: Bm25Params, avgdl: number): { hb: number; a: number; c: number } {
  return { hb: bm25.headingBoost - 1, a: bm25.k1 * (1 - bm25.b), c: (bm25.k1 * bm25.b) / avgdl };
}

/**
 * From the BM25 top (a `bm(id, score)` CTE and a `theta(t)` one, from SQL or from the postings cache) to the
 * returned rows: the proximity re-score and the chunks, in one round trip.
 */
async function finish(
  db: Db,
  o: { terms: Term[]; bm25: Bm25Params; bm: SQL; pairs: Array<{ a: string; b: string; query: string }>; limit: number },
): Promise<{ rows: Row[]; threshold: number | null }> {
  const { terms, bm25, bm, pairs, limit } = o;
  const q = sql`q(term, idf, w) as (select * from unnest(${textArray(terms.map((t) => t.term))}, ${floatArray(terms.map((t) => t.idf))},
      ${floatArray(terms.map((t) => t.idf * (bm25.k1 + 1)))}))`;
  const result = await db.execute(sql`
    with ${q}, ${bm},
    -- Proximity on the BM25 top only.
    prox as (
      select bm.id, round((bm.score + ${bm25.proximityWeight}::float8 * coalesce(sum(least(ia.idf, ib.idf)) filter (where c.tsv @@ p.query::tsquery), 0)) * 1e9) / 1e9 as score
      from bm join chunks c on c.id = bm.id
      left join (select * from unnest(${textArray(pairs.map((p) => p.a))}, ${textArray(pairs.map((p) => p.b))}, ${textArray(pairs.map((p) => p.query))}) as x(a, b, query)) p on true
      left join q ia on ia.term = p.a
      left join q ib on ib.term = p.b
      group by bm.id, bm.score
      order by score desc, bm.id
      limit ${limit}
    )
    select c.id as chunk_id, c.document_id, d.source, d.title, c.heading_path, c.text, c.page, c.char_start, c.char_end, s.score::float8 as score,
      (select t from theta) as threshold
    from prox s join chunks c on c.id = s.id join documents d on d.id = c.document_id
    order by s.score desc, c.id`);
  const rows = rowsOf<Row & { threshold: number | null }>(result);
  return { rows, threshold: rows.length > 0 ? rows[0]!.threshold : null };
}
