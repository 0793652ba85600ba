import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from '../../storage/database.js';

// A memory-resident copy of the postings that lexical search reads, per workspace and lexeme, so BM25 is accumulated
// in JS over typed arrays instead of in PGlite's single-threaded WASM SQL (~40 ms p50 and ~230 ms p99 at 100,000
// chunks in SQL; exhaustive accumulation over typed arrays is ~1 ms). Postgres stays the source of truth: every
// write to a workspace's postings changes index_stats.version in the same transaction (migration 0007), lexical
// search reads that version in its first round trip anyway, and a workspace whose version changed is dropped here
// and reloaded in the background. Terms not (yet) held and too large to load inline are scored by the SQL path,
// which ranks identically (postings-cache.test.ts).
//
// Written here rather than taken from a library: what is cached is our own BM25 parts (tf, tf in headings, chunk
// length) keyed to our own version column, and the cache must spill to SQL on a miss rather than block on a load.

/** One lexeme's postings in one workspace: parallel arrays, one entry per chunk containing it. */
export interface CachedPostings {
  /** Chunk ordinals in the workspace's dictionary (WorkspaceEntry.ids). */
  ords: Int32Array;
  tf: Int32Array;
  tfHead: Int32Array;
  dl: Int32Array;
}

interface WorkspaceEntry {
  version: string;
  /** Ordinal → chunk id, and back. */
  ids: string[];
  ordOf: Map<string, number>;
  terms: Map<string, CachedPostings & { bytes: number }>;
  /** Scratch for scoring, grown with ids. */
  acc: Float64Array;
  stamp: Uint32Array;
  touched: Int32Array;
  gen: number;
}

/** Bytes per posting: ordinal, tf, tf in headings, chunk length (4 Int32). */
const POSTING_BYTES = 16;
/** Approximate bytes per dictionary entry: a 36-character id string, its Map entry and the scratch arrays. */
const CHUNK_BYTES = 140;
/** Missing terms with up to this many postings in all are loaded during the query (~1–2 ms); larger go to SQL. */
export const INLINE_LOAD_POSTINGS = 20_000;
/**
 * At start, terms in at least this many chunks are loaded ahead of queries (the most frequent first): rarer ones
 * cost ~1 ms to load inline on first use, so holding them all would spend memory for little.
 */
const WARM_MIN_DF = 32;
const WARM_BATCH_POSTINGS = 100_000;

export interface PostingsCacheStats {
  bytes: number;
  budgetBytes: number;
  workspaces: number;
  terms: number;
  hits: number;
  misses: number;
}

export class PostingsCache {
  private readonly ws = new Map<string, WorkspaceEntry>();
  /** LRU over (workspace, term): Map iteration order is insertion order; a hit re-inserts. */
  private readonly lru = new Map<string, { workspaceId: string; term: string }>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private readonly pending = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly db: Db,
    readonly budgetBytes: number,
    private readonly opts: { rewarmDelayMs?: number; inlineLoadPostings?: number; warmMinDf?: number } = {},
  ) {}

  get enabled(): boolean {
    return this.budgetBytes > 0 && !this.closed;
  }

  stats(): PostingsCacheStats {
    let terms = 0;
    for (const e of this.ws.values()) terms += e.terms.size;
    return { bytes: this.bytes, budgetBytes: this.budgetBytes, workspaces: this.ws.size, terms, hits: this.hits, misses: this.misses };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.ws.clear();
    this.lru.clear();
    this.bytes = 0;
  }

  /**
   * The workspace's entry at this version: a different version drops what was held (and queues its terms to be
   * loaded again in the background, so the hot set comes back without a query paying for it).
   */
  private entry(workspaceId: string, version: string): WorkspaceEntry | undefined {
    let e = this.ws.get(workspaceId);
    if (e && e.version === version) return e;
    // Versions come from one sequence, so they only grow: an older one is a reader whose snapshot predates a write
    // already seen here. It goes to SQL rather than throw away the newer entry.
    if (e && BigInt(version) < BigInt(e.version)) return undefined;
    if (e) {
      const again = [...e.terms.keys()];
      this.drop(workspaceId);
      this.schedule(workspaceId, again);
    }
    e = { version, ids: [], ordOf: new Map(), terms: new Map(), acc: new Float64Array(0), stamp: new Uint32Array(0), touched: new Int32Array(0), gen: 0 };
    this.ws.set(workspaceId, e);
    return e;
  }

  private drop(workspaceId: string): void {
    const e = this.ws.get(workspaceId);
    if (!e) return;
    for (const [term, p] of e.terms) {
      this.bytes -= p.bytes;
      this.lru.delete(`${workspaceId}\u0000${term}`);
    }
    this.bytes -= e.ids.length * CHUNK_BYTES;
    this.ws.delete(workspaceId);
  }

  /**
   * The postings of every term at this version, or undefined when some are not held. Missing terms with few
   * postings in all (dfs: their document frequencies) are loaded now; otherwise they are queued for a background
   * load and the caller scores in SQL.
   */
  async get(workspaceId: string, version: string, terms: Array<{ term: string; df: number }>): Promise<{ entry: WorkspaceEntry; postings: CachedPostings[] } | undefined> {
    if (!this.enabled) return undefined;
    const e = this.entry(workspaceId, version);
    if (!e) return undefined;
    const missing = terms.filter((t) => !e.terms.has(t.term));
    if (missing.length > 0) {
      this.misses++;
      const size = missing.reduce((s, t) => s + t.df, 0);
      if (size > (this.opts.inlineLoadPostings ?? INLINE_LOAD_POSTINGS) || size * POSTING_BYTES > this.budgetBytes / 4) {
        this.schedule(workspaceId, missing.map((t) => t.term));
        return undefined;
      }
      if (!(await this.load(workspaceId, version, missing.map((t) => t.term)))) return undefined;
      if (this.ws.get(workspaceId) !== e) return undefined;
    } else this.hits++;
    const postings: CachedPostings[] = [];
    for (const t of terms) {
      const p = e.terms.get(t.term);
      if (!p) return undefined; // evicted by the load just made (budget too small for this query)
      const key = `${workspaceId}\u0000${t.term}`;
      this.lru.delete(key);
      this.lru.set(key, { workspaceId, term: t.term });
      postings.push(p);
    }
    return { entry: e, postings };
  }

  /**
   * Loads terms' postings with the workspace's version read in the same statement (one snapshot), and keeps them
   * only if that is the version the entry was made for. Returns whether they were kept.
   */
  async load(workspaceId: string, version: string, terms: string[]): Promise<boolean> {
    if (terms.length === 0 || !this.enabled) return true;
    // One row per term with its postings packed into one string: PGlite and node-postgres both turn 100,000 rows
    // into 100,000 JS objects, which costs far more than splitting one string.
    const rows = rowsOf<{ version: string | null; term: string; data: string }>(
      await this.db.execute(sql`
        select (select s.version::text from index_stats s where s.workspace_id = ${workspaceId}) as version, p.term,
          string_agg(p.chunk_id::text || ' ' || p.tf || ' ' || p.tf_head || ' ' || p.dl, ' ') as data
        from postings p
        where p.workspace_id = ${workspaceId} and p.term = any(${`{${terms.map((t) => `"${t.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`}::text[])
        group by p.term`),
    );
    const e = this.ws.get(workspaceId);
    // A write in between: what was read belongs to another version than the entry's. Not kept; the next query sees
    // the new version and starts over.
    if (!e || e.version !== version || (rows.length > 0 && rows[0]!.version !== version)) return false;
    const found = new Set<string>();
    for (const r of rows) {
      found.add(r.term);
      if (e.terms.has(r.term)) continue;
      const parts = r.data.split(' ');
      const n = parts.length / 4;
      const p = { ords: new Int32Array(n), tf: new Int32Array(n), tfHead: new Int32Array(n), dl: new Int32Array(n), bytes: n * POSTING_BYTES };
      for (let i = 0; i < n; i++) {
        const id = parts[4 * i]!;
        let o = e.ordOf.get(id);
        if (o === undefined) {
          o = e.ids.length;
          e.ids.push(id);
          e.ordOf.set(id, o);
          this.bytes += CHUNK_BYTES;
        }
        p.ords[i] = o;
        p.tf[i] = Number(parts[4 * i + 1]);
        p.tfHead[i] = Number(parts[4 * i + 2]);
        p.dl[i] = Number(parts[4 * i + 3]);
      }
      e.terms.set(r.term, p);
      this.lru.set(`${workspaceId}\u0000${r.term}`, { workspaceId, term: r.term });
      this.bytes += p.bytes;
    }
    // A term with no postings (df 0 by the time of the load) is held as empty so it is not looked up again.
    for (const t of terms)
      if (!found.has(t) && !e.terms.has(t)) {
        e.terms.set(t, { ords: new Int32Array(0), tf: new Int32Array(0), tfHead: new Int32Array(0), dl: new Int32Array(0), bytes: 64 });
        this.bytes += 64;
      }
    this.evict();
    return true;
  }

  /** Least recently used terms go first until the cache is within its budget; an emptied workspace goes too. */
  private evict(): void {
    for (const [key, { workspaceId, term }] of this.lru) {
      if (this.bytes <= this.budgetBytes) break;
      this.lru.delete(key);
      const e = this.ws.get(workspaceId);
      const p = e?.terms.get(term);
      if (!e || !p) continue;
      e.terms.delete(term);
      this.bytes -= p.bytes;
      if (e.terms.size === 0) this.drop(workspaceId);
    }
  }

  /** Queues terms for a background load, debounced so a burst of writes (bulk ingest) reloads once. */
  private schedule(workspaceId: string, terms: string[]): void {
    if (!this.enabled || terms.length === 0) return;
    let set = this.pending.get(workspaceId);
    if (!set) this.pending.set(workspaceId, (set = new Set()));
    for (const t of terms) set.add(t);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(() => {});
    }, this.opts.rewarmDelayMs ?? 200);
    this.timer.unref();
  }

  /** Runs the queued loads: each workspace's current version is read first, terms go in batches. */
  async flush(): Promise<void> {
    const jobs = [...this.pending];
    this.pending.clear();
    for (const [workspaceId, set] of jobs) {
      if (!this.enabled) return;
      const [row] = rowsOf<{ version: string }>(await this.db.execute(sql`select version::text as version from index_stats where workspace_id = ${workspaceId}`));
      if (!row) continue;
      const e = this.entry(workspaceId, row.version);
      if (!e) continue;
      const terms = [...set].filter((t) => !e.terms.has(t));
      for (let i = 0; i < terms.length; i += 16) if (!(await this.load(workspaceId, row.version, terms.slice(i, i + 16)))) break;
    }
  }

  /**
   * Loads, ahead of any query, the terms that are costly to load and to score in SQL (the most frequent ones, by
   * document frequency), of every workspace, within half the budget. Called in the background at start.
   */
  async warm(): Promise<void> {
    if (!this.enabled) return;
    const rows = rowsOf<{ workspace_id: string; version: string; term: string; df: number }>(
      await this.db.execute(sql`select t.workspace_id, s.version::text as version, t.term, t.df from term_stats t
        join index_stats s on s.workspace_id = t.workspace_id where t.df >= ${this.opts.warmMinDf ?? WARM_MIN_DF} order by t.df desc, t.workspace_id, t.term`),
    );
    let planned = 0;
    const byWs = new Map<string, { version: string; terms: Array<{ term: string; df: number }> }>();
    for (const r of rows) {
      planned += Number(r.df) * POSTING_BYTES;
      if (planned > this.budgetBytes / 2) break;
      let w = byWs.get(r.workspace_id);
      if (!w) byWs.set(r.workspace_id, (w = { version: r.version, terms: [] }));
      w.terms.push({ term: r.term, df: Number(r.df) });
    }
    for (const [workspaceId, w] of byWs) {
      const e = this.entry(workspaceId, w.version);
      if (!e) continue;
      // Batches of ~100,000 postings: one result string stays a few MB.
      let batch: string[] = [];
      let size = 0;
      for (const t of w.terms.filter((x) => !e.terms.has(x.term))) {
        batch.push(t.term);
        size += t.df;
        if (size < WARM_BATCH_POSTINGS) continue;
        if (!this.enabled || !(await this.load(workspaceId, w.version, batch))) break;
        batch = [];
        size = 0;
      }
      if (batch.length > 0 && this.enabled) await this.load(workspaceId, w.version, batch);
    }
  }
}

/** Postgres's round() on float8 (rint: halves to even), so scores rounded here equal those rounded in SQL. */
export function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * BM25 over cached postings, every chunk that has any of the terms (no pruning: exhaustive accumulation over typed
 * arrays costs about a millisecond at 100,000 chunks). Each posting's part is computed with exactly the expression
 * and operand order of the SQL path (see scoreTop in lexical.ts), and scores are rounded to 1e-9 like there, so the
 * top `depth` (score descending, then chunk id) is the same.
 */
export function scoreCached(
  entry: WorkspaceEntry,
  postings: CachedPostings[],
  weights: number[],
  k: { hb: number; a: number; c: number },
  depth: number,
): Array<{ id: string; score: number }> {
  const size = entry.ids.length;
  if (entry.acc.length < size) {
    entry.acc = new Float64Array(Math.max(size, entry.acc.length * 2));
    entry.stamp = new Uint32Array(entry.acc.length);
    entry.touched = new Int32Array(entry.acc.length);
    entry.gen = 0;
  }
  const { acc, stamp, touched } = entry;
  // A chunk's accumulator is valid when its stamp is this query's generation: no clearing of 100,000 entries.
  if (++entry.gen >= 0xffffffff) {
    stamp.fill(0);
    entry.gen = 1;
  }
  const gen = entry.gen;
  let nTouched = 0;
  const { hb, a, c } = k;
  for (let t = 0; t < postings.length; t++) {
    const p = postings[t]!;
    const w = weights[t]!;
    const { ords, tf, tfHead, dl } = p;
    for (let i = 0; i < ords.length; i++) {
      const o = ords[i]!;
      const x = tf[i]! + hb * tfHead[i]!;
      const s = (w * x) / (x + a + c * dl[i]!);
      if (stamp[o] !== gen) {
        stamp[o] = gen;
        acc[o] = s;
        touched[nTouched++] = o;
      } else acc[o] = acc[o]! + s;
    }
  }
  // Top depth by (rounded score desc, id asc) with a bounded heap whose root is the worst kept.
  const ids = entry.ids;
  const heapS: number[] = [];
  const heapO: number[] = [];
  const worse = (s1: number, o1: number, s2: number, o2: number) => s1 < s2 || (s1 === s2 && ids[o1]! > ids[o2]!);
  const siftDown = (i: number) => {
    const n = heapS.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && worse(heapS[l]!, heapO[l]!, heapS[m]!, heapO[m]!)) m = l;
      if (r < n && worse(heapS[r]!, heapO[r]!, heapS[m]!, heapO[m]!)) m = r;
      if (m === i) return;
      [heapS[i], heapS[m]] = [heapS[m]!, heapS[i]!];
      [heapO[i], heapO[m]] = [heapO[m]!, heapO[i]!];
      i = m;
    }
  };
  for (let j = 0; j < nTouched; j++) {
    const o = touched[j]!;
    const s = rint(acc[o]! * 1e9) / 1e9;
    if (heapS.length < depth) {
      heapS.push(s);
      heapO.push(o);
      let i = heapS.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(heapS[i]!, heapO[i]!, heapS[p]!, heapO[p]!)) break;
        [heapS[i], heapS[p]] = [heapS[p]!, heapS[i]!];
        [heapO[i], heapO[p]] = [heapO[p]!, heapO[i]!];
        i = p;
      }
    } else if (worse(heapS[0]!, heapO[0]!, s, o)) {
      heapS[0] = s;
      heapO[0] = o;
      siftDown(0);
    }
  }
  return heapO.map((o, i) => ({ id: ids[o]!, score: heapS[i]! })).sort((x, y) => y.score - x.score || (x.id < y.id ? -1 : 1));
}
