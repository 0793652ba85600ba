import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { slugify } from '../roles/gateway/workspaces/service.js';
import type { SearchMode } from '../roles/retrieval/contract.js';
import { NOT_IN_DOCUMENTS } from '../adapters/llm/extractive.js';
import { readOffTopic } from './eval-sets.js';
import { findFiles, ingestFiles, parseK, parseMode, withBackend, type ConnectionOptions } from './ingest.js';

// `docupod eval <qa.jsonl> --corpus <dir>`: retrieval quality on a question set, with the metrics defined in
// shared/eval/README.md. The metric functions are pure and exported so bench/eval.bench.js scores MiniSearch's
// rankings with exactly the same code.

export const QaItem = z.object({
  id: z.string(),
  question: z.string().min(1),
  /** File names relative to the corpus directory; the first is the primary source. */
  relevant: z.array(z.string().min(1)).min(1),
  /** A short phrase copied from the primary file that answers the question. */
  answer: z.string().min(1),
  kind: z.string().optional(),
});
export type QaItem = z.infer<typeof QaItem>;

export interface RankedChunk {
  source: string;
  text: string;
}

export interface QuestionScore {
  id: string;
  /** 1-based rank of the first relevant file among the distinct source files, or null when none was retrieved. */
  fileRank: number | null;
  /** 1-based rank of the first chunk containing the answer phrase, or null. */
  answerRank: number | null;
  recallAt5: boolean;
  reciprocalRankAt10: number;
  /** nDCG@10 over distinct source files, binary relevance (see ndcgAt). */
  ndcgAt10: number;
  answerInTop5: boolean;
  /** Whether the answer phrase appears in the generated answer (set after the answers run). */
  answerHit?: boolean;
}

/** Lower-cased, whitespace runs collapsed to one space (the README's normalisation for answer phrases). */
export function normalizeText(s: string): string {
  return s.toLowerCase().replace(/\s+/g, ' ').trim();
}

/** A document source names a corpus file when it is that relative path, ends with it, or has the same base name. */
export function sourceMatches(source: string, file: string): boolean {
  const s = source.replace(/\\/g, '/');
  const f = file.replace(/\\/g, '/');
  return s === f || s.endsWith(`/${f}`) || path.posix.basename(s) === path.posix.basename(f);
}

/** Source files in the order their first chunk appears. */
export function distinctSources(ranked: readonly RankedChunk[]): string[] {
  const seen: string[] = [];
  for (const r of ranked) if (!seen.includes(r.source)) seen.push(r.source);
  return seen;
}

/**
 * nDCG@k as BEIR reports it (pytrec_eval's ndcg_cut: gain = relevance, discount log2(rank + 1)), with binary relevance
 * over distinct source files: a file is relevant when it is one of the question's `relevant` files, each counted once
 * (shared/eval/README.md). The ideal ranking puts every relevant file first, so a question with three relevant files
 * scores 1 only when all three lead the list.
 */
export function ndcgAt(relevant: readonly string[], files: readonly string[], k = 10): number {
  const unseen = [...new Set(relevant)];
  let dcg = 0;
  files.slice(0, k).forEach((s, i) => {
    const j = unseen.findIndex((f) => sourceMatches(s, f));
    if (j < 0) return;
    unseen.splice(j, 1);
    dcg += 1 / Math.log2(i + 2);
  });
  let ideal = 0;
  for (let i = 0; i < Math.min(k, new Set(relevant).size); i++) ideal += 1 / Math.log2(i + 2);
  return ideal > 0 ? dcg / ideal : 0;
}

export function scoreQuestion(item: Pick<QaItem, 'id' | 'relevant' | 'answer'>, ranked: readonly RankedChunk[]): QuestionScore {
  const files = distinctSources(ranked);
  const i = files.findIndex((s) => item.relevant.some((f) => sourceMatches(s, f)));
  const fileRank = i < 0 ? null : i + 1;
  const answer = normalizeText(item.answer);
  const j = ranked.findIndex((r) => normalizeText(r.text).includes(answer));
  const answerRank = j < 0 ? null : j + 1;
  return {
    id: item.id,
    fileRank,
    answerRank,
    recallAt5: fileRank !== null && fileRank <= 5,
    reciprocalRankAt10: fileRank !== null && fileRank <= 10 ? 1 / fileRank : 0,
    ndcgAt10: ndcgAt(item.relevant, files, 10),
    answerInTop5: answerRank !== null && answerRank <= 5,
  };
}

/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface Summary {
  n: number;
  recallAt5: number;
  mrrAt10: number;
  ndcgAt10: number;
  answerInTop5: number;
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

export function summarize(scores: readonly QuestionScore[]): Summary {
  const n = scores.length;
  const mean = (f: (s: QuestionScore) => number) => (n === 0 ? 0 : round(scores.reduce((a, s) => a + f(s), 0) / n, 4));
  return {
    n,
    recallAt5: mean((s) => (s.recallAt5 ? 1 : 0)),
    mrrAt10: mean((s) => s.reciprocalRankAt10),
    ndcgAt10: mean((s) => s.ndcgAt10),
    answerInTop5: mean((s) => (s.answerInTop5 ? 1 : 0)),
  };
}

/** The summary per question `kind` (questions without one under "none"), kinds in name order. */
export function summarizeByKind(items: ReadonlyArray<Pick<QaItem, 'id' | 'kind'>>, scores: readonly QuestionScore[]): Record<string, Summary & { answerHit: number | null }> {
  const kindOf = new Map(items.map((q) => [q.id, q.kind ?? 'none']));
  const groups = new Map<string, QuestionScore[]>();
  for (const s of scores) {
    const k = kindOf.get(s.id) ?? 'none';
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  return Object.fromEntries([...groups.keys()].sort().map((k) => {
    const g = groups.get(k)!;
    const answered = g.filter((s) => s.answerHit !== undefined);
    return [k, { ...summarize(g), answerHit: answered.length ? round(answered.filter((s) => s.answerHit).length / answered.length, 4) : null }];
  }));
}

export function readQuestions(file: string): QaItem[] {
  const items: QaItem[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        throw new Error(`${file}:${i + 1}: not JSON`);
      }
      const r = QaItem.safeParse(json);
      if (!r.success) throw new Error(`${file}:${i + 1}: ${r.error.issues.map((x) => `${x.path.join('.') || 'line'}: ${x.message}`).join('; ')}`);
      items.push(r.data);
    });
  if (items.length === 0) throw new Error(`${file}: no questions`);
  return items;
}

/** The Debian package that ships the corpus and its version, when dpkg knows the files (else null). */
export function corpusPackage(file: string): { package: string; version: string } | null {
  try {
    const owner = execFileSync('dpkg', ['-S', file], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    const pkg = owner.split(':')[0]!.trim();
    const version = execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return pkg && version ? { package: pkg, version } : null;
  } catch {
    return null;
  }
}

export interface EvalCommandOptions extends ConnectionOptions {
  corpus: string;
  k?: string;
  mode?: string;
  fresh?: boolean;
  details?: boolean;
  json?: boolean;
  offTopic?: string;
  strict?: boolean;
}


export async function evalCommand(qaFile: string, opts: EvalCommandOptions): Promise<void> {
  const k = parseK(opts.k);
  const mode: SearchMode | undefined = parseMode(opts.mode);
  const questions = readQuestions(qaFile);
  const offTopicQuestions = opts.offTopic ? readOffTopic(opts.offTopic) : null;
  const files = findFiles([opts.corpus]);
  // A glob (`dir/*.html`) names its fixed part as the corpus directory.
  const globAt = opts.corpus.split(/[\\/]/).findIndex((p) => /[*?[]/.test(p));
  const corpusDir = path.resolve(globAt < 0 ? opts.corpus : opts.corpus.split(/[\\/]/).slice(0, globAt).join('/') || '.');
  const pkg = corpusPackage(files[0]!.path);
  const out = process.stderr;

  const report = await withBackend(opts, async (backend) => {
    const settings = await backend.describe();
    const chunkTokens = typeof settings.chunkTokens === 'number' ? settings.chunkTokens : undefined;
    // Chunk size is part of the default name: the same files chunked differently must not be reused by mistake.
    const wsName = opts.workspace ?? `eval-${slugify(path.basename(corpusDir))}${chunkTokens ? `-${chunkTokens}t` : ''}`;
    const ws = await backend.workspace(wsName, true);
    if (opts.fresh && !ws.created) {
      const docs = await backend.list(ws);
      for (const d of docs) await backend.delete(ws, d.id);
      if (!opts.json) out.write(`deleted ${docs.length} document(s) from ${ws.slug}\n`);
    }
    // Same bytes are duplicates: a second run re-ingests nothing and only waits for what is still in progress.
    const ingest = await ingestFiles(backend, ws, files, { wait: true, progress: out, quiet: opts.json });
    // A real corpus has files docupod cannot read; by default they are reported and the rest is scored (questions
    // about them count as misses), so one bad page does not hide the figures for the other thousand.
    const failedFiles = ingest.failed.map((d) => ({ source: d.source, state: d.state, error: d.error ?? null }));
    if (opts.strict && failedFiles.length > 0) throw new Error(`${failedFiles.length} corpus file(s) failed to ingest (--strict): ${failedFiles.map((d) => `${d.source}: ${d.error ?? d.state}`).join('; ')}`);
    if (ingest.documents.length > 0 && failedFiles.length === ingest.documents.length) throw new Error(`every corpus file failed to ingest: ${failedFiles.map((d) => `${d.source}: ${d.error ?? d.state}`).join('; ')}`);

    // One untimed search first: the first query pays for plan caches and lazy initialisation.
    await backend.search(ws, { query: questions[0]!.question, k, ...(mode ? { mode } : {}) });
    const scores: QuestionScore[] = [];
    const latencies: number[] = [];
    let usedMode = mode;
    let chars = 0;
    let retrieved = 0;
    for (const q of questions) {
      const t0 = performance.now();
      const res = await backend.search(ws, { query: q.question, k, ...(mode ? { mode } : {}) });
      latencies.push(performance.now() - t0);
      usedMode = res.mode;
      for (const r of res.results) chars += r.text.length;
      retrieved += res.results.length;
      scores.push(scoreQuestion(q, res.results));
    }
    // The answer-phrase hit: the chat role answers each question (the configured LLM; extractive when none), and the
    // expected phrase must appear in the answer text (both normalised as shared/eval/README.md defines).
    const answerLatencies: number[] = [];
    let hits = 0;
    for (const [i, q] of questions.entries()) {
      const t0 = performance.now();
      const answer = await backend.answer(ws, q.question);
      answerLatencies.push(performance.now() - t0);
      const hit = normalizeText(answer).includes(normalizeText(q.answer));
      scores[i]!.answerHit = hit;
      if (hit) hits++;
    }
    // Off-topic questions: the share answered with "The documents don't say" (issue 16's abstention rate).
    let offTopic: { n: number; abstained: number; answered: string[] } | null = null;
    if (offTopicQuestions) {
      offTopic = { n: offTopicQuestions.length, abstained: 0, answered: [] };
      for (const q of offTopicQuestions) {
        const answer = await backend.answer(ws, q.question);
        if (normalizeText(answer).startsWith(normalizeText(NOT_IN_DOCUMENTS))) offTopic.abstained++;
        else offTopic.answered.push(q.id);
      }
    }
    return {
      ws,
      ingest,
      failedFiles,
      offTopic,
      scores,
      latencies,
      usedMode,
      settings,
      avgChunkChars: retrieved ? Math.round(chars / retrieved) : null,
      answerHit: questions.length ? hits / questions.length : 0,
      answerLatencies,
    };
  });

  const s = summarize(report.scores);
  const result = {
    ...s,
    answerHit: round(report.answerHit, 4),
    answerP50Ms: round(percentile(report.answerLatencies, 50), 2),
    searchP50Ms: round(percentile(report.latencies, 50), 2),
    searchP99Ms: round(percentile(report.latencies, 99), 2),
    ...(report.offTopic ? { abstainRate: round(report.offTopic.abstained / Math.max(1, report.offTopic.n), 4), offTopic: { n: report.offTopic.n, answered: report.offTopic.answered } } : {}),
    byKind: summarizeByKind(questions, report.scores),
    failedFiles: report.failedFiles,
    k,
    mode: report.usedMode,
    chunkTokens: (report.settings.chunkTokens as number | undefined) ?? null,
    chunkOverlap: (report.settings.chunkOverlap as number | undefined) ?? null,
    avgChunkChars: report.avgChunkChars,
    chunks: report.ingest.chunks,
    workspace: report.ws.slug,
    backend: report.settings.url
      ? { url: report.settings.url }
      : { dataDir: report.settings.dataDir ?? null, ...(report.settings.server ? { server: report.settings.server } : {}) },
    corpus: { dir: corpusDir, files: files.length, bytes: report.ingest.bytes, package: pkg?.package ?? null, version: pkg?.version ?? null },
    questionsFile: path.resolve(qaFile),
    questions: report.scores,
  };
  if (opts.json) {
    console.log(JSON.stringify(result));
    return;
  }
  const pct = (x: number) => x.toFixed(3);
  const count = (f: (q: QuestionScore) => boolean) => report.scores.filter(f).length;
  const corpus = `${files.length} files${pkg ? `, ${pkg.package} ${pkg.version}` : ''}`;
  console.log(`docupod eval: ${s.n} questions, corpus ${corpusDir} (${corpus}), ${result.chunks} chunks` +
    `${result.chunkTokens ? ` of ≤${result.chunkTokens} tokens` : ''} (avg ${result.avgChunkChars ?? '?'} chars retrieved), mode ${result.mode}, k ${k}`);
  if (opts.details) {
    for (const q of report.scores) {
      const item = questions.find((x) => x.id === q.id)!;
      console.log(`  ${q.id}  file ${q.fileRank ?? '-'}  answer ${q.answerRank ?? '-'}  ${item.question}`);
    }
  }
  console.log(`  recall@5         ${pct(s.recallAt5)}  (${count((q) => q.recallAt5)}/${s.n})`);
  console.log(`  MRR@10           ${pct(s.mrrAt10)}`);
  console.log(`  nDCG@10          ${pct(s.ndcgAt10)}  (binary relevance over distinct files, BEIR's definition)`);
  console.log(`  answer in top-5  ${pct(s.answerInTop5)}  (${count((q) => q.answerInTop5)}/${s.n})`);
  console.log(`  answer hit       ${pct(result.answerHit)}  (${count((q) => q.answerHit === true)}/${s.n}; answers p50 ${result.answerP50Ms} ms)`);
  console.log(`  search latency   p50 ${result.searchP50Ms} ms, p99 ${result.searchP99Ms} ms`);
  console.log(`  by kind          ${'n'.padStart(3)} ${'recall@5'.padStart(9)} ${'MRR@10'.padStart(7)} ${'nDCG@10'.padStart(8)} ${'top-5'.padStart(6)} ${'hit'.padStart(6)}`);
  for (const [kind, m] of Object.entries(result.byKind)) {
    console.log(`    ${kind.padEnd(14)} ${String(m.n).padStart(3)} ${pct(m.recallAt5).padStart(9)} ${pct(m.mrrAt10).padStart(7)} ${pct(m.ndcgAt10).padStart(8)} ${pct(m.answerInTop5).padStart(6)} ${(m.answerHit === null ? '-' : pct(m.answerHit)).padStart(6)}`);
  }
  if (report.offTopic) console.log(`  abstained        ${pct(result.abstainRate!)}  (${report.offTopic.abstained}/${report.offTopic.n} off-topic questions answered "The documents don't say")`);
  if (report.failedFiles.length > 0) {
    console.log(`  failed files     ${report.failedFiles.length} of ${files.length} (not scored; --strict fails instead):`);
    for (const f of report.failedFiles) console.log(`    ${f.source}: ${f.error ?? f.state}`);
  }
}
