// Picks the reranker from configuration (config.rerank). `none` (the default) means no reranking stage at all.
import { DocupodError, Problems } from '../../core/errors.js';
import { CohereReranker } from './cohere.js';
import type { Reranker } from './reranker.js';
import { TeiReranker } from './tei.js';
import { TransformersReranker } from './transformers.js';

export type RerankProvider = 'none' | 'tei' | 'cohere' | 'transformers';

export interface RerankerConfig {
  provider: RerankProvider;
  url?: string;
  model?: string;
  apiKey?: string;
  timeoutMs?: number;
}

export function createReranker(cfg: RerankerConfig): Reranker | undefined {
  switch (cfg.provider) {
    case 'none':
      return undefined;
    case 'tei':
      if (!cfg.url) throw configError('DOCUPOD_RERANK_URL is required when DOCUPOD_RERANK_PROVIDER=tei (e.g. http://tei-reranker:80)');
      return new TeiReranker({ baseUrl: cfg.url, model: cfg.model, apiKey: cfg.apiKey, timeoutMs: cfg.timeoutMs });
    case 'cohere':
      if (!cfg.url) throw configError('DOCUPOD_RERANK_URL is required when DOCUPOD_RERANK_PROVIDER=cohere (e.g. https://api.cohere.com)');
      if (!cfg.model) throw configError('DOCUPOD_RERANK_MODEL is required when DOCUPOD_RERANK_PROVIDER=cohere (e.g. rerank-v3.5)');
      return new CohereReranker({ baseUrl: cfg.url, model: cfg.model, apiKey: cfg.apiKey, timeoutMs: cfg.timeoutMs });
    case 'transformers':
      if (!cfg.model) throw configError('DOCUPOD_RERANK_MODEL is required when DOCUPOD_RERANK_PROVIDER=transformers (a local transformers.js cross-encoder directory)');
      return new TransformersReranker({ modelPath: cfg.model });
    default: {
      const unknown: never = cfg.provider;
      throw configError(`unknown rerank provider ${String(unknown)}; expected none, tei, cohere or transformers`);
    }
  }
}

function configError(detail: string): DocupodError {
  return new DocupodError(Problems.badRequest, detail, { retryable: false });
}
