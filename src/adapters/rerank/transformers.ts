// A cross-encoder in process with transformers.js (ONNX Runtime on the CPU) from a LOCAL model directory only, e.g.
// Xenova/ms-marco-MiniLM-L-6-v2 as the hub serves it: config.json, tokenizer.json, tokenizer_config.json and
// onnx/model.onnx. Each (query, text) pair is one input; the model's first logit is the score.
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { PreTrainedModel, PreTrainedTokenizer } from '@huggingface/transformers';
import { DocupodError, Problems } from '../../core/errors.js';
import { batches } from '../embed/http-client.js';
import { checkScores, type Reranker, type RerankScore } from './reranker.js';

export interface TransformersRerankerOptions {
  modelPath: string;
  /** Pairs per forward pass (default 16): larger is faster per pair but pads every pair to the longest one. */
  batchSize?: number;
}

export class TransformersReranker implements Reranker {
  readonly provider = 'transformers' as const;
  readonly id: string;
  private readonly dir: string;
  private loading: Promise<{ tokenizer: PreTrainedTokenizer; model: PreTrainedModel }> | undefined;

  constructor(private readonly o: TransformersRerankerOptions) {
    this.dir = resolve(o.modelPath);
    this.id = `transformers:${basename(this.dir)}`;
  }

  async rerank(query: string, texts: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<RerankScore[]> {
    if (texts.length === 0) return [];
    const { tokenizer, model } = await this.load();
    const scores: number[] = [];
    for (const batch of batches([...texts], this.o.batchSize ?? 16)) {
      // A forward pass cannot be interrupted; stop between batches (the caller's timeout aborts the signal).
      opts.signal?.throwIfAborted();
      const inputs = tokenizer(batch.map(() => query), { text_pair: batch, padding: true, truncation: true });
      const { logits } = (await model(inputs)) as { logits: { tolist(): number[][]; dispose(): void } };
      scores.push(...logits.tolist().map((row) => row[0]!));
      logits.dispose();
    }
    return checkScores('transformers rerank', scores.map((score, index) => ({ index, score })), texts.length);
  }

  /** Loads once; concurrent first calls share the load, a failed load is retried next time. */
  private load() {
    this.loading ??= this.open().catch((err: unknown) => {
      this.loading = undefined;
      throw err;
    });
    return this.loading;
  }

  private async open() {
    for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', join('onnx', 'model.onnx')]) {
      const found = await stat(join(this.dir, file)).then((s) => s.isFile(), () => false);
      if (!found)
        throw new DocupodError(Problems.llmUnavailable, `transformers reranker directory ${this.dir} has no ${file}; it needs config.json, tokenizer.json, tokenizer_config.json and onnx/model.onnx (a transformers.js cross-encoder as the Hugging Face hub serves it)`, { retryable: false });
    }
    // Imported here so a process that reranks some other way never loads ONNX Runtime.
    const { AutoTokenizer, AutoModelForSequenceClassification, env } = await import('@huggingface/transformers');
    // Process-wide, as in the transformers embedder: docupod never fetches models.
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    try {
      const tokenizer = await AutoTokenizer.from_pretrained(this.dir, { local_files_only: true });
      const model = await AutoModelForSequenceClassification.from_pretrained(this.dir, { local_files_only: true, dtype: 'fp32', device: 'cpu' });
      return { tokenizer, model };
    } catch (err) {
      throw new DocupodError(Problems.llmUnavailable, `could not load the transformers reranker in ${this.dir}: ${err instanceof Error ? err.message : String(err)}`, { retryable: false }, { cause: err });
    }
  }
}
