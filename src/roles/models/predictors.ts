import { join } from 'node:path';
import { DocupodError, Problems } from '../../core/errors.js';
import { loadModel, predict, type IntentModel } from './intent/index.js';
import { DEFAULT_FILE, type ServingManifest } from './manifest.js';
import type { Datatype, HostTensor, TensorData } from './tensors.js';

// A predictor runs one (already batched, already validated) set of input tensors through a model. The serving layer
// in front of it does validation, micro-batching and the concurrency limit, the same way for every framework.

export interface Predictor {
  run(inputs: ReadonlyMap<string, HostTensor>): Promise<Map<string, HostTensor>>;
  close(): Promise<void>;
}

export async function openPredictor(dir: string, manifest: ServingManifest): Promise<Predictor> {
  const file = join(dir, manifest.file ?? DEFAULT_FILE[manifest.framework]);
  switch (manifest.framework) {
    case 'onnx':
      return openOnnx(file, manifest);
    case 'docupod-tfidf-logreg':
      return openIntent(dir, manifest);
  }
}

// ---- ONNX through onnxruntime-node ----

const ORT_TYPE: Partial<Record<Datatype, string>> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};

type Ort = typeof import('onnxruntime-node');
let ortModule: Promise<Ort> | undefined;
/** Loaded on first use: a role without ONNX models never maps the ~20 MB native library. */
const ort = () => (ortModule ??= import('onnxruntime-node').then((m) => ((m as { default?: Ort }).default ?? m) as Ort));

async function openOnnx(file: string, manifest: ServingManifest): Promise<Predictor> {
  const { InferenceSession, Tensor } = await ort();
  let session: Awaited<ReturnType<typeof InferenceSession.create>>;
  try {
    session = await InferenceSession.create(file, { graphOptimizationLevel: 'all' });
  } catch (err) {
    throw new DocupodError(Problems.unprocessable, `${file}: onnxruntime cannot load it: ${(err as Error).message}`, {}, { cause: err });
  }
  // The manifest must describe the graph it sits beside: same names, same element types, same ranks.
  const check = (kind: 'input' | 'output', specs: ServingManifest['inputs'], meta: typeof session.inputMetadata) => {
    for (const spec of specs) {
      const m = meta.find((x) => x.name === spec.name);
      const names = meta.map((x) => x.name).join(', ');
      if (!m) throw new DocupodError(Problems.unprocessable, `${file}: manifest ${kind} '${spec.name}' is not in the graph (graph ${kind}s: ${names})`);
      if (m.isTensor) {
        if (m.type !== ORT_TYPE[spec.datatype])
          throw new DocupodError(Problems.unprocessable, `${file}: ${kind} '${spec.name}' is ${m.type} in the graph but ${spec.datatype} in the manifest`);
        if (m.shape.length > 0 && m.shape.length !== spec.shape.length)
          throw new DocupodError(Problems.unprocessable, `${file}: ${kind} '${spec.name}' has rank ${m.shape.length} in the graph but ${spec.shape.length} in the manifest`);
      }
    }
  };
  check('input', manifest.inputs, session.inputMetadata);
  check('output', manifest.outputs, session.outputMetadata);
  const outputTypes = new Map(manifest.outputs.map((o) => [o.name, o.datatype]));
  const fetches = manifest.outputs.map((o) => o.name);

  return {
    async run(inputs) {
      const feeds: Record<string, InstanceType<typeof Tensor>> = {};
      for (const [name, t] of inputs) feeds[name] = new Tensor(ORT_TYPE[t.datatype] as 'float32', t.data as Float32Array, t.shape);
      const result = await session.run(feeds, fetches);
      const out = new Map<string, HostTensor>();
      for (const name of fetches) {
        const r = result[name]!;
        out.set(name, { datatype: outputTypes.get(name)!, shape: [...r.dims], data: r.data as TensorData });
      }
      return out;
    },
    close: () => session.release(),
  };
}

// ---- the TypeScript intent classifier, in-process ----

async function openIntent(dir: string, manifest: ServingManifest): Promise<Predictor> {
  const model: IntentModel = await loadModel(dir);
  const text = manifest.inputs[0]!.name;
  return {
    async run(inputs) {
      const t = inputs.get(text)!;
      const predictions = predict(model, t.data as string[]);
      const n = predictions.length;
      const k = model.labels.length;
      const probabilities = new Float32Array(n * k);
      predictions.forEach((p, i) => probabilities.set(p.probabilities, i * k));
      return new Map<string, HostTensor>([
        ['intent', { datatype: 'BYTES', shape: [n], data: predictions.map((p) => p.intent) }],
        ['probabilities', { datatype: 'FP32', shape: [n, k], data: probabilities }],
      ]);
    },
    close: async () => {},
  };
}
