// The optional reranking stage between retrieval and the answer: a cross-encoder reorders the retrieved chunks. It is
// an improvement, never a dependency: an error or a timeout keeps retrieval's order and says so in the trace.
import type { Reranker } from '../../adapters/rerank/reranker.js';
import type { SearchResult } from '../retrieval/contract.js';

export interface RerankStage {
  reranker: Reranker;
  /** Chunks kept after reranking (default: all candidates). */
  topN?: number;
  /** The longest the answer waits for the reranker (default 2 s). */
  timeoutMs?: number;
  /** Called with the time of every attempt (success or not), for the histogram. */
  observe?: (provider: string, seconds: number, ok: boolean) => void;
}

export interface RerankTrace {
  by: string;
  ms: number;
  /** False when the reranker failed and retrieval's order was kept. */
  applied: boolean;
  error?: string;
  candidates: number;
}

/** Reorders `results` by the reranker's scores (score = the reranker's), or returns them unchanged with the reason. */
export async function rerankResults(stage: RerankStage, query: string, results: readonly SearchResult[], signal?: AbortSignal): Promise<{ results: SearchResult[]; trace: RerankTrace }> {
  const t0 = performance.now();
  const timeoutMs = stage.timeoutMs ?? 2000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const done = (applied: boolean, error?: string) => {
    const ms = performance.now() - t0;
    stage.observe?.(stage.reranker.provider, ms / 1000, applied);
    return { by: stage.reranker.id, ms: Math.round(ms * 100) / 100, applied, candidates: results.length, ...(error ? { error } : {}) };
  };
  if (results.length === 0) return { results: [], trace: done(true) };
  try {
    // Heading and text together: the heading often names the topic the chunk's text only implies.
    const texts = results.map((r) => (r.heading ? `${r.heading}\n${r.text}` : r.text));
    const scores = await withTimeout(
      stage.reranker.rerank(query, texts, { topN: stage.topN, signal: signal ? AbortSignal.any([signal, timeout]) : timeout }),
      timeout,
      `did not answer within ${timeoutMs} ms`,
    );
    const ranked = scores.map((s) => ({ ...results[s.index]!, score: s.score }));
    // Candidates a backend left out (top_n) keep their retrieval order below the reranked ones.
    const rest = results.filter((_, i) => !scores.some((s) => s.index === i));
    const out = [...ranked, ...rest].slice(0, stage.topN ?? results.length);
    return { results: out, trace: done(true) };
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    const reason = timeout.aborted ? `did not answer within ${timeoutMs} ms` : err instanceof Error ? err.message : String(err);
    return { results: stage.topN ? results.slice(0, stage.topN) : [...results], trace: done(false, `reranking failed (${reason}); retrieval order kept`) };
  }
}

/** Rejects when `signal` aborts even if the promise ignores it (a backend that never reads the signal). */
function withTimeout<T>(p: Promise<T>, signal: AbortSignal, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error(message));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
