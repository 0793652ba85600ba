// Any OpenAI-compatible chat server (OpenAI, vLLM, llama.cpp server, LM Studio, Ollama's /v1): POST /chat/completions
// with `stream: true`, Server-Sent Events of `chat.completion.chunk`, usage from `stream_options.include_usage`.
import { DocupodError, Problems } from '../../core/errors.js';
import { joinUrl, redactUrl } from '../embed/http-client.js';
import { openStream, type StreamHttpOptions } from './http-stream.js';
import { estimateMessagesTokens, estimateTokens, type GenerateRequest, type Llm, type LlmEvent, type Usage } from './llm.js';

export interface OpenAiLlmOptions extends StreamHttpOptions {
  /** The API root, e.g. https://api.openai.com/v1 or http://vllm:8000/v1. */
  baseUrl: string;
  model: string;
  apiKey?: string;
  contextTokens?: number;
}

interface ChunkBody {
  model?: string;
  choices?: Array<{ delta?: { content?: string | null }; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null;
  error?: { message?: string } | string;
}

export class OpenAiLlm implements Llm {
  readonly provider = 'openai' as const;
  readonly generative = true;
  readonly id: string;
  readonly model: string;
  readonly contextTokens: number;

  constructor(private readonly o: OpenAiLlmOptions) {
    this.model = o.model;
    this.id = `openai:${o.model}`;
    this.contextTokens = o.contextTokens ?? 8192;
  }

  private headers(): Record<string, string> {
    return { accept: 'text/event-stream', ...(this.o.apiKey ? { authorization: `Bearer ${this.o.apiKey}` } : {}) };
  }

  async *stream(req: GenerateRequest): AsyncGenerator<LlmEvent> {
    const model = req.model ?? this.model;
    const label = `openai-compatible chat (${model})`;
    const stream = await openStream({
      ...this.o,
      label,
      url: joinUrl(this.o.baseUrl, 'chat/completions'),
      headers: this.headers(),
      signal: req.signal,
      body: {
        model,
        messages: req.messages,
        stream: true,
        stream_options: { include_usage: true },
        ...(req.maxTokens ? { max_tokens: req.maxTokens } : {}),
        ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
        ...(req.stop?.length ? { stop: req.stop } : {}),
      },
      describeError: (status, message) =>
        status === 404
          ? new DocupodError(Problems.badRequest, `${label} at ${redactUrl(this.o.baseUrl)}: ${message} (check DOCUPOD_LLM_MODEL)`, { retryable: false, upstreamStatus: 404 })
          : status === 401 || status === 403
            ? new DocupodError(Problems.llmUnavailable, `${label} at ${redactUrl(this.o.baseUrl)} refused our key (${status}): ${message} (check DOCUPOD_LLM_API_KEY)`, { retryable: false, upstreamStatus: status })
            : undefined,
    });
    let text = '';
    let usage: Usage | undefined;
    let finish: string | undefined;
    let seenModel = model;
    let done = false;
    // A batch is the lines of one network read: the loop over it is plain code, no await per line.
    read: for await (const lines of stream.batches()) {
      for (const line of lines) {
        if (!line.startsWith('data:')) continue; // comments (": keep-alive"), event names, blank separators
        const data = line.slice(5).trim();
        if (data === '[DONE]') {
          done = true;
          break read;
        }
        let chunk: ChunkBody;
        try {
          chunk = JSON.parse(data) as ChunkBody;
        } catch {
          throw new DocupodError(Problems.llmUnavailable, `${label} sent a stream event that is not JSON: ${data.slice(0, 200)}`, { retryable: false });
        }
        if (chunk.error) {
          const msg = typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'unknown error');
          throw new DocupodError(Problems.llmUnavailable, `${label} failed mid-answer: ${msg}`, { retryable: false });
        }
        if (chunk.model) seenModel = chunk.model;
        const choice = chunk.choices?.[0];
        const piece = choice?.delta?.content;
        if (piece) {
          text += piece;
          yield { type: 'token', text: piece };
        }
        if (choice?.finish_reason) finish = choice.finish_reason;
        if (chunk.usage) {
          const p = chunk.usage.prompt_tokens ?? 0;
          const c = chunk.usage.completion_tokens ?? 0;
          usage = { promptTokens: p, completionTokens: c, totalTokens: chunk.usage.total_tokens ?? p + c };
        }
      }
    }
    if (!done && !finish)
      throw new DocupodError(Problems.llmUnavailable, `${label} closed the stream before the answer ended (no [DONE])`, { retryable: true });
    usage ??= estimateUsage(estimateMessagesTokens(req.messages), text);
    yield { type: 'done', usage, finishReason: finish ?? 'stop', model: seenModel };
  }

  async listModels(signal?: AbortSignal): Promise<string[]> {
    const res = await fetch(joinUrl(this.o.baseUrl, 'models'), {
      headers: this.o.apiKey ? { authorization: `Bearer ${this.o.apiKey}` } : {},
      signal: signal ?? AbortSignal.timeout(this.o.timeoutMs ?? 10_000),
    }).catch(() => undefined);
    if (!res?.ok) return [this.model];
    const body = (await res.json().catch(() => undefined)) as { data?: Array<{ id?: unknown }> } | undefined;
    const ids = (body?.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
    return ids.length > 0 ? ids : [this.model];
  }

  async ready(): Promise<true | string> {
    try {
      const res = await fetch(joinUrl(this.o.baseUrl, 'models'), {
        headers: this.o.apiKey ? { authorization: `Bearer ${this.o.apiKey}` } : {},
        signal: AbortSignal.timeout(5_000),
      });
      await res.body?.cancel();
      // A server without /models (some proxies) still answers; only "nobody there" is not ready.
      return res.status >= 500 ? `LLM at ${redactUrl(this.o.baseUrl)} answered ${res.status}` : true;
    } catch (err) {
      return `LLM at ${redactUrl(this.o.baseUrl)} does not answer: ${(err as Error).message}`;
    }
  }
}

export function estimateUsage(promptTokens: number, answer: string): Usage {
  const completionTokens = estimateTokens(answer);
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens };
}
