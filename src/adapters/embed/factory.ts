// Picks the embedder from configuration (config.embed). `none` means lexical search only: no embedder at all.
import { DocupodError, Problems } from '../../core/errors.js';
import type { Embedder } from './embedder.js';
import type { EmbedLog } from './http-client.js';
import { LlamaCppEmbedder } from './llamacpp.js';
import { OllamaEmbedder } from './ollama.js';
import { OpenAiEmbedder } from './openai.js';
import { TransformersEmbedder } from './transformers.js';

export type EmbedProvider = 'none' | 'openai' | 'ollama' | 'transformers' | 'llamacpp';

export interface EmbedderConfig {
  provider: EmbedProvider;
  /** openai: the API root (…/v1); ollama: Ollama's address (default http://127.0.0.1:11434). */
  baseUrl?: string;
  /** openai/ollama: the model name; transformers: the local model directory. */
  model?: string;
  apiKey?: string;
  /** Optional tuning; each adapter has sensible defaults. */
  batchSize?: number;
  timeoutMs?: number;
  maxRetries?: number;
  /** openai/ollama: ask for shorter vectors (Matryoshka models). */
  dimensions?: number;
}

/** `deps.log` (e.g. a pino child logger) hears about retries of the HTTP adapters. */
export function createEmbedder(cfg: EmbedderConfig, deps: { log?: EmbedLog; llamacpp?: { threads?: number; probe?: boolean } } = {}): Embedder | undefined {
  const tuning = { batchSize: cfg.batchSize, timeoutMs: cfg.timeoutMs, maxRetries: cfg.maxRetries, log: deps.log };
  switch (cfg.provider) {
    case 'none':
      return undefined;
    case 'openai':
      if (!cfg.baseUrl) throw configError('DOCUPOD_EMBED_BASE_URL is required when DOCUPOD_EMBED_PROVIDER=openai (e.g. https://api.openai.com/v1)');
      return new OpenAiEmbedder({ ...tuning, baseUrl: cfg.baseUrl, model: requireModel(cfg, 'e.g. text-embedding-3-small'), apiKey: cfg.apiKey, dimensions: cfg.dimensions });
    case 'ollama':
      return new OllamaEmbedder({ ...tuning, baseUrl: cfg.baseUrl, model: requireModel(cfg, 'e.g. nomic-embed-text'), dimensions: cfg.dimensions });
    case 'transformers':
      return new TransformersEmbedder({ modelPath: requireModel(cfg, 'the path of a local transformers.js model directory'), batchSize: cfg.batchSize });
    case 'llamacpp':
      return new LlamaCppEmbedder({ modelPath: requireModel(cfg, 'the path of a GGUF embedding model'), threads: deps.llamacpp?.threads, probe: deps.llamacpp?.probe, log: deps.log });
    default: {
      const unknown: never = cfg.provider;
      throw configError(`unknown embedding provider ${String(unknown)}; expected none, openai, ollama, transformers or llamacpp`);
    }
  }
}

function requireModel(cfg: EmbedderConfig, example: string): string {
  if (!cfg.model) throw configError(`DOCUPOD_EMBED_MODEL is required when DOCUPOD_EMBED_PROVIDER=${cfg.provider} (${example})`);
  return cfg.model;
}

function configError(detail: string): DocupodError {
  return new DocupodError(Problems.badRequest, detail, { retryable: false });
}
