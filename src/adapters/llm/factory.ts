// Picks the LLM from configuration (config.llm).
import { DocupodError, Problems } from '../../core/errors.js';
import { ExtractiveLlm } from './extractive.js';
import { LlamaCppLlm } from './llamacpp.js';
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
  /** llamacpp only. */
  parallel?: number;
  maxQueue?: number;
  temperature?: number;
  topP?: number;
  maxTokens?: number;
}

/** The in-process llama.cpp runtime settings (config.llamacpp), shared with the llamacpp embedder. */
export interface LlamaCppRuntimeConfig {
  threads?: number;
  probe?: boolean;
}

export function createLlm(cfg: LlmConfig, deps: { log?: LlmLog; llamacpp?: LlamaCppRuntimeConfig } = {}): Llm {
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
      if (!cfg.model) throw configError('DOCUPOD_LLM_MODEL is required when DOCUPOD_LLM_PROVIDER=llamacpp (the path of a GGUF file)');
      // The file is checked and loaded on first use, so a bad file fails requests (503, naming it), not the start.
      return new LlamaCppLlm({
        modelPath: cfg.model,
        contextTokens: cfg.contextTokens,
        parallel: cfg.parallel,
        maxQueue: cfg.maxQueue,
        temperature: cfg.temperature,
        topP: cfg.topP,
        maxTokens: cfg.maxTokens,
        threads: deps.llamacpp?.threads,
        probe: deps.llamacpp?.probe,
        log: deps.log,
      });
    default: {
      const unknown: never = cfg.provider;
      throw configError(`unknown LLM provider ${String(unknown)}`);
    }
  }
}

function configError(detail: string): DocupodError {
  return new DocupodError(Problems.badRequest, detail, { retryable: false });
}
