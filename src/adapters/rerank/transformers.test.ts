import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyCrossEncoder } from '../../../test/fixtures/tiny-bert.js';
import { TransformersReranker } from './transformers.js';

// The real transformers.js loading and scoring code on a tiny cross-encoder the test writes (no downloads): its logit
// is the sum of known per-token weights over the text half of each (query, text) pair (test/fixtures/tiny-bert.ts).

let parent: string;
let modelDir: string;
beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), 'docupod-tiny-ce-'));
  modelDir = await writeTinyCrossEncoder(parent);
});
afterAll(async () => rm(parent, { recursive: true, force: true }));

describe('transformers.js reranker', () => {
  it('scores each (query, text) pair with the model, best first, padding pairs of different lengths', async () => {
    const texts = ['hello world', 'the cat sat on the mat', 'cat', 'the mat'];
    // cat = 1, mat = 0.5, everything else 0; the query's own tokens (type 0) do not count.
    const scores = await new TransformersReranker({ modelPath: modelDir, batchSize: 3 }).rerank('cat cat mat', texts);
    expect(scores.map((s) => s.index)).toEqual([1, 2, 3, 0]);
    expect(scores.map((s) => s.score)).toEqual([expect.closeTo(1.5, 5), expect.closeTo(1, 5), expect.closeTo(0.5, 5), expect.closeTo(0, 5)]);
  });

  it('names the missing file of an incomplete model directory', async () => {
    await expect(new TransformersReranker({ modelPath: join(parent, 'nowhere') }).rerank('q', ['t'])).rejects.toThrow(/has no config\.json/);
  });
});
