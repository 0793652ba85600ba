import { z } from 'zod';
import { DATATYPES } from './tensors.js';

// manifest.json of a model version folder: `<repository>/<name>/<version>/manifest.json`. It is the serving layer's
// source of truth for the model's Open Inference Protocol metadata. Shapes are full tensor shapes; -1 is a dynamic
// dimension, and a model whose inputs and outputs all start with -1 is batched along that dimension.
// The intent classifier's own writer (intent/model-io.ts) produces a compatible manifest.

/** Model and version names become directory names: no separators, no dot-dot, bounded length. */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const VERSION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const FRAMEWORKS = ['onnx', 'docupod-tfidf-logreg'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

export const TensorSpec = z.object({
  name: z.string().min(1),
  datatype: z.enum(DATATYPES),
  shape: z.array(z.number().int().min(-1)),
});
export type TensorSpec = z.infer<typeof TensorSpec>;

/** Applied to one FP32/FP64 input before the model runs: (x - mean[j]) / std[j] along the last axis. */
const Standardize = z.object({ type: z.literal('standardize'), input: z.string(), mean: z.array(z.number()).min(1), std: z.array(z.number().positive()).min(1) });

/** How /predict turns a probability output into `{label, confidence}` per row, using `labels`. */
const Argmax = z.object({
  type: z.literal('argmax'),
  output: z.string(),
  /** The key of the label in /predict answers (default "label"; the intent classifier answers "intent"). */
  field: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
});

export const ServingManifest = z
  .object({
    name: z.string().regex(MODEL_NAME, 'letters, digits, ".", "_" or "-", starting with a letter or digit'),
    version: z.string().regex(VERSION_NAME, 'letters, digits, ".", "_" or "-", starting with a letter or digit'),
    task: z.string().min(1),
    framework: z.enum(FRAMEWORKS),
    /** Model file inside the version folder; default model.onnx (onnx) or model.json (docupod-tfidf-logreg). */
    file: z.string().regex(/^[^/\\]+$/, 'a file name inside the version folder').optional(),
    inputs: z.array(TensorSpec).min(1),
    outputs: z.array(TensorSpec).min(1),
    labels: z.array(z.string()).optional(),
    preprocessing: z.array(Standardize).optional(),
    postprocessing: Argmax.optional(),
    /** false turns micro-batching off even when every shape starts with -1. */
    batching: z.boolean().optional(),
  })
  .loose();
export type ServingManifest = z.infer<typeof ServingManifest>;

/** Batched along dimension 0 when every input and output has a dynamic leading dimension. */
export function isBatchable(m: ServingManifest): boolean {
  if (m.batching === false) return false;
  return [...m.inputs, ...m.outputs].every((t) => t.shape.length > 0 && t.shape[0] === -1);
}

/** The OIP `platform` string (Triton's names where one exists). */
export const PLATFORM: Record<Framework, string> = { onnx: 'onnxruntime_onnx', 'docupod-tfidf-logreg': 'docupod_tfidf_logreg' };

export const DEFAULT_FILE: Record<Framework, string> = { onnx: 'model.onnx', 'docupod-tfidf-logreg': 'model.json' };
