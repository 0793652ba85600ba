// The built-in answerer: no model, no download. It answers with the sentences of the retrieved sources that best
// support the question, verbatim and cited [n], so the answer is only ever what the documents say. When nothing in
// the sources matches the question's key words, it says that the documents don't cover it instead of guessing.
//
// Scoring: BM25 over sentences (IDF computed across every sentence of every source, so a word found everywhere counts
// little), plus a bonus for query words appearing next to each other (phrases), for query words in the source's
// heading, and a small prior for the retriever's own rank. Sentences are then picked greedily: the best one, then
// others only if they add query words not yet covered, or directly continue a picked sentence that ends in a colon.
import { type GenerateRequest, type GroundingSource, type Llm, type LlmEvent } from './llm.js';
import { sentences, squash, terms } from './text.js';

export const NOT_IN_DOCUMENTS = "The documents don't say.";

export interface ExtractiveOptions {
  /** Most sentences in one answer (default 3). */
  maxSentences?: number;
  /** Most words in one answer (default 120). */
  maxWords?: number;
  /** Share of the question's weighted key words a passage must contain to count as an answer (default 0.3). */
  minCoverage?: number;
}

export interface Pick {
  n: number;
  /** The sentence's place among its source's sentences. */
  idx?: number;
  text: string;
  start: number;
  end: number;
  score: number;
  coverage: number;
}

interface Candidate extends Pick {
  rank: number;
  idx: number;
  terms: string[];
  /** Distinct subject words of the question found in the sentence or its section heading. */
  matched?: number;
}

/** Share of the question's weight one matched word must carry to count as support on its own (see selectSentences). */
const SINGLE_WORD_COVERAGE = 0.6;

// Question-framing words (stemmed as terms() does); see selectSentences.
const FRAME = new Set(terms('difference differences differ compare comparison versus vs meaning mean purpose example examples'));

/** Whether a chunk's first unit starts inside a sentence or a table row (the chunk overlap cuts at a word). */
function isFragment(text: string, next: string | undefined): boolean {
  const cells = (s: string) => s.split(' | ').length;
  // A table row (cells often start with a lower-case command name): cut when it has fewer cells than the next row.
  if (/ \| /.test(text)) return next !== undefined && / \| /.test(next) && cells(text) < cells(next);
  return /^[\p{Ll},;:)\]}|.]/u.test(text);
}

/** The sentences that answer `question` from `sources`, best first; empty when nothing is relevant. */
export function selectSentences(question: string, sources: GroundingSource[], opts: ExtractiveOptions = {}): Pick[] {
  const maxSentences = opts.maxSentences ?? 3;
  const maxWords = opts.maxWords ?? 120;
  const minCoverage = opts.minCoverage ?? 0.3;
  const q = [...new Set(terms(question))];
  if (q.length === 0 || sources.length === 0) return [];
  // Words that frame a question ("difference between X and Y") rather than name its subject: scored, but a passage
  // need not contain them to count as support.
  const focus = q.filter((t) => !FRAME.has(t));

  const cands: Candidate[] = [];
  sources.forEach((src, rank) => {
    const units = sentences(src.text);
    units.forEach((s, idx) => {
      const t = terms(s.text);
      if (t.length === 0) return;
      // A chunk may begin inside a sentence (chunks overlap by a few words): never answer with that fragment.
      if (idx === 0 && isFragment(s.text, units[1]?.text)) return;
      // A run-on unit (a table or a listing without sentence ends) is not a readable answer.
      if (t.length > maxWords) return;
      cands.push({ n: src.n, text: squash(s.text), start: s.start, end: s.end, score: 0, coverage: 0, rank, idx, terms: t });
    });
  });
  if (cands.length === 0) return [];

  const df = new Map<string, number>();
  for (const c of cands) for (const t of new Set(c.terms)) df.set(t, (df.get(t) ?? 0) + 1);
  const N = cands.length;
  const idf = (t: string) => Math.log(1 + (N - (df.get(t) ?? 0) + 0.5) / ((df.get(t) ?? 0) + 0.5));
  // Words that never occur in the sources still weigh in the coverage denominator (as the rarest words do): a question
  // about something the documents never mention should not be "answered" by its generic words.
  const weight = new Map(q.map((t) => [t, df.has(t) ? idf(t) : Math.log(1 + (N - 0.5) / 1.5)]));
  const totalWeight = (focus.length > 0 ? focus : q).reduce((a, t) => a + weight.get(t)!, 0);
  const focusSet = new Set(focus.length > 0 ? focus : q);
  const avgLen = cands.reduce((n, c) => n + c.terms.length, 0) / N;
  const qIndex = new Map(q.map((t, i) => [t, i]));
  const headingTerms = new Map(sources.map((s) => [s.n, new Set(terms(s.heading ?? ''))]));

  for (const c of cands) {
    const tf = new Map<string, number>();
    for (const t of c.terms) tf.set(t, (tf.get(t) ?? 0) + 1);
    let score = 0;
    let covered = 0;
    let matched = 0;
    for (const t of q) {
      const f = tf.get(t);
      const counts = focusSet.has(t) ? 1 : 0;
      if (!f) {
        if (headingTerms.get(c.n)?.has(t)) {
          score += 0.3 * weight.get(t)!;
          covered += 0.5 * weight.get(t)! * counts;
          matched += counts;
        }
        continue;
      }
      const k1 = 1.2;
      const b = 0.5;
      score += weight.get(t)! * ((f * (k1 + 1)) / (f + k1 * (1 - b + (b * c.terms.length) / avgLen)));
      covered += weight.get(t)! * counts;
      matched += counts;
    }
    c.matched = matched;
    // Phrases: consecutive query words that also appear consecutively in the sentence.
    for (let i = 0; i + 1 < c.terms.length; i++) {
      const a = qIndex.get(c.terms[i]!);
      const bIdx = qIndex.get(c.terms[i + 1]!);
      if (a !== undefined && bIdx !== undefined && a !== bIdx) score += 0.5 * Math.min(weight.get(c.terms[i]!)!, weight.get(c.terms[i + 1]!)!);
    }
    // Very short fragments (a heading repeated as a line) say little on their own.
    if (c.terms.length < 3) score *= 0.6;
    score *= 1 + 0.1 / (c.rank + 1);
    c.score = score;
    c.coverage = totalWeight > 0 ? Math.min(1, covered / totalWeight) : 0;
  }

  const ranked = cands.filter((c) => c.score > 0).sort((x, y) => y.score - x.score || x.rank - y.rank || x.idx - y.idx);
  const best = ranked[0];
  if (!best || best.coverage < minCoverage) return [];
  // One shared word is not support when the question names several things ("capital of France" vs a locale table
  // row naming France), unless that word carries most of the question's weight ("Ctrl-Z" in "what does Ctrl-Z do in
  // the shell?", where "shell" is everywhere in the sources).
  if ((best.matched ?? 0) < Math.min(2, focusSet.size) && best.coverage < SINGLE_WORD_COVERAGE) return [];

  const picked: Candidate[] = [best];
  const have = new Set(best.terms.filter((t) => qIndex.has(t)));
  let words = best.text.split(' ').length;
  const seen = new Set([norm(best.text)]);
  const add = (c: Candidate) => {
    picked.push(c);
    c.terms.forEach((t) => qIndex.has(t) && have.add(t));
    words += c.text.split(' ').length;
    seen.add(norm(c.text));
  };
  // A sentence that introduces a list or a command ("Run the following:") needs the next one to make sense.
  const follow = (c: Candidate) => {
    if (!/:$/.test(c.text)) return;
    const next = cands.find((x) => x.n === c.n && x.idx === c.idx + 1);
    if (next && !seen.has(norm(next.text)) && picked.length < maxSentences + 1) add(next);
  };
  follow(best);
  for (const c of ranked.slice(1)) {
    if (picked.length >= maxSentences || words >= maxWords) break;
    if (c.score < 0.45 * best.score) break;
    if (seen.has(norm(c.text))) continue;
    const adds = c.terms.some((t) => qIndex.has(t) && !have.has(t));
    // A near-copy (overlapping chunks) says nothing new, unless it holds a word of the question the others lack
    // (two table rows that differ in one word: "apt clean" / "apt autoclean").
    if (!adds && [...seen].some((s) => overlap(s, norm(c.text)) > 0.7)) continue;
    const neighbour = picked.some((p) => p.n === c.n && Math.abs(p.idx - c.idx) === 1);
    if (!adds && !neighbour) continue;
    if (words + c.text.split(' ').length > maxWords * 1.2) continue;
    add(c);
    follow(c);
  }
  // Read in document order: documents in order of first use, sentences of one document by their place in it (chunks
  // of one document may come in any rank order), so the answer flows as the document does.
  const bySource = new Map(sources.map((s) => [s.n, s]));
  const docOf = (p: Candidate) => bySource.get(p.n)?.source ?? String(p.n);
  const at = (p: Candidate) => (bySource.get(p.n)?.start ?? 0) + p.start;
  const order = new Map<string, number>();
  picked.forEach((p) => order.has(docOf(p)) || order.set(docOf(p), order.size));
  picked.sort((x, y) => order.get(docOf(x))! - order.get(docOf(y))! || at(x) - at(y) || x.n - y.n || x.idx - y.idx);
  return picked.map(({ n, idx, text, start, end, score, coverage }) => ({ n, idx, text, start, end, score, coverage }));
}

function norm(s: string): string {
  return s.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
}

function overlap(a: string, b: string): number {
  const A = new Set(a.split(' '));
  const B = new Set(b.split(' '));
  let inter = 0;
  for (const w of A) if (B.has(w)) inter++;
  return inter / Math.max(1, Math.min(A.size, B.size));
}

/**
 * The answer text for picked sentences: each ends with its citation; sentences that follow each other in one source
 * share it, so every stretch before a marker is one span of the source (the span its citation quotes).
 */
export function formatAnswer(picks: Pick[]): string {
  const parts: string[] = [];
  picks.forEach((p, i) => {
    const next = picks[i + 1];
    const adjacent = next && next.n === p.n && (p.idx === undefined || next.idx === p.idx + 1);
    const cite = adjacent ? '' : ` [${p.n}]`;
    parts.push(`${p.text}${cite}`);
  });
  return parts.join(' ');
}

export function notInDocuments(question: string, closest: GroundingSource[] = []): string {
  const near = [...new Set(closest.map((s) => s.source))].slice(0, 3);
  return (
    `${NOT_IN_DOCUMENTS} I found nothing in this workspace that answers “${squash(question).slice(0, 200)}”.` +
    (near.length > 0 ? ` The closest passages were in ${near.join(', ')}, but they do not address it.` : '') +
    ' Try other words, or add a document that covers it.'
  );
}

export class ExtractiveLlm implements Llm {
  readonly provider = 'extractive' as const;
  readonly id = 'extractive';
  readonly model = 'extractive';
  readonly generative = false;
  /** It reads every source it is given; the budget only bounds how much the agent retrieves. */
  readonly contextTokens = 16_384;

  constructor(private readonly opts: ExtractiveOptions = {}) {}

  answer(req: GenerateRequest): string {
    if (!req.grounding)
      return (
        'No language model is configured on this docupod instance (DOCUPOD_LLM_PROVIDER=extractive), so it can only ' +
        'answer from documents: ask with the model docupod:<workspace>, or configure an LLM (DOCUPOD_LLM_PROVIDER=openai or ollama).'
      );
    const { question, standalone, sources } = req.grounding;
    let picks = selectSentences(question, sources, this.opts);
    // A follow-up is answered on its own words first ("where is that configured?" → configured), with the earlier
    // question's words only when those alone find nothing.
    if (picks.length === 0 && standalone && standalone !== question) picks = selectSentences(standalone, sources, this.opts);
    return picks.length === 0 ? notInDocuments(req.grounding.question, req.grounding.sources) : formatAnswer(picks);
  }

  async *stream(req: GenerateRequest): AsyncGenerator<LlmEvent> {
    req.signal?.throwIfAborted();
    const text = this.answer(req);
    // Word-sized pieces, so clients render it the same way as a model's stream.
    for (const m of text.matchAll(/\S+\s*/g)) yield { type: 'token', text: m[0] };
    // No model ran, so no tokens were used: nothing counts against a workspace's daily token budget (issue 16).
    // The request itself is still counted (usage rows, requests per minute).
    yield { type: 'done', usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 }, finishReason: 'stop', model: this.model };
  }

  async listModels(): Promise<string[]> {
    return [this.model];
  }

  async ready(): Promise<true> {
    return true;
  }
}
