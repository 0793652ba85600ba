// Picks the LLM from configuration (config.llm).
import { DocupodError, Problems } from '../../core/errors.js';
import { ExtractiveLlm } from './extractive.js';
import type { LlmLog } from './http-stream.js';
import type { Llm } from './llm.js';
import { OllamaLlm } from './ollama.js';
import { OpenAiLlm } from './openai.js';

export interface LlmConfig {
  provider: 'extractive' | 'openai' | 'ollama' | 'llamacpp';
  baseUrl?: string;
  model?: string;
  apiKey?: string;
  contextTokens?: number;
  timeoutMs?: number;
  idleTimeoutMs?: number;
  maxRetries?: number;
}

export function createLlm(cfg: LlmConfig, deps: { log?: LlmLog } = {}): Llm {
  const tuning = { timeoutMs: cfg.timeoutMs, idleTimeoutMs: cfg.idleTimeoutMs, maxRetries: cfg.maxRetries, contextTokens: cfg.contextTokens, log: deps.log };
  switch (cfg.provider) {
    case 'extractive':
      return new ExtractiveLlm();
    case 'openai':
      if (!cfg.baseUrl) throw configError('DOCUPOD_LLM_BASE_URL is required when DOCUPOD_LLM_PROVIDER=openai (e.g. https://api.openai.com/v1)');
      if (!cfg.model) throw configError('DOCUPOD_LLM_MODEL is required when DOCUPOD_LLM_PROVIDER=openai (e.g. gpt-4o-mini)');
      return new OpenAiLlm({ ...tuning, baseUrl: cfg.baseUrl, model: cfg.model, apiKey: cfg.apiKey });
    case 'ollama':
      if (!cfg.model) throw configError('DOCUPOD_LLM_MODEL is required when DOCUPOD_LLM_PROVIDER=ollama (e.g. llama3.2)');
      return new OllamaLlm({ ...tuning, baseUrl: cfg.baseUrl, model: cfg.model });
    case 'llamacpp':
      throw new DocupodError(
        Problems.notImplemented,
        'DOCUPOD_LLM_PROVIDER=llamacpp is not available yet; run the GGUF model behind llama.cpp server and use DOCUPOD_LLM_PROVIDER=openai with its /v1 URL',
        { retryable: false },
      );
    default: {
      const unknown: never = cfg.provider;
      throw configError(`unknown LLM provider ${String(unknown)}`);
    }
  }
}

function configError(detail: string): DocupodError {
  return new DocupodError(Problems.badRequest, detail, { retryable: false });
}
