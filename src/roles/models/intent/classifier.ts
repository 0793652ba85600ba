// The intent classifier: featurize → TF-IDF → multinomial logistic regression. Pure computation, no I/O
// (model-io.ts reads and writes model folders; train-intent.ts is the CLI entry).

import { DocupodError, Problems } from '../../../core/errors.js';
import { defaultFeaturizerOptions, extractTerms, type FeaturizerOptions } from './featurize.js';
import { fitVocabulary, vectorize } from './tfidf.js';
import { fitSoftmaxRegression, scoreRow, softmaxInPlace, toSparseMatrix } from './softmax-regression.js';

export interface IntentRow {
  text: string;
  intent: string;
}

export interface TrainOptions {
  /** Model name and version, written to the manifest. */
  name?: string;
  version?: string;
  wordNgrams?: [number, number];
  /** null turns character n-grams off. */
  charNgrams?: [number, number] | null;
  /** Drop terms seen in fewer training rows than this. */
  minDf?: number;
  sublinearTf?: boolean;
  /** λ in the mean-loss objective (see softmax-regression.ts); sklearn's C corresponds to λ = 1/(C·N). */
  l2?: number;
  maxIterations?: number;
  gradientTolerance?: number;
}

export const defaultTrainOptions = {
  name: 'intent-classifier',
  version: '1',
  ...defaultFeaturizerOptions,
  minDf: 1,
  sublinearTf: true,
  l2: 1e-3,
  maxIterations: 1000,
  gradientTolerance: 1e-6,
} as const satisfies Required<TrainOptions>;

export interface TrainingInfo {
  nTrain: number;
  l2: number;
  iterations: number;
  converged: boolean;
  loss: number;
  gradientNorm: number;
}

export interface ModelMetrics {
  /** Held-out accuracy; null when the model was trained without a test split. */
  accuracy: number | null;
  n_test: number;
}

export interface IntentModel {
  name: string;
  version: string;
  /** Sorted; the order of `probabilities` in predictions and of the OIP `probabilities` output. */
  labels: string[];
  featurizer: FeaturizerOptions;
  sublinearTf: boolean;
  /** Terms in feature order, and their idf. */
  vocabulary: string[];
  idf: Float64Array;
  /** D·K feature-major weights, then K biases (softmax-regression.ts). */
  theta: Float64Array;
  /** term → feature index, built once so prediction is a map lookup per term. */
  index: Map<string, number>;
  training?: TrainingInfo;
  metrics?: ModelMetrics;
}

export interface Prediction {
  intent: string;
  confidence: number;
  /** One per label, in `model.labels` order; they sum to 1. */
  probabilities: number[];
}

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Evaluation {
  n: number;
  accuracy: number;
  macroF1: number;
  perClass: Record<string, ClassMetrics>;
  /** confusion[actual][predicted] = count; only non-zero cells. */
  confusion: Record<string, Record<string, number>>;
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function trainIntentClassifier(rows: readonly IntentRow[], opts: TrainOptions = {}): IntentModel {
  const o = { ...defaultTrainOptions, ...opts };
  const labels = [...new Set(rows.map((r) => r.intent))].sort(byCodeUnit);
  if (labels.length < 2) {
    throw new DocupodError(Problems.validation, `training needs at least 2 intents, got ${labels.length} (${labels.join(', ') || 'no rows'})`);
  }
  const featurizer: FeaturizerOptions = { wordNgrams: o.wordNgrams, charNgrams: o.charNgrams };
  const docs = rows.map((r) => extractTerms(r.text, featurizer));
  const { terms, idf } = fitVocabulary(docs, o.minDf);
  const index = new Map(terms.map((t, j) => [t, j] as const));
  const x = toSparseMatrix(docs.map((doc) => vectorize(doc, index, idf, o.sublinearTf)), terms.length);
  const labelIndex = new Map(labels.map((l, k) => [l, k] as const));
  const y = Int32Array.from(rows, (r) => labelIndex.get(r.intent)!);
  const fit = fitSoftmaxRegression(x, y, labels.length, o.l2, {
    maxIterations: o.maxIterations,
    gradientTolerance: o.gradientTolerance,
  });
  return {
    name: o.name,
    version: o.version,
    labels,
    featurizer,
    sublinearTf: o.sublinearTf,
    vocabulary: terms,
    idf,
    theta: fit.theta,
    index,
    training: {
      nTrain: rows.length,
      l2: o.l2,
      iterations: fit.iterations,
      converged: fit.converged,
      loss: fit.f,
      gradientNorm: fit.gradientNorm,
    },
  };
}

/** The parts of a model as they are stored (weights per label, K × D), checked for consistency. */
export interface ModelParts {
  name: string;
  version: string;
  labels: string[];
  featurizer: FeaturizerOptions;
  sublinearTf: boolean;
  vocabulary: string[];
  idf: ArrayLike<number>;
  weights: ArrayLike<ArrayLike<number>>;
  bias: ArrayLike<number>;
  training?: TrainingInfo;
  metrics?: ModelMetrics;
}

export function buildModel(parts: ModelParts): IntentModel {
  const k = parts.labels.length;
  const d = parts.vocabulary.length;
  const bad = (detail: string) => new DocupodError(Problems.unprocessable, `invalid intent model: ${detail}`);
  if (k < 2) throw bad(`needs at least 2 labels, got ${k}`);
  if (new Set(parts.labels).size !== k) throw bad('labels are not unique');
  if (parts.idf.length !== d) throw bad(`idf has ${parts.idf.length} entries for ${d} vocabulary terms`);
  if (parts.weights.length !== k) throw bad(`weights has ${parts.weights.length} rows for ${k} labels`);
  if (parts.bias.length !== k) throw bad(`bias has ${parts.bias.length} entries for ${k} labels`);
  const index = new Map(parts.vocabulary.map((t, j) => [t, j] as const));
  if (index.size !== d) throw bad('vocabulary has duplicate terms');
  const theta = new Float64Array((d + 1) * k);
  for (let c = 0; c < k; c++) {
    const row = parts.weights[c]!;
    if (row.length !== d) throw bad(`weights row ${c} (${parts.labels[c]}) has ${row.length} entries for ${d} terms`);
    for (let j = 0; j < d; j++) theta[j * k + c] = row[j]!;
    theta[d * k + c] = parts.bias[c]!;
  }
  if (!theta.every(Number.isFinite) || !Array.prototype.every.call(parts.idf, Number.isFinite)) {
    throw bad('weights or idf contain non-finite numbers');
  }
  return {
    name: parts.name,
    version: parts.version,
    labels: [...parts.labels],
    featurizer: parts.featurizer,
    sublinearTf: parts.sublinearTf,
    vocabulary: [...parts.vocabulary],
    idf: Float64Array.from(parts.idf),
    theta,
    index,
    ...(parts.training && { training: parts.training }),
    ...(parts.metrics && { metrics: parts.metrics }),
  };
}

/** The inverse of buildModel: per-label weight rows, as saved in model.json. */
export function modelParts(model: IntentModel): ModelParts {
  const k = model.labels.length;
  const d = model.vocabulary.length;
  const weights = model.labels.map((_, c) => Array.from({ length: d }, (_, j) => model.theta[j * k + c]!));
  const bias = Array.from({ length: k }, (_, c) => model.theta[d * k + c]!);
  return {
    name: model.name,
    version: model.version,
    labels: model.labels,
    featurizer: model.featurizer,
    sublinearTf: model.sublinearTf,
    vocabulary: model.vocabulary,
    idf: Array.from(model.idf),
    weights,
    bias,
    ...(model.training && { training: model.training }),
    ...(model.metrics && { metrics: model.metrics }),
  };
}

export function predict(model: IntentModel, texts: readonly string[]): Prediction[] {
  const k = model.labels.length;
  const d = model.vocabulary.length;
  const z = new Float64Array(k);
  return texts.map((text) => {
    const x = vectorize(extractTerms(text, model.featurizer), model.index, model.idf, model.sublinearTf);
    scoreRow(model.theta, k, d, x.indices, x.values, 0, x.indices.length, z);
    softmaxInPlace(z);
    let best = 0;
    for (let c = 1; c < k; c++) if (z[c]! > z[best]!) best = c;
    return { intent: model.labels[best]!, confidence: z[best]!, probabilities: Array.from(z) };
  });
}

export function evaluate(model: IntentModel, rows: readonly IntentRow[]): Evaluation {
  const predictions = predict(model, rows.map((r) => r.text));
  const labels = [...new Set([...model.labels, ...rows.map((r) => r.intent)])].sort(byCodeUnit);
  const tp = new Map<string, number>();
  const predicted = new Map<string, number>();
  const actual = new Map<string, number>();
  const confusion: Record<string, Record<string, number>> = {};
  let correct = 0;
  rows.forEach((row, i) => {
    const guess = predictions[i]!.intent;
    actual.set(row.intent, (actual.get(row.intent) ?? 0) + 1);
    predicted.set(guess, (predicted.get(guess) ?? 0) + 1);
    const cell = (confusion[row.intent] ??= {});
    cell[guess] = (cell[guess] ?? 0) + 1;
    if (guess === row.intent) {
      correct++;
      tp.set(guess, (tp.get(guess) ?? 0) + 1);
    }
  });
  const perClass: Record<string, ClassMetrics> = {};
  let f1Sum = 0;
  let f1Count = 0;
  for (const label of labels) {
    const t = tp.get(label) ?? 0;
    const p = predicted.get(label) ?? 0;
    const a = actual.get(label) ?? 0;
    const precision = p ? t / p : 0;
    const recall = a ? t / a : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    perClass[label] = { precision, recall, f1, support: a };
    if (a) {
      f1Sum += f1;
      f1Count++;
    }
  }
  return {
    n: rows.length,
    accuracy: rows.length ? correct / rows.length : 0,
    macroF1: f1Count ? f1Sum / f1Count : 0,
    perClass,
    confusion,
  };
}
