// The intent classifier's public surface: training, evaluation, model folders and in-process prediction.
export {
  buildModel,
  defaultTrainOptions,
  evaluate,
  predict,
  trainIntentClassifier,
  type ClassMetrics,
  type Evaluation,
  type IntentModel,
  type IntentRow,
  type ModelMetrics,
  type ModelParts,
  type Prediction,
  type TrainOptions,
} from './classifier.js';
export { parseIntentCsv, readIntentCsv } from './dataset.js';
export { FRAMEWORK, ModelManifest, loadModel, manifestOf, saveModel } from './model-io.js';
export { stratifiedSplit, type Split } from './split.js';
export { runTrainIntent, type TrainIntentOptions, type TrainIntentReport } from './train-intent.js';
export { defaultFeaturizerOptions, tokenize, type FeaturizerOptions } from './featurize.js';
