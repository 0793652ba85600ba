// Query + candidate texts → relevance scores, behind one interface so the chat role never knows which backend runs.
export interface RerankScore {
  /** Position of the text in the request. */
  index: number;
  /** Higher is more relevant; scales differ between backends, so only the order is meaningful. */
  score: number;
}

export interface Reranker {
  /** e.g. "tei:BAAI/bge-reranker-base"; shown in the chat trace. */
  readonly id: string;
  /** The metrics label: none of the tenant's data, only which kind of backend. */
  readonly provider: 'tei' | 'cohere' | 'transformers';
  /** Scores for (some of) the texts, best first; texts left out ranked below every scored one. */
  rerank(query: string, texts: readonly string[], opts?: { topN?: number; signal?: AbortSignal }): Promise<RerankScore[]>;
  close?(): Promise<void>;
}

/** Checks an index list from a backend: integers in range, each once. */
export function checkScores(label: string, scores: RerankScore[], n: number): RerankScore[] {
  const seen = new Set<number>();
  for (const s of scores) {
    if (!Number.isInteger(s.index) || s.index < 0 || s.index >= n || seen.has(s.index) || !Number.isFinite(s.score))
      throw new Error(`${label} answered an invalid result (index ${String(s.index)}, score ${String(s.score)}) for ${n} texts`);
    seen.add(s.index);
  }
  return [...scores].sort((a, b) => b.score - a.score);
}
