// Embeddings in process with llama.cpp (node-llama-cpp) from a GGUF embedding model (e.g. nomic-embed-text, bge-small,
// all-MiniLM GGUF quantisations). The vector length is the model's embedding_length. The file is checked and
// probe-loaded in a child process first (../llm/gguf.ts), so a malformed file fails with an error naming it instead of
// aborting the server.
import { basename, resolve } from 'node:path';
import type { LlamaEmbeddingContext, LlamaModel } from 'node-llama-cpp';
import { DocupodError, Problems } from '../../core/errors.js';
import { checkGgufBeforeLoad, defaultThreads, getLlamaRuntime } from '../llm/gguf.js';
import type { Embedder } from './embedder.js';

export interface LlamaCppEmbedderOptions {
  modelPath: string;
  /** Tokens per text (longer texts are cut); default min(2048, the model's training context). */
  contextTokens?: number;
  threads?: number;
  /** L2-normalise each vector (default true), so cosine similarity is a dot product. */
  normalize?: boolean;
  probe?: boolean;
  log?: { warn(obj: object, msg: string): void };
}

interface Loaded {
  model: LlamaModel;
  context: LlamaEmbeddingContext;
  contextSize: number;
}

export class LlamaCppEmbedder implements Embedder {
  readonly id: string;
  readonly path: string;
  private loading: Promise<Loaded> | undefined;
  /** One text at a time through the one embedding context. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: LlamaCppEmbedderOptions) {
    if (!o.modelPath) throw new DocupodError(Problems.badRequest, 'the llamacpp embedder needs a GGUF file (DOCUPOD_EMBED_MODEL)', { retryable: false });
    this.path = resolve(o.modelPath);
    this.id = `llamacpp:${basename(this.path).replace(/\.gguf$/i, '')}${o.normalize === false ? '@raw' : ''}`;
  }

  async dimensions(): Promise<number> {
    return (await this.load()).model.embeddingVectorSize;
  }

  async embed(texts: string[], signal?: AbortSignal): Promise<number[][]> {
    if (texts.length === 0) return [];
    const { model, context, contextSize } = await this.load();
    const run = this.chain.then(async () => {
      const out: number[][] = [];
      for (const text of texts) {
        signal?.throwIfAborted();
        const tokens = model.tokenize(text).slice(0, contextSize);
        const { vector } = await context.getEmbeddingFor(tokens.length > 0 ? tokens : model.tokenize(' '));
        out.push(this.o.normalize === false ? Array.from(vector) : unit(vector));
      }
      return out;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private load(): Promise<Loaded> {
    this.loading ??= this.open().catch((err: unknown) => {
      this.loading = undefined;
      throw err;
    });
    return this.loading;
  }

  private async open(): Promise<Loaded> {
    await checkGgufBeforeLoad(this.path, { probe: this.o.probe });
    const llama = await getLlamaRuntime(this.o.log);
    let model: LlamaModel | undefined;
    try {
      model = await llama.loadModel({ modelPath: this.path });
      const contextSize = Math.min(this.o.contextTokens ?? 2048, model.trainContextSize || 2048);
      const context = await model.createEmbeddingContext({ contextSize, threads: this.o.threads ?? defaultThreads() });
      return { model, context, contextSize };
    } catch (err) {
      await model?.dispose().catch(() => undefined);
      throw new DocupodError(Problems.llmUnavailable, `GGUF embedding model ${this.path}: llama.cpp could not load it: ${err instanceof Error ? err.message : String(err)}`, { retryable: false, model: this.path }, { cause: err });
    }
  }

  async close(): Promise<void> {
    const loaded = await this.loading?.catch(() => undefined);
    this.loading = undefined;
    await loaded?.context.dispose().catch(() => undefined);
    await loaded?.model.dispose().catch(() => undefined);
  }
}

function unit(v: readonly number[]): number[] {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  return v.map((x) => x / norm);
}
