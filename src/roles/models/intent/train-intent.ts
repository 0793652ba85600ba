// Entry point for `docupod models train-intent <csv> --out <dir>`: read, split, train, evaluate, save.
// The saved model is the one trained on the training split, so the manifest's metrics describe exactly it.

import { performance } from 'node:perf_hooks';
import { evaluate, trainIntentClassifier, type ClassMetrics, type TrainingInfo, type TrainOptions } from './classifier.js';
import { readIntentCsv } from './dataset.js';
import { saveModel } from './model-io.js';
import { stratifiedSplit } from './split.js';

export interface TrainIntentOptions extends TrainOptions {
  /** Share of each intent held out for evaluation; 0 trains on everything and records no accuracy. */
  testFraction?: number;
  seed?: number;
}

export interface TrainIntentReport {
  name: string;
  version: string;
  csvPath: string;
  outDir: string;
  files: { model: string; manifest: string };
  labels: string[];
  nRows: number;
  nTrain: number;
  nTest: number;
  nFeatures: number;
  /** Held-out accuracy, null when testFraction is 0. */
  accuracy: number | null;
  macroF1: number | null;
  perClass: Record<string, ClassMetrics>;
  confusion: Record<string, Record<string, number>>;
  training: TrainingInfo;
  trainMs: number;
}

export async function runTrainIntent(csvPath: string, outDir: string, opts: TrainIntentOptions = {}): Promise<TrainIntentReport> {
  const { testFraction = 0.2, seed = 42, ...trainOptions } = opts;
  const rows = await readIntentCsv(csvPath);
  const { train, test } = stratifiedSplit(rows, testFraction, seed);
  const started = performance.now();
  const model = trainIntentClassifier(train, trainOptions);
  const trainMs = performance.now() - started;
  const evaluation = test.length ? evaluate(model, test) : null;
  model.metrics = { accuracy: evaluation?.accuracy ?? null, n_test: test.length };
  const files = await saveModel(model, outDir);
  return {
    name: model.name,
    version: model.version,
    csvPath,
    outDir,
    files,
    labels: model.labels,
    nRows: rows.length,
    nTrain: train.length,
    nTest: test.length,
    nFeatures: model.vocabulary.length,
    accuracy: evaluation?.accuracy ?? null,
    macroF1: evaluation?.macroF1 ?? null,
    perClass: evaluation?.perClass ?? {},
    confusion: evaluation?.confusion ?? {},
    training: model.training!,
    trainMs,
  };
}
