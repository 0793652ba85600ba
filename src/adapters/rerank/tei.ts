// Hugging Face Text Embeddings Inference serving a cross-encoder: POST /rerank {query, texts} → [{index, score}].
// https://huggingface.github.io/text-embeddings-inference/ (the `rerank` route).
import { joinUrl, malformed, postJson } from '../embed/http-client.js';
import { checkScores, type Reranker, type RerankScore } from './reranker.js';

export interface TeiRerankerOptions {
  baseUrl: string;
  model?: string;
  apiKey?: string;
  timeoutMs?: number;
}

export class TeiReranker implements Reranker {
  readonly provider = 'tei' as const;
  readonly id: string;
  constructor(private readonly o: TeiRerankerOptions) {
    this.id = `tei:${o.model ?? o.baseUrl}`;
  }

  async rerank(query: string, texts: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<RerankScore[]> {
    if (texts.length === 0) return [];
    const body = await postJson({
      label: 'tei rerank',
      url: joinUrl(this.o.baseUrl, '/rerank'),
      // truncate: long chunks are cut to the model's window instead of failing the whole request with 413.
      body: { query, texts, truncate: true, raw_scores: false },
      headers: this.o.apiKey ? { authorization: `Bearer ${this.o.apiKey}` } : undefined,
      // One attempt: a slow reranker is skipped (the caller falls back), never retried while the user waits.
      maxRetries: 0,
      timeoutMs: this.o.timeoutMs,
      signal: opts.signal,
    });
    if (!Array.isArray(body)) throw malformed('tei rerank', 'expected a JSON array of {index, score}');
    return checkScores('tei rerank', body.map((r: { index?: unknown; score?: unknown }) => ({ index: Number(r?.index), score: Number(r?.score) })), texts.length);
  }
}
