// A model folder: model.json (everything needed to predict) and manifest.json (what the serving layer reads to
// describe the model: Open Inference Protocol v2 metadata plus labels and held-out metrics).
// manifest.json is written last, so a folder with a manifest always has a complete model.json beside it.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { DocupodError, Problems } from '../../../core/errors.js';
import { buildModel, modelParts, type IntentModel } from './classifier.js';

export const FRAMEWORK = 'docupod-tfidf-logreg';
const FORMAT_VERSION = 1;

const Tensor = z.object({ name: z.string(), datatype: z.string(), shape: z.array(z.number().int()) });
const Metrics = z.object({ accuracy: z.number().nullable(), n_test: z.number().int().min(0) });

export const ModelManifest = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  task: z.literal('text-classification'),
  framework: z.literal(FRAMEWORK),
  inputs: z.array(Tensor),
  outputs: z.array(Tensor),
  labels: z.array(z.string()).min(2),
  metrics: Metrics,
});
export type ModelManifest = z.infer<typeof ModelManifest>;

const Range = z.tuple([z.number().int().min(1), z.number().int().min(1)]);
const ModelFile = z.object({
  format: z.literal(FRAMEWORK),
  formatVersion: z.literal(FORMAT_VERSION),
  name: z.string(),
  version: z.string(),
  labels: z.array(z.string()),
  featurizer: z.object({ wordNgrams: Range, charNgrams: Range.nullable() }),
  sublinearTf: z.boolean(),
  vocabulary: z.array(z.string()),
  idf: z.array(z.number()),
  weights: z.array(z.array(z.number())),
  bias: z.array(z.number()),
  training: z
    .object({
      nTrain: z.number(),
      l2: z.number(),
      iterations: z.number(),
      converged: z.boolean(),
      loss: z.number(),
      gradientNorm: z.number(),
    })
    .optional(),
  metrics: Metrics.optional(),
});

export function manifestOf(model: IntentModel): ModelManifest {
  return {
    name: model.name,
    version: model.version,
    task: 'text-classification',
    framework: FRAMEWORK,
    inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
    outputs: [
      { name: 'intent', datatype: 'BYTES', shape: [-1] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, model.labels.length] },
    ],
    labels: model.labels,
    metrics: model.metrics ?? { accuracy: null, n_test: 0 },
  };
}

async function writeAtomically(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

/** Writes `{dir}/model.json` and `{dir}/manifest.json`, creating `dir` if needed. Returns the two paths. */
export async function saveModel(model: IntentModel, dir: string): Promise<{ model: string; manifest: string }> {
  await mkdir(dir, { recursive: true });
  const modelPath = join(dir, 'model.json');
  const manifestPath = join(dir, 'manifest.json');
  // JSON numbers round-trip float64 exactly, so a loaded model predicts bit-for-bit what the saved one did.
  await writeAtomically(modelPath, JSON.stringify({ format: FRAMEWORK, formatVersion: FORMAT_VERSION, ...modelParts(model) }));
  await writeAtomically(manifestPath, JSON.stringify(manifestOf(model), null, 2) + '\n');
  return { model: modelPath, manifest: manifestPath };
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DocupodError(Problems.notFound, `model file not found: ${path}`, {}, { cause: err });
    }
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DocupodError(Problems.unprocessable, `${path} is not valid JSON: ${(err as Error).message}`, {}, { cause: err });
  }
}

function check<T>(schema: z.ZodType<T>, value: unknown, path: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.slice(0, 20).map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
  const first = errors[0]!;
  throw new DocupodError(Problems.unprocessable, `${path} is not a ${FRAMEWORK} model file: ${first.path}: ${first.message}`, { errors });
}

export async function loadModel(dir: string): Promise<IntentModel> {
  const manifestPath = join(dir, 'manifest.json');
  const modelPath = join(dir, 'model.json');
  const manifest = check(ModelManifest, await readJson(manifestPath), manifestPath);
  const file = check(ModelFile, await readJson(modelPath), modelPath);
  if (manifest.labels.join('\n') !== file.labels.join('\n')) {
    throw new DocupodError(Problems.unprocessable, `${dir}: manifest.json and model.json disagree on the labels`);
  }
  const model = buildModel({ ...file, metrics: file.metrics ?? manifest.metrics });
  // The manifest names the deployed model; model.json keeps what training wrote.
  return { ...model, name: manifest.name, version: manifest.version };
}
