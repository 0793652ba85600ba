import { inferError, inferShape, flattenData, nest, toJsonData, toTypedData, type HostTensor } from './tensors.js';
import { checkShape, type LoadedModel, type ModelServing } from './serving.js';

// POST /models/{name}/predict: plain JSON in and out, for callers that do not speak tensors.
//
// Text classifiers (one BYTES input):   {"text": "…"}        → {"<field>": "…", "confidence": 0.93}
//                                       {"texts": ["…", …]}  → {"predictions": [{"<field>": "…", "confidence": …}, …]}
//   <field> is postprocessing.field, else "intent" for the docupod-tfidf-logreg framework, else "label".
// Any other model:                      {"inputs": {"x": [[…], …]}} (nested arrays; the shape is read from the nesting)
//                                       → {"outputs": {"y": [[…], …]}, "predictions"?: [{"label", "confidence"}]}
//   `predictions` appears when the manifest has argmax postprocessing and labels.

const MAX_TEXT = 100_000;

function labelField(model: LoadedModel): string {
  return model.manifest.postprocessing?.field ?? (model.manifest.framework === 'docupod-tfidf-logreg' ? 'intent' : 'label');
}

/** The probability output argmax reads: the postprocessing output, else the first floating output shaped [rows, labels]. */
function probabilityOutput(model: LoadedModel): string | undefined {
  const m = model.manifest;
  if (m.postprocessing) return m.postprocessing.output;
  if (!m.labels) return undefined;
  return m.outputs.find((o) => (o.datatype === 'FP32' || o.datatype === 'FP64') && o.shape.length === 2 && (o.shape[1] === -1 || o.shape[1] === m.labels!.length))?.name;
}

function argmaxRows(t: HostTensor, labels: readonly string[]): Array<{ label: string; confidence: number }> {
  const values = t.data as Float32Array;
  const k = t.shape[t.shape.length - 1]!;
  const out: Array<{ label: string; confidence: number }> = [];
  for (let r = 0; r * k < values.length; r++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (values[r * k + c]! > values[r * k + best]!) best = c;
    out.push({ label: labels[best] ?? String(best), confidence: values[r * k + best]! });
  }
  return out;
}

const isTextModel = (model: LoadedModel) => model.manifest.inputs.length === 1 && model.manifest.inputs[0]!.datatype === 'BYTES';

export async function plainPredict(serving: ModelServing, model: LoadedModel, body: unknown): Promise<unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw inferError('invalid_request', 'the body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (isTextModel(model)) return predictText(serving, model, b);
  return predictTensors(serving, model, b);
}

async function predictText(serving: ModelServing, model: LoadedModel, b: Record<string, unknown>): Promise<unknown> {
  const single = b.text !== undefined;
  let texts: string[];
  if (single) {
    if (typeof b.text !== 'string') throw inferError('invalid_data', '"text" must be a string');
    texts = [b.text];
  } else if (b.texts !== undefined) {
    if (!Array.isArray(b.texts) || b.texts.length === 0 || !b.texts.every((t) => typeof t === 'string'))
      throw inferError('invalid_data', '"texts" must be a non-empty array of strings');
    texts = b.texts as string[];
  } else throw inferError('missing_input', 'expected {"text": "…"} or {"texts": ["…", …]}');
  if (texts.some((t) => t.length > MAX_TEXT)) throw inferError('invalid_data', `a text is longer than ${MAX_TEXT} characters`);
  const input = model.manifest.inputs[0]!;
  const shape = input.shape.length === 2 ? [texts.length, 1] : [texts.length];
  checkShape(input.name, shape, input);
  const result = await serving.run(model, new Map([[input.name, { datatype: 'BYTES', shape, data: texts }]]));
  const probs = probabilityOutput(model);
  const field = labelField(model);
  let rows: Array<{ label: string; confidence: number }>;
  if (probs && model.manifest.labels) rows = argmaxRows(result.get(probs)!, model.manifest.labels);
  else {
    // No probabilities to read: answer the first output as is.
    const first = result.values().next().value!;
    rows = toJsonData(first).map((v) => ({ label: String(v), confidence: 1 }));
  }
  const answers = rows.map((r) => ({ [field]: r.label, confidence: r.confidence }));
  return single ? answers[0] : { predictions: answers };
}

async function predictTensors(serving: ModelServing, model: LoadedModel, b: Record<string, unknown>): Promise<unknown> {
  const given = b.inputs;
  if (!given || typeof given !== 'object' || Array.isArray(given))
    throw inferError('invalid_request', `expected {"inputs": {${model.manifest.inputs.map((i) => `"${i.name}": [...]`).join(', ')}}}`);
  const inputs = new Map<string, HostTensor>();
  const names = new Set(model.manifest.inputs.map((i) => i.name));
  for (const key of Object.keys(given)) if (!names.has(key)) throw inferError('unknown_input', `unknown input '${key.slice(0, 64)}'; model '${model.name}' takes ${[...names].map((n) => `'${n}'`).join(', ')}`);
  for (const spec of model.manifest.inputs) {
    const data = (given as Record<string, unknown>)[spec.name];
    if (data === undefined) throw inferError('missing_input', `missing input '${spec.name}'`);
    const shape = inferShape(data);
    checkShape(spec.name, shape, spec);
    inputs.set(spec.name, { datatype: spec.datatype, shape, data: toTypedData(spec.name, spec.datatype, flattenData(spec.name, data, shape)) });
  }
  if (model.batchable && new Set([...inputs.values()].map((t) => t.shape[0])).size > 1)
    throw inferError('wrong_shape', 'inputs disagree on the batch dimension (the outer array length)');
  const result = await serving.run(model, inputs);
  const outputs: Record<string, unknown> = {};
  for (const [name, t] of result) outputs[name] = nest(toJsonData(t), t.shape);
  const probs = probabilityOutput(model);
  const labels = model.manifest.labels;
  if (model.manifest.postprocessing && probs && labels) {
    const field = labelField(model);
    return { outputs, predictions: argmaxRows(result.get(probs)!, labels).map((r) => ({ [field]: r.label, confidence: r.confidence })) };
  }
  return { outputs };
}
