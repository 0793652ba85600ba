// The agent: one grounded answer. Rewrites a follow-up into a standalone query (the LLM when there is a generative
// one, a heuristic otherwise), retrieves, says "the documents don't say" when nothing retrieved matches, builds a
// prompt with numbered sources trimmed to the model's context budget, streams the answer and resolves its [n]
// citations to chunks, sources and quoted sentences.
import { NOT_IN_DOCUMENTS, notInDocuments, selectSentences } from '../../adapters/llm/extractive.js';
import { estimateMessagesTokens, estimateTokens, type GroundingSource, type Llm, type LlmMessage, type Usage } from '../../adapters/llm/llm.js';
import { sentences, squash, terms } from '../../adapters/llm/text.js';
import { ruleBasedStandalone } from './follow-up.js';
import type { RetrievalClient, SearchResult } from '../retrieval/contract.js';
import type { Citation, RetrievalTrace } from './contract.js';
import { rerankResults, type RerankStage, type RerankTrace } from './rerank.js';

export const DEFAULT_SYSTEM_PROMPT =
  'You are docupod, an assistant that answers questions about the documents in this workspace. Be concise and precise.';

const GROUNDING_RULES =
  'Answer only from the numbered sources below. After every sentence that uses a source, cite it with its number in ' +
  'square brackets, like [1] or [2][3]. Do not cite sources you did not use. If the sources do not contain the answer, ' +
  `reply exactly "${NOT_IN_DOCUMENTS}" and nothing else. Never invent facts, numbers, commands or sources.`;

export interface AgentDeps {
  llm: Llm;
  retrieval: RetrievalClient;
  /** Chunks retrieved per question (default 8). */
  k?: number;
  /** Tokens kept free for the answer (default 768). */
  answerTokens?: number;
  /** Earlier turns kept in the prompt, at most (default 6 messages). */
  historyMessages?: number;
  /** Time a model may take to rewrite a follow-up (default 5 s) before the rule-based rewrite is used. */
  rewriteTimeoutMs?: number;
  /** The optional reranking stage: `candidates` chunks are retrieved, reranked, and the best `topN` (default k) kept. */
  rerank?: RerankStage & { candidates?: number };
}

export interface AgentInput {
  workspaceId: string;
  question: string;
  /** Earlier turns, oldest first. */
  history: LlmMessage[];
  systemPrompt?: string | null;
  maxTokens?: number;
  temperature?: number;
  signal?: AbortSignal;
}

export interface AgentResult {
  answer: string;
  citations: Citation[];
  usage: Usage;
  model: string;
  finishReason: string;
  trace: RetrievalTrace;
}

export type AgentEvent = { type: 'token'; text: string } | { type: 'result'; result: AgentResult };

/** The retrieval query for `question` by rule (kept for callers of the old name): see follow-up.ts. */
export function heuristicRewrite(question: string, history: LlmMessage[]): string {
  return ruleBasedStandalone(question, history).query;
}

/**
 * Only a follow-up is rewritten; a new question is searched as asked. The decision is rule-based (follow-up.ts). With
 * a generative model, the model writes the standalone query within `rewriteTimeoutMs`; on an error, a timeout or an
 * unusable reply the rule-based query is used, so a slow or broken model never loses the user's question.
 */
async function rewrite(deps: AgentDeps, input: AgentInput): Promise<{ query: string; by: RetrievalTrace['rewrittenBy'] }> {
  const rules = ruleBasedStandalone(input.question, input.history);
  if (!rules.decision.followUp) return { query: input.question, by: 'none' };
  if (deps.llm.generative) {
    const timeout = AbortSignal.timeout(deps.rewriteTimeoutMs ?? 5_000);
    try {
      const recent = input.history.slice(-4).map((m) => `${m.role === 'user' ? 'User' : 'Assistant'}: ${m.content.slice(0, 600)}`).join('\n');
      let text = '';
      for await (const ev of deps.llm.stream({
        messages: [
          { role: 'system', content: 'Rewrite the last user question as one standalone search query, using the conversation for context. Reply with the query only, no quotes, no explanation.' },
          { role: 'user', content: `${recent}\nUser: ${input.question}\n\nStandalone query:` },
        ],
        maxTokens: 64,
        temperature: 0,
        signal: input.signal ? AbortSignal.any([input.signal, timeout]) : timeout,
      }))
        if (ev.type === 'token') text += ev.text;
      const q = text.trim().split('\n')[0]!.replace(/^["'“]|["'”]$/g, '').trim();
      if (q.length >= 2 && q.length <= 500) return { query: q, by: 'llm' };
    } catch (err) {
      if (input.signal?.aborted) throw err;
      // Rewriting is an optimisation: on failure or timeout, the rule-based query; the answer call reports errors.
    }
  }
  return { query: rules.query, by: rules.query === input.question ? 'none' : 'heuristic' };
}

/** Whether any retrieved chunk shares a key word with the query (the "documents don't say" gate). */
function relevantResults(query: string, results: SearchResult[]): boolean {
  const q = new Set(terms(query));
  if (q.size === 0) return results.length > 0;
  return results.some((r) => terms(`${r.heading} ${r.text}`).some((t) => q.has(t)));
}

function label(r: SearchResult): string {
  return [r.source, r.heading && r.heading !== r.title ? r.heading : '', r.page ? `page ${r.page}` : ''].filter(Boolean).join(' › ');
}

export async function* runAgent(deps: AgentDeps, input: AgentInput): AsyncGenerator<AgentEvent> {
  const t0 = performance.now();
  const { query, by } = await rewrite(deps, input);
  const tr = performance.now();
  const k = deps.k ?? 8;
  const searched = await deps.retrieval.search({ workspaceId: input.workspaceId, query: query.slice(0, 2000), k: deps.rerank ? Math.max(k, deps.rerank.candidates ?? k) : k });
  const retrievalMs = performance.now() - tr;
  let search = searched;
  let rerank: RerankTrace | undefined;
  if (deps.rerank) {
    const r = await rerankResults({ ...deps.rerank, topN: deps.rerank.topN ?? k }, query.slice(0, 2000), searched.results, input.signal);
    rerank = r.trace;
    // A failed reranker is said in the retrieval notes too, which every client already shows.
    search = { ...searched, results: r.results, ...(r.trace.error ? { notes: [...(searched.notes ?? []), r.trace.error] } : {}) };
  }
  const relevant = search.results.length > 0 && relevantResults(query, search.results);

  // The prompt: system + rules + numbered sources (as many as fit), recent history, the question.
  const system = `${input.systemPrompt?.trim() || DEFAULT_SYSTEM_PROMPT}\n\n${GROUNDING_RULES}`;
  const history = input.history.slice(-(deps.historyMessages ?? 6));
  const answerTokens = Math.min(input.maxTokens ?? deps.answerTokens ?? 768, Math.floor(deps.llm.contextTokens / 2));
  let budget = deps.llm.contextTokens - answerTokens - estimateMessagesTokens([{ role: 'system', content: system }, ...history, { role: 'user', content: input.question }]) - 16;
  // History gives way to sources when the budget is tight.
  while (budget < 400 && history.length > 0) {
    budget += estimateTokens(history.shift()!.content) + 4;
  }
  const used: Array<{ n: number; r: SearchResult }> = [];
  const sources: GroundingSource[] = [];
  const blocks: string[] = [];
  if (relevant) {
    for (const r of search.results) {
      const head = `[${used.length + 1}] ${label(r)}\n`;
      let text = r.text;
      const cost = estimateTokens(head + text) + 2;
      if (cost > budget) {
        if (budget < 120) break;
        text = `${text.slice(0, Math.max(0, (budget - estimateTokens(head) - 4) * 4))}…`;
      }
      const n = used.length + 1;
      used.push({ n, r });
      sources.push({ n, text: r.text, source: r.source, heading: r.heading, start: r.charStart });
      blocks.push(head + text);
      budget -= estimateTokens(head + text) + 2;
      if (budget <= 0) break;
    }
  }
  const messages: LlmMessage[] = [
    { role: 'system', content: `${system}\n\nSources:\n\n${blocks.join('\n\n') || '(none)'}` },
    ...history,
    { role: 'user', content: input.question },
  ];
  const promptTokens = estimateMessagesTokens(messages);
  const trace = (extra: Pick<RetrievalTrace, 'ttftMs' | 'totalMs' | 'llm'>): RetrievalTrace => ({
    question: input.question,
    query,
    rewrittenBy: by,
    mode: search.mode,
    ...(search.notes?.length ? { retrievalNotes: search.notes } : {}),
    retrievalMs: round(retrievalMs),
    ...(rerank ? { rerank } : {}),
    results: search.results.map((r) => ({ chunkId: r.chunkId, documentId: r.documentId, source: r.source, score: r.score, n: used.find((u) => u.r.chunkId === r.chunkId)?.n ?? null })),
    relevant,
    promptTokens,
    ...extra,
  });

  if (!relevant) {
    // Nothing to ground an answer on: say so without spending model tokens.
    // The closest sources are named, so the user sees where the search looked.
    const answer = notInDocuments(input.question, search.results.map((r, i) => ({ n: i + 1, text: '', source: r.source })));
    for (const m of answer.matchAll(/\S+\s*/g)) yield { type: 'token', text: m[0] };
    yield {
      type: 'result',
      result: { answer, citations: [], usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 }, model: deps.llm.model, finishReason: 'stop', trace: trace({ ttftMs: null, totalMs: round(performance.now() - t0), llm: deps.llm.id }) },
    };
    return;
  }

  let answer = '';
  let ttft: number | null = null;
  const tl = performance.now();
  for await (const ev of deps.llm.stream({
    messages,
    maxTokens: answerTokens,
    temperature: input.temperature ?? 0.1,
    signal: input.signal,
    grounding: { question: input.question, standalone: query, sources },
  })) {
    if (ev.type === 'token') {
      ttft ??= performance.now() - tl;
      answer += ev.text;
      yield ev;
    } else {
      yield {
        type: 'result',
        result: {
          answer,
          citations: resolveCitations(answer, used),
          usage: ev.usage,
          model: ev.model,
          finishReason: ev.finishReason,
          trace: trace({ ttftMs: ttft === null ? null : round(ttft), totalMs: round(performance.now() - t0), llm: deps.llm.id }),
        },
      };
    }
  }
}

/**
 * [n] markers → citations. A marker group ("[1]", "[1][2]") supports the answer text between the previous group (or
 * the answer's start) and itself, wherever it stands: "… file. [1]" (after the full stop, as the extractive answerer
 * writes it) and "… file [1]." alike. Each sentence of that text is matched to the cited chunk's sentences: verbatim
 * when the answer copied it, else by shared key words (a model's paraphrase). The sentence right before the marker
 * always counts; earlier ones in the same stretch only when they clearly come from that chunk. The quote is the
 * matched sentences when they are consecutive in the chunk, else the first one used.
 */
export function resolveCitations(answer: string, used: Array<{ n: number; r: SearchResult }>): Citation[] {
  const byN = new Map(used.map((u) => [u.n, u.r]));
  const claims = new Map<number, string[]>();
  let from = 0;
  for (const g of answer.matchAll(/(?:\s*\[\d+\])+/g)) {
    const text = answer.slice(from, g.index).replace(/^[\s.,;:!?)\]]+/, '');
    from = g.index + g[0].length;
    if (!/[\p{L}\p{N}]/u.test(text)) continue;
    for (const m of g[0].matchAll(/\[(\d+)\]/g)) {
      const n = Number(m[1]);
      if (byN.has(n)) claims.set(n, [...(claims.get(n) ?? []), text]);
    }
  }
  // Markers with no text before them ("[1] The …" at the very start): the text after them is what they support.
  for (const m of answer.matchAll(/\[(\d+)\]/g)) {
    const n = Number(m[1]);
    if (byN.has(n) && !claims.has(n)) claims.set(n, [answer.replace(/\[\d+\]/g, '')]);
  }
  const out: Citation[] = [];
  for (const [n, texts] of [...claims.entries()].sort((a, b) => a[0] - b[0])) {
    const r = byN.get(n)!;
    const quote = quoteFor(texts, r.text);
    out.push({
      n,
      chunkId: r.chunkId,
      documentId: r.documentId,
      source: r.source,
      title: r.title,
      heading: r.heading,
      page: r.page,
      quote: quote.text,
      quoteStart: r.charStart + quote.start,
      quoteEnd: r.charStart + quote.end,
    });
  }
  return out;
}

/** The light stemmer leaves "exclusive" and "exclusively" as exclusiv/exclusive: a shared start of 5+ letters matches. */
const sameStem = (a: string, b: string) => a.length >= 5 && b.length >= 5 && (a.startsWith(b) || b.startsWith(a));

const flat = (s: string) => s.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();

/** The span of `chunk` that the claim texts used (see resolveCitations). */
function quoteFor(claims: string[], chunk: string): { text: string; start: number; end: number } {
  const cs = sentences(chunk).map((s, idx) => ({ ...s, idx, flat: flat(s.text), terms: new Set(terms(s.text)) }));
  const usedIdx: number[] = [];
  for (const claim of claims) {
    const parts = sentences(claim);
    parts.forEach((p, i) => {
      const f = flat(p.text);
      const last = i === parts.length - 1;
      if (!f) return;
      // Verbatim: the answer copied the chunk's sentence (or a whole part of it).
      const exact = cs.find((c) => c.flat === f || (f.length >= 20 && c.flat.includes(f)) || (c.flat.length >= 20 && f.includes(c.flat)));
      if (exact) return void usedIdx.push(exact.idx);
      const t = [...new Set(terms(p.text))];
      if (t.length === 0) return;
      let best: (typeof cs)[number] | undefined;
      let bestShare = 0;
      for (const c of cs) {
        const share = t.filter((x) => c.terms.has(x) || [...c.terms].some((y) => sameStem(x, y))).length / t.length;
        if (share > bestShare) [best, bestShare] = [c, share];
      }
      if (best && (last ? bestShare > 0 : bestShare >= 0.5)) usedIdx.push(best.idx);
    });
  }
  if (usedIdx.length === 0) {
    // Nothing in common with the claim: the chunk's sentence that best fits all of it, else its first sentence.
    const pick = selectSentences(claims.join(' '), [{ n: 0, text: chunk, source: '' }], { maxSentences: 1, minCoverage: 0 })[0];
    if (pick) return pick;
    const first = cs[0];
    return first ? { text: squash(first.text), start: first.start, end: first.end } : { text: chunk.slice(0, 200), start: 0, end: Math.min(200, chunk.length) };
  }
  // The run of consecutive chunk sentences that holds the first sentence used.
  const set = new Set(usedIdx);
  let lo = usedIdx[0]!;
  let hi = lo;
  while (set.has(lo - 1)) lo--;
  while (set.has(hi + 1)) hi++;
  const a = cs[lo]!;
  const b = cs[hi]!;
  return { text: squash(chunk.slice(a.start, b.end)), start: a.start, end: b.end };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
