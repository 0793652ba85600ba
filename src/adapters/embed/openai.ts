// Embeddings from any OpenAI-compatible `/v1/embeddings`: OpenAI, vLLM, llama.cpp server, LM Studio, Ollama's /v1.
// Plain fetch, no SDK: the wire format is small and stable, and the tests check it against the official client.
import { DocupodError, Problems } from '../../core/errors.js';
import type { Embedder } from './embedder.js';
import { batches, checkVectors, joinUrl, malformed, postJson, redactUrl, type HttpRetryOptions } from './http-client.js';

export interface OpenAiEmbedderOptions extends HttpRetryOptions {
  /**
   * The API root as the official client takes it, e.g. https://api.openai.com/v1 or http://vllm:8000/v1. A bare
   * host (no path) gets /v1 appended, since that is what every compatible server serves.
   */
  baseUrl: string;
  model: string;
  /** Sent as a Bearer token; local servers usually need none. */
  apiKey?: string;
  /**
   * Asks the model for shorter vectors (text-embedding-3 and other Matryoshka models). Part of the embedder id, since
   * vectors of another length are another index.
   */
  dimensions?: number;
  /** Inputs per request (default 64). */
  batchSize?: number;
  /** Extra headers, e.g. an organisation or a proxy's auth. */
  headers?: Record<string, string>;
}

const label = 'openai embeddings';

export class OpenAiEmbedder implements Embedder {
  readonly id: string;
  private readonly url: string;
  private readonly batchSize: number;
  private dims: number | undefined;
  private probe: Promise<number> | undefined;

  constructor(private readonly options: OpenAiEmbedderOptions) {
    if (!options.model) throw new DocupodError(Problems.badRequest, 'the openai embedder needs a model name (DOCUPOD_EMBED_MODEL)', { retryable: false });
    this.url = joinUrl(apiRoot(options.baseUrl), 'embeddings');
    this.batchSize = positiveInt(options.batchSize ?? 64, 'batchSize');
    if (options.dimensions !== undefined) this.dims = positiveInt(options.dimensions, 'dimensions');
    this.id = `openai:${options.model}${options.dimensions ? `@${options.dimensions}` : ''}`;
  }

  async dimensions(): Promise<number> {
    if (this.dims !== undefined) return this.dims;
    // One probe shared by concurrent callers; a failed probe is forgotten so the next call tries again.
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
    const body = {
      model: o.model,
      input,
      // The official client asks for base64 and decodes it; not every compatible server supports base64, so ask for
      // plain floats, which all of them do.
      encoding_format: 'float',
      ...(o.dimensions ? { dimensions: o.dimensions } : {}),
    };
    const answer = await postJson({
      label,
      url: this.url,
      body,
      headers: { ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}), ...o.headers },
      signal,
      timeoutMs: o.timeoutMs,
      maxRetries: o.maxRetries,
      retryBaseMs: o.retryBaseMs,
      retryMaxMs: o.retryMaxMs,
      maxRetryAfterMs: o.maxRetryAfterMs,
      log: o.log,
      describeError: (status, message) => this.describe(status, message),
    });
    const data = (answer as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) throw malformed(label, 'no `data` array');
    if (data.length !== input.length) throw malformed(label, `expected ${input.length} embeddings, got ${data.length}`);
    // Servers may answer out of order; `index` says which input each vector belongs to.
    const vectors: unknown[] = new Array<unknown>(input.length);
    for (const item of data as Array<{ index?: unknown; embedding?: unknown }>) {
      const i = item?.index;
      if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= input.length || vectors[i] !== undefined)
        throw malformed(label, `bad or repeated index ${String(i)} for ${input.length} inputs`);
      vectors[i] = typeof item.embedding === 'string' ? decodeBase64(item.embedding) : item.embedding;
    }
    const checked = checkVectors(label, vectors, input.length, this.dims);
    this.dims ??= checked[0]!.length;
    return checked;
  }

  private describe(status: number, message: string): DocupodError | undefined {
    const where = redactUrl(this.url);
    if (status === 401 || status === 403)
      return new DocupodError(Problems.llmUnavailable, `${label} at ${where} refused our credentials (${status}): ${message}; check DOCUPOD_EMBED_API_KEY`, { retryable: false, upstreamStatus: status });
    if (status === 404)
      return new DocupodError(
        Problems.llmUnavailable,
        `${label} at ${where} answered 404: ${message}; check the model name "${this.options.model}" and that the base URL is the API root (usually ending in /v1)`,
        { retryable: false, upstreamStatus: status },
      );
    return undefined;
  }
}

/** A bare host means the conventional /v1 root; anything with a path is taken as given. */
function apiRoot(baseUrl: string): string {
  let u: URL;
  try {
    u = new URL(baseUrl);
  } catch {
    throw new DocupodError(Problems.badRequest, `the openai embedder's base URL is not a URL: ${baseUrl}`, { retryable: false });
  }
  return u.pathname === '/' || u.pathname === '' ? joinUrl(baseUrl, 'v1') : baseUrl;
}

/** Some servers send base64 even when asked for floats (or ignore encoding_format): little-endian float32s. */
function decodeBase64(s: string): number[] {
  const bytes = Buffer.from(s, 'base64');
  const out: number[] = [];
  for (let i = 0; i + 4 <= bytes.length; i += 4) out.push(bytes.readFloatLE(i));
  return out;
}

function positiveInt(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new DocupodError(Problems.badRequest, `${name} must be a positive integer, got ${n}`, { retryable: false });
  return n;
}
