// Embeddings from Ollama's native API: POST /api/embed {model, input: [...]} → {embeddings: [[...]]}. Same batching,
// retry and timeout rules as the OpenAI-compatible adapter; a model that is not pulled gets a message saying how.
import { DocupodError, Problems } from '../../core/errors.js';
import type { Embedder } from './embedder.js';
import { batches, checkVectors, joinUrl, malformed, postJson, redactUrl, type HttpRetryOptions } from './http-client.js';

export interface OllamaEmbedderOptions extends HttpRetryOptions {
  /** Ollama's address, e.g. http://127.0.0.1:11434 (default). */
  baseUrl?: string;
  model: string;
  /** Inputs per request (default 64). */
  batchSize?: number;
  /**
   * Ollama truncates inputs longer than the model's context by default; false makes it answer with an error instead.
   * Left unset, Ollama's default applies.
   */
  truncate?: boolean;
  /** How long Ollama keeps the model loaded after a request, e.g. "10m"; unset: Ollama's default. */
  keepAlive?: string;
  /** Asks for shorter vectors (models that support it); part of the embedder id. */
  dimensions?: number;
}

const label = 'ollama embeddings';
export const defaultOllamaUrl = 'http://127.0.0.1:11434';

export class OllamaEmbedder implements Embedder {
  readonly id: string;
  private readonly url: string;
  private readonly batchSize: number;
  private dims: number | undefined;
  private probe: Promise<number> | undefined;

  constructor(private readonly options: OllamaEmbedderOptions) {
    if (!options.model) throw new DocupodError(Problems.badRequest, 'the ollama embedder needs a model name (DOCUPOD_EMBED_MODEL), e.g. nomic-embed-text', { retryable: false });
    const base = options.baseUrl ?? defaultOllamaUrl;
    try {
      new URL(base);
    } catch {
      throw new DocupodError(Problems.badRequest, `the ollama embedder's base URL is not a URL: ${base}`, { retryable: false });
    }
    this.url = joinUrl(base, 'api/embed');
    const size = options.batchSize ?? 64;
    if (!Number.isInteger(size) || size < 1) throw new DocupodError(Problems.badRequest, `batchSize must be a positive integer, got ${size}`, { retryable: false });
    this.batchSize = size;
    if (options.dimensions !== undefined) this.dims = options.dimensions;
    // "nomic-embed-text" and "nomic-embed-text:latest" are the same model in Ollama, so they share an id.
    this.id = `ollama:${withTag(options.model)}${options.dimensions ? `@${options.dimensions}` : ''}`;
  }

  async dimensions(): Promise<number> {
    if (this.dims !== undefined) return this.dims;
    this.probe ??= this.embed(['dimension probe']).then(
      ([v]) => v!.length,
      (err: unknown) => {
        this.probe = undefined;
        throw err;
      },
    );
    return this.probe;
  }

  async embed(texts: string[], signal?: AbortSignal): Promise<number[][]> {
    const out: number[][] = [];
    for (const batch of batches(texts, this.batchSize)) {
      signal?.throwIfAborted();
      out.push(...(await this.request(batch, signal)));
    }
    return out;
  }

  private async request(input: string[], signal?: AbortSignal): Promise<number[][]> {
    const o = this.options;
    const answer = await postJson({
      label,
      url: this.url,
      body: {
        model: o.model,
        input,
        ...(o.truncate !== undefined ? { truncate: o.truncate } : {}),
        ...(o.keepAlive !== undefined ? { keep_alive: o.keepAlive } : {}),
        ...(o.dimensions ? { dimensions: o.dimensions } : {}),
      },
      signal,
      timeoutMs: o.timeoutMs,
      maxRetries: o.maxRetries,
      retryBaseMs: o.retryBaseMs,
      retryMaxMs: o.retryMaxMs,
      maxRetryAfterMs: o.maxRetryAfterMs,
      log: o.log,
      describeError: (status, message) => this.describe(status, message),
    });
    const embeddings = (answer as { embeddings?: unknown } | null)?.embeddings;
    if (!Array.isArray(embeddings)) throw malformed(label, 'no `embeddings` array');
    const checked = checkVectors(label, embeddings, input.length, this.dims);
    this.dims ??= checked[0]!.length;
    return checked;
  }

  private describe(status: number, message: string): DocupodError | undefined {
    const where = redactUrl(this.url);
    if (status !== 404) return undefined;
    // Ollama: 404 {"error":"model \"x\" not found, try pulling it first"}. Any other 404 means this is not Ollama's
    // API root (or an Ollama too old for /api/embed, which arrived in 0.3).
    if (/model .*not found/i.test(message))
      return new DocupodError(
        Problems.llmUnavailable,
        `ollama at ${redactUrl(this.options.baseUrl ?? defaultOllamaUrl)} does not have the model "${this.options.model}": run \`ollama pull ${this.options.model}\` on that host (ollama said: ${message})`,
        { retryable: false, upstreamStatus: status, model: this.options.model },
      );
    return new DocupodError(
      Problems.llmUnavailable,
      `${label} at ${where} answered 404 (${message}); check that the base URL is Ollama's address (e.g. ${defaultOllamaUrl}) and that Ollama is 0.3 or newer`,
      { retryable: false, upstreamStatus: status },
    );
  }
}

/** "x" → "x:latest"; a tag is a ':' after the last '/', so "host:5000/ns/x" has none. */
function withTag(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1).includes(':') ? name : `${name}:latest`;
}
