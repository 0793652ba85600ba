// The Cohere-style rerank API that Cohere, Jina, Voyage-compatible gateways, vLLM and Infinity serve:
// POST {base}/v1/rerank {model, query, documents, top_n} → {results: [{index, relevance_score}]}.
import { joinUrl, malformed, postJson } from '../embed/http-client.js';
import { checkScores, type Reranker, type RerankScore } from './reranker.js';

export interface CohereRerankerOptions {
  /** The server root, e.g. https://api.cohere.com or https://api.jina.ai; `/v1/rerank` is appended. */
  baseUrl: string;
  model: string;
  apiKey?: string;
  timeoutMs?: number;
}

export class CohereReranker implements Reranker {
  readonly provider = 'cohere' as const;
  readonly id: string;
  constructor(private readonly o: CohereRerankerOptions) {
    this.id = `cohere:${o.model}`;
  }

  async rerank(query: string, texts: readonly string[], opts: { topN?: number; signal?: AbortSignal } = {}): Promise<RerankScore[]> {
    if (texts.length === 0) return [];
    // A base URL that already ends in /v1 (as OpenAI-style settings often do) is not doubled.
    const url = /\/v1\/?$/.test(this.o.baseUrl) ? joinUrl(this.o.baseUrl, '/rerank') : joinUrl(this.o.baseUrl, '/v1/rerank');
    const body = (await postJson({
      label: 'rerank',
      url,
      body: { model: this.o.model, query, documents: texts, top_n: Math.min(opts.topN ?? texts.length, texts.length) },
      headers: this.o.apiKey ? { authorization: `Bearer ${this.o.apiKey}` } : undefined,
      // One attempt: a slow reranker is skipped (the caller falls back), never retried while the user waits.
      maxRetries: 0,
      timeoutMs: this.o.timeoutMs,
      signal: opts.signal,
    })) as { results?: unknown };
    if (!body || !Array.isArray(body.results)) throw malformed('rerank', 'expected {results: [{index, relevance_score}]}');
    return checkScores('rerank', body.results.map((r: { index?: unknown; relevance_score?: unknown }) => ({ index: Number(r?.index), score: Number(r?.relevance_score) })), texts.length);
  }
}
