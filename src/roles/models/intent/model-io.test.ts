import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocupodError, Problems } from '../../../core/errors.js';
import { predict, trainIntentClassifier, type IntentRow } from './classifier.js';
import { loadModel, saveModel } from './model-io.js';

const rows: IntentRow[] = [
  { text: 'hello there', intent: 'greeting' },
  { text: 'hi, good morning', intent: 'greeting' },
  { text: 'bye for now', intent: 'goodbye' },
  { text: 'see you later, thanks', intent: 'goodbye' },
  { text: 'find the vpn guide', intent: 'search_docs' },
  { text: 'search for the travel policy', intent: 'search_docs' },
];
const probes = ['hello', 'bye', 'find the travel guide', 'totally unrelated words', '', 'HELLO THERE!!'];

describe('model folder', () => {
  let dir: string;
  beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), 'docupod-intent-model-'))));
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('loads back a model that predicts exactly what the saved one did', async () => {
    const model = trainIntentClassifier(rows, { name: 'intents', version: '3' });
    model.metrics = { accuracy: 0.5, n_test: 2 };
    await saveModel(model, join(dir, 'a'));
    const loaded = await loadModel(join(dir, 'a'));
    expect(predict(loaded, probes)).toEqual(predict(model, probes));
    expect(loaded.theta).toEqual(model.theta);
    expect(loaded.idf).toEqual(model.idf);
    expect(loaded.training).toEqual(model.training);
  });

  it('writes the manifest the serving layer reads', async () => {
    const model = trainIntentClassifier(rows, { name: 'intents', version: '3' });
    model.metrics = { accuracy: 0.5, n_test: 2 };
    await saveModel(model, join(dir, 'b'));
    const manifest = JSON.parse(await readFile(join(dir, 'b', 'manifest.json'), 'utf8'));
    expect(manifest).toEqual({
      name: 'intents',
      version: '3',
      task: 'text-classification',
      framework: 'docupod-tfidf-logreg',
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
      outputs: [
        { name: 'intent', datatype: 'BYTES', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
      ],
      labels: ['goodbye', 'greeting', 'search_docs'],
      metrics: { accuracy: 0.5, n_test: 2 },
    });
    const file = JSON.parse(await readFile(join(dir, 'b', 'model.json'), 'utf8'));
    expect(file.vocabulary).toHaveLength(model.vocabulary.length);
    expect(file.weights).toHaveLength(3);
    expect(file.weights[0]).toHaveLength(model.vocabulary.length);
  });

  it('writes byte-identical files for the same training run', async () => {
    await saveModel(trainIntentClassifier(rows), join(dir, 'c1'));
    await saveModel(trainIntentClassifier(rows), join(dir, 'c2'));
    for (const f of ['model.json', 'manifest.json']) {
      expect(await readFile(join(dir, 'c2', f), 'utf8')).toBe(await readFile(join(dir, 'c1', f), 'utf8'));
    }
  });

  it('answers not-found for a folder without a model', async () => {
    const err = await loadModel(join(dir, 'missing')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DocupodError);
    expect((err as DocupodError).problem).toBe(Problems.notFound);
    expect((err as DocupodError).message).toMatch(/manifest\.json/);
  });

  it('rejects a damaged model.json with the field that is wrong', async () => {
    await saveModel(trainIntentClassifier(rows), join(dir, 'd'));
    const path = join(dir, 'd', 'model.json');
    const file = JSON.parse(await readFile(path, 'utf8'));
    file.weights[1].pop();
    await writeFile(path, JSON.stringify(file));
    const err = (await loadModel(join(dir, 'd')).catch((e: unknown) => e)) as DocupodError;
    expect(err).toBeInstanceOf(DocupodError);
    expect(err.problem).toBe(Problems.unprocessable);
    expect(err.message).toMatch(/weights row 1 \(greeting\) has \d+ entries/);

    await writeFile(path, '{"format": "something-else"');
    const bad = (await loadModel(join(dir, 'd')).catch((e: unknown) => e)) as DocupodError;
    expect(bad.message).toMatch(/model\.json is not valid JSON/);
  });
});
