import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocupodError } from '../../core/errors.js';
import { expectedTokenVectors, TINY_BERT_DIM, tokenId, writeTinyBert } from '../../../test/fixtures/tiny-bert.js';
import { TransformersEmbedder } from './transformers.js';

let parent: string;
let modelDir: string;

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), 'docupod-tiny-bert-'));
  modelDir = await writeTinyBert(parent);
});
afterAll(async () => {
  await rm(parent, { recursive: true, force: true });
});

const ids = (...tokens: string[]) => ['[CLS]', ...tokens, '[SEP]'].map(tokenId);
const mean = (rows: number[][]) => rows[0]!.map((_, d) => rows.reduce((s, r) => s + r[d]!, 0) / rows.length);
const l2 = (v: number[]) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
function expectClose(actual: number[][], expected: number[][]) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((v, i) => {
    expect(v).toHaveLength(TINY_BERT_DIM);
    v.forEach((x, d) => expect(x).toBeCloseTo(expected[i]![d]!, 5));
  });
}

describe('transformers embedder on a tiny BERT directory', () => {
  it('mean-pools over real tokens only and L2-normalises, with padding in the batch', async () => {
    const embedder = new TransformersEmbedder({ modelPath: modelDir });
    // Different lengths in one batch: the short texts are padded to the longest (7 tokens).
    const vectors = await embedder.embed(['Hello world!', 'the cat', 'Docupod searches.']);

    // By hand: token vector = E[id] + T[0] = id + d/100 + 0.5. "hello world !" is [CLS]=2 hello=5 world=6 !=18 [SEP]=3,
    // mean id 34/5 = 6.8, so the pooled vector is [7.3, 7.31, 7.32, 7.33] before normalisation.
    expect(mean(expectedTokenVectors(ids('hello', 'world', '!')))).toEqual([7.3, 7.31, 7.32, 7.33].map((x) => expect.closeTo(x, 10)));
    // "the cat": [CLS] the cat [SEP] = 2 7 8 3, mean 5 → [5.5, 5.51, 5.52, 5.53]; dividing by the padded length (7)
    // instead of 4 would give 20/7 + … — the mask must decide.
    const expected = [
      l2([7.3, 7.31, 7.32, 7.33]),
      l2([5.5, 5.51, 5.52, 5.53]),
      // WordPiece splits "docupod searches." into docu ##pod search ##es .: 2 12 13 14 15 16 3, mean 75/7.
      l2([0, 1, 2, 3].map((d) => 75 / 7 + 0.5 + d / 100)),
    ];
    expectClose(vectors, expected);
    vectors.forEach((v) => expect(Math.hypot(...v)).toBeCloseTo(1, 6));
    expect(await embedder.dimensions()).toBe(TINY_BERT_DIM);
  });

  it('gives a text the same vector alone as in a padded batch', async () => {
    const embedder = new TransformersEmbedder({ modelPath: modelDir, normalize: false });
    const [alone] = await embedder.embed(['the cat']);
    const [, padded] = await embedder.embed(['hello world, the cat sat on the mat', 'the cat']);
    expectClose([alone!], [[5.5, 5.51, 5.52, 5.53]]);
    expectClose([padded!], [alone!]);
  });

  it('batches: order is kept across forward passes and unknown words map to [UNK]', async () => {
    const embedder = new TransformersEmbedder({ modelPath: modelDir, normalize: false, batchSize: 2 });
    const texts = ['hello', 'world', 'cat', 'zebra', 'mat'];
    const vectors = await embedder.embed(texts);
    const expected = [['hello'], ['world'], ['cat'], ['[UNK]'], ['mat']].map((t) => mean(expectedTokenVectors(ids(...t))));
    expectClose(vectors, expected);
    // zebra → [CLS] [UNK] [SEP] = 2 1 3, mean 2
    expectClose([vectors[3]!], [[2.5, 2.51, 2.52, 2.53]]);
  });

  it('truncates a text longer than the model takes instead of failing', async () => {
    const embedder = new TransformersEmbedder({ modelPath: modelDir, normalize: false });
    // model_max_length is 64. transformers.js cuts the encoded sequence at 64 tokens, so it keeps [CLS] and 63 × "cat"
    // (id 8) and drops the final [SEP] (Python's tokenizers would keep [SEP] and 62 cats): mean id (2 + 63·8) / 64.
    // If a transformers.js upgrade changes this, long chunks embed differently: worth knowing.
    const [v] = await embedder.embed(['cat '.repeat(100)]);
    expectClose([v!], [[0, 1, 2, 3].map((d) => 506 / 64 + 0.5 + d / 100)]);
  });

  it('pools with [CLS] when asked, and the id says so', async () => {
    const embedder = new TransformersEmbedder({ modelPath: modelDir, pooling: 'cls', normalize: false });
    expectClose(await embedder.embed(['hello world', 'the cat sat']), [
      [2.5, 2.51, 2.52, 2.53],
      [2.5, 2.51, 2.52, 2.53],
    ]);
    expect(embedder.id).toBe('transformers:tiny-bert@cls,raw');
    expect(new TransformersEmbedder({ modelPath: modelDir }).id).toBe('transformers:tiny-bert');
  });

  it('loads the model once for concurrent first calls, with remote models switched off', async () => {
    class Counting extends TransformersEmbedder {
      opens = 0;
      protected override open() {
        this.opens++;
        return super.open();
      }
    }
    const embedder = new Counting({ modelPath: modelDir });
    const [a, b] = await Promise.all([embedder.embed(['hello']), embedder.embed(['hello'])]);
    await embedder.embed(['world']);
    expect(a).toEqual(b);
    expect(embedder.opens).toBe(1);
    const { env } = await import('@huggingface/transformers');
    expect(env.allowRemoteModels).toBe(false);
  });

  it('returns no vectors for no texts without loading the model', async () => {
    const embedder = new TransformersEmbedder({ modelPath: join(parent, 'does-not-exist') });
    expect(await embedder.embed([])).toEqual([]);
  });

  it('names the missing file when the directory is not a model', async () => {
    const embedder = new TransformersEmbedder({ modelPath: join(parent, 'does-not-exist') });
    const err = await embedder.embed(['hello']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DocupodError);
    expect((err as DocupodError).message).toMatch(/does-not-exist has no config\.json/);
    expect((err as DocupodError).extra.retryable).toBe(false);
  });

  it('names the missing weights file (for the chosen dtype) before transformers.js looks anywhere', async () => {
    const dir = await writeTinyBert(parent, 'no-weights');
    await unlink(join(dir, 'onnx', 'model.onnx'));
    const err = await new TransformersEmbedder({ modelPath: dir }).embed(['hello']).catch((e: unknown) => e);
    expect((err as DocupodError).message).toMatch(/no onnx\/model\.onnx/);
    // Asking for quantised weights names that file.
    const q = await new TransformersEmbedder({ modelPath: modelDir, dtype: 'q8' }).embed(['hello']).catch((e: unknown) => e);
    expect((q as DocupodError).message).toMatch(/no onnx\/model_quantized\.onnx/);
  });

  it('stops between batches when aborted', async () => {
    const embedder = new TransformersEmbedder({ modelPath: modelDir, batchSize: 1 });
    const controller = new AbortController();
    controller.abort(new Error('shutting down'));
    await expect(embedder.embed(['hello', 'world'], controller.signal)).rejects.toThrow('shutting down');
  });
});
