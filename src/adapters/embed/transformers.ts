// Embeddings in process with transformers.js (ONNX Runtime on the CPU) from a LOCAL model directory only: docupod
// never downloads a model. The directory is what the Hugging Face hub serves for a transformers.js model, e.g.
// Xenova/all-MiniLM-L6-v2: config.json, tokenizer.json, tokenizer_config.json and onnx/model.onnx.
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { FeatureExtractionPipeline } from '@huggingface/transformers';
import { DocupodError, Problems } from '../../core/errors.js';
import type { Embedder } from './embedder.js';
import { batches } from './http-client.js';

export interface TransformersEmbedderOptions {
  /** The model directory (absolute, or relative to the working directory). */
  modelPath: string;
  /** How token vectors become one vector: mean over real tokens (default; sentence-transformers models) or [CLS]. */
  pooling?: 'mean' | 'cls';
  /** L2-normalise each vector (default true), so cosine similarity is a dot product. */
  normalize?: boolean;
  /** Texts per forward pass (default 32): larger is faster per text but pads every text to the longest one. */
  batchSize?: number;
  /** Which weights to load: 'fp32' → onnx/model.onnx (default), 'q8' → onnx/model_quantized.onnx, and so on. */
  dtype?: 'fp32' | 'fp16' | 'q8' | 'int8' | 'uint8' | 'q4';
}

const fileSuffix: Record<NonNullable<TransformersEmbedderOptions['dtype']>, string> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
};

export class TransformersEmbedder implements Embedder {
  readonly id: string;
  private readonly dir: string;
  private readonly pooling: 'mean' | 'cls';
  private readonly normalize: boolean;
  private readonly batchSize: number;
  private readonly dtype: NonNullable<TransformersEmbedderOptions['dtype']>;
  private loading: Promise<FeatureExtractionPipeline> | undefined;
  private dims: number | undefined;

  constructor(options: TransformersEmbedderOptions) {
    if (!options.modelPath)
      throw new DocupodError(Problems.badRequest, 'the transformers embedder needs a model directory (DOCUPOD_EMBED_MODEL)', { retryable: false });
    this.dir = resolve(options.modelPath);
    this.pooling = options.pooling ?? 'mean';
    this.normalize = options.normalize ?? true;
    this.dtype = options.dtype ?? 'fp32';
    const size = options.batchSize ?? 32;
    if (!Number.isInteger(size) || size < 1) throw new DocupodError(Problems.badRequest, `batchSize must be a positive integer, got ${size}`, { retryable: false });
    this.batchSize = size;
    // The directory name identifies the model (moving the directory does not re-embed); settings that change the
    // vectors are part of the id.
    const variant = [this.pooling !== 'mean' ? this.pooling : '', !this.normalize ? 'raw' : '', this.dtype !== 'fp32' ? this.dtype : '']
      .filter(Boolean)
      .join(',');
    this.id = `transformers:${basename(this.dir)}${variant ? `@${variant}` : ''}`;
  }

  async dimensions(): Promise<number> {
    if (this.dims === undefined) await this.embed(['dimension probe']);
    return this.dims!;
  }

  async embed(texts: string[], signal?: AbortSignal): Promise<number[][]> {
    if (texts.length === 0) return [];
    const extractor = await this.load();
    const out: number[][] = [];
    for (const batch of batches(texts, this.batchSize)) {
      // A forward pass cannot be interrupted; stop between batches.
      signal?.throwIfAborted();
      const tensor = await extractor(batch, { pooling: this.pooling, normalize: this.normalize });
      const vectors = tensor.tolist() as number[][];
      tensor.dispose();
      out.push(...vectors);
    }
    this.dims ??= out[0]!.length;
    return out;
  }

  /** Loads the tokenizer and the ONNX session once; concurrent first calls share the load, a failed load is retried next time. */
  private load(): Promise<FeatureExtractionPipeline> {
    this.loading ??= this.open().catch((err: unknown) => {
      this.loading = undefined;
      throw err;
    });
    return this.loading;
  }

  protected async open(): Promise<FeatureExtractionPipeline> {
    const modelFile = join('onnx', `model${fileSuffix[this.dtype]}.onnx`);
    for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', modelFile]) {
      const found = await stat(join(this.dir, file)).then(
        (s) => s.isFile(),
        () => false,
      );
      if (!found)
        throw new DocupodError(
          Problems.llmUnavailable,
          `transformers model directory ${this.dir} has no ${file}; it needs config.json, tokenizer.json, tokenizer_config.json and ${modelFile} (the layout of a transformers.js model on the Hugging Face hub)`,
          { retryable: false },
        );
    }
    // Imported here so a process that embeds some other way never loads ONNX Runtime.
    const { pipeline, env } = await import('@huggingface/transformers');
    // Process-wide: docupod never fetches models, whoever asks. An absolute directory is not a hub model id, so
    // transformers.js reads it as given and env.localModelPath (another global) is left alone.
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    try {
      return await pipeline('feature-extraction', this.dir, { local_files_only: true, dtype: this.dtype, device: 'cpu' });
    } catch (err) {
      throw new DocupodError(
        Problems.llmUnavailable,
        `could not load the transformers model in ${this.dir}: ${err instanceof Error ? err.message : String(err)}`,
        { retryable: false },
        { cause: err },
      );
    }
  }
}
