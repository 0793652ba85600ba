// Ollama's native API: POST /api/chat streams NDJSON (one JSON object per line, the last with `done: true` and the
// token counts), GET /api/tags lists pulled models, POST /api/pull downloads one with progress lines.
import { DocupodError, Problems } from '../../core/errors.js';
import { joinUrl, redactUrl } from '../embed/http-client.js';
import { openStream, errorMessage, type StreamHttpOptions } from './http-stream.js';
import { estimateMessagesTokens, estimateTokens, type GenerateRequest, type Llm, type LlmEvent } from './llm.js';

export interface OllamaLlmOptions extends StreamHttpOptions {
  /** Default http://127.0.0.1:11434. */
  baseUrl?: string;
  model: string;
  contextTokens?: number;
  /** How long Ollama keeps the model loaded after a request, e.g. "5m". */
  keepAlive?: string;
}

export interface PullProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

interface ChatLine {
  model?: string;
  message?: { role?: string; content?: string };
  done?: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  error?: string;
}

export class OllamaLlm implements Llm {
  readonly provider = 'ollama' as const;
  readonly generative = true;
  readonly id: string;
  readonly model: string;
  readonly contextTokens: number;
  private readonly base: string;

  constructor(private readonly o: OllamaLlmOptions) {
    this.base = o.baseUrl ?? 'http://127.0.0.1:11434';
    this.model = o.model;
    this.id = `ollama:${o.model}`;
    this.contextTokens = o.contextTokens ?? 4096;
  }

  async *stream(req: GenerateRequest): AsyncGenerator<LlmEvent> {
    const model = req.model ?? this.model;
    const label = `ollama chat (${model})`;
    const stream = await openStream({
      ...this.o,
      label,
      url: joinUrl(this.base, 'api/chat'),
      signal: req.signal,
      body: {
        model,
        messages: req.messages,
        stream: true,
        ...(this.o.keepAlive ? { keep_alive: this.o.keepAlive } : {}),
        options: {
          num_ctx: this.contextTokens,
          ...(req.maxTokens ? { num_predict: req.maxTokens } : {}),
          ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
          ...(req.stop?.length ? { stop: req.stop } : {}),
        },
      },
      describeError: (status, message) =>
        status === 404
          ? new DocupodError(Problems.badRequest, `${label} at ${redactUrl(this.base)}: ${message}; run \`ollama pull ${model}\` on the Ollama host (or \`docupod\` pulls it with OllamaLlm.pull)`, { retryable: false, upstreamStatus: 404 })
          : undefined,
    });
    let text = '';
    for await (const raw of stream.lines()) {
      const line = raw.trim();
      if (!line) continue;
      let msg: ChatLine;
      try {
        msg = JSON.parse(line) as ChatLine;
      } catch {
        throw new DocupodError(Problems.llmUnavailable, `${label} sent a line that is not JSON: ${line.slice(0, 200)}`, { retryable: false });
      }
      if (msg.error) throw new DocupodError(Problems.llmUnavailable, `${label} failed mid-answer: ${msg.error}`, { retryable: false });
      const piece = msg.message?.content;
      if (piece) {
        text += piece;
        yield { type: 'token', text: piece };
      }
      if (msg.done) {
        const promptTokens = msg.prompt_eval_count ?? estimateMessagesTokens(req.messages);
        const completionTokens = msg.eval_count ?? estimateTokens(text);
        yield {
          type: 'done',
          usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens },
          finishReason: msg.done_reason === 'length' ? 'length' : 'stop',
          model: msg.model ?? model,
        };
        return;
      }
    }
    throw new DocupodError(Problems.llmUnavailable, `${label} closed the stream before the answer ended (no done line)`, { retryable: true });
  }

  async listModels(signal?: AbortSignal): Promise<string[]> {
    const res = await fetch(joinUrl(this.base, 'api/tags'), { signal: signal ?? AbortSignal.timeout(this.o.timeoutMs ?? 10_000) });
    if (!res.ok) throw new DocupodError(Problems.llmUnavailable, `ollama at ${redactUrl(this.base)} answered ${res.status} to /api/tags: ${errorMessage(await res.text())}`);
    const body = (await res.json()) as { models?: Array<{ name?: unknown }> };
    return (body.models ?? []).map((m) => m.name).filter((n): n is string => typeof n === 'string');
  }

  /** Whether the model is pulled (a name without a tag means ':latest', as in Ollama). */
  async hasModel(model = this.model): Promise<boolean> {
    const tagged = (n: string) => (n.slice(n.lastIndexOf('/') + 1).includes(':') ? n : `${n}:latest`);
    return (await this.listModels()).map(tagged).includes(tagged(model));
  }

  /** Downloads a model, reporting each progress line; resolves at `success`. */
  async pull(model = this.model, onProgress?: (p: PullProgress) => void, signal?: AbortSignal): Promise<void> {
    const stream = await openStream({
      ...this.o,
      // Pulls of large models are slow between lines while layers verify.
      idleTimeoutMs: this.o.idleTimeoutMs ?? 600_000,
      label: `ollama pull (${model})`,
      url: joinUrl(this.base, 'api/pull'),
      signal,
      body: { model, stream: true },
    });
    for await (const raw of stream.lines()) {
      if (!raw.trim()) continue;
      const p = JSON.parse(raw) as PullProgress & { error?: string };
      if (p.error) throw new DocupodError(Problems.llmUnavailable, `ollama could not pull ${model}: ${p.error}`, { retryable: false });
      onProgress?.(p);
      if (p.status === 'success') return;
    }
    throw new DocupodError(Problems.llmUnavailable, `ollama pull of ${model} ended without success`, { retryable: true });
  }

  async ready(): Promise<true | string> {
    try {
      const res = await fetch(joinUrl(this.base, 'api/version'), { signal: AbortSignal.timeout(5_000) });
      await res.body?.cancel();
      return res.ok ? true : `ollama at ${redactUrl(this.base)} answered ${res.status}`;
    } catch (err) {
      return `ollama at ${redactUrl(this.base)} does not answer: ${(err as Error).message}`;
    }
  }
}
