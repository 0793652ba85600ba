import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DocupodError, Problems } from '../../core/errors.js';
import type { Logger } from '../../observability/logger.js';
import type { Registry } from '../../observability/metrics.js';
import { MicroBatcher, QueueFullError, type BatchOptions } from './batcher.js';
import { isBatchable, MODEL_NAME, PLATFORM, ServingManifest, VERSION_NAME, type TensorSpec } from './manifest.js';
import { modelMetrics, UNKNOWN_MODEL, type ModelMetrics } from './metrics.js';
import { openPredictor, type Predictor } from './predictors.js';
import {
  concatRows,
  flattenData,
  inferError,
  reasonOf,
  showShape,
  sliceRows,
  toJsonData,
  toTypedData,
  type HostTensor,
} from './tensors.js';

// The model repository and the models it serves: loading (at start, and again on demand for a new version),
// unloading, validation of inference requests against the manifest, micro-batching and per-model metrics.

export interface ModelsConfig {
  /** `<repository>/<name>/<version>/` folders; undefined serves nothing until a model is loaded from elsewhere. */
  repository?: string;
  maxBatchSize: number;
  maxBatchDelayMs: number;
  concurrency: number;
  maxQueue: number;
}

export interface LoadedModel {
  name: string;
  version: string;
  dir: string;
  manifest: ServingManifest;
  batchable: boolean;
  predictor: Predictor;
  batcher: MicroBatcher<Map<string, HostTensor>, Map<string, HostTensor>>;
  loadedAt: Date;
}

/** One entry of the repository index (Triton's repository extension). */
export interface IndexEntry {
  name: string;
  version?: string;
  state: 'READY' | 'UNAVAILABLE';
  reason?: string;
}

/** A validated OIP v2 inference request (tensors already typed). */
export interface InferInput {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: Map<string, HostTensor>;
  /** Requested outputs, each with an optional `classification` count (Triton's classification extension). */
  outputs: Array<{ name: string; classification?: number }>;
}

export interface InferOutput {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, unknown>;
  data: Array<number | string | boolean>;
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  parameters?: Record<string, unknown>;
  outputs: InferOutput[];
}

/** Highest version first: numeric versions compare as numbers, others by code unit. */
export function compareVersions(a: string, b: string): number {
  const na = /^\d+$/.test(a) ? Number(a) : NaN;
  const nb = /^\d+$/.test(b) ? Number(b) : NaN;
  if (!Number.isNaN(na) && !Number.isNaN(nb)) return nb - na;
  if (!Number.isNaN(na)) return -1;
  if (!Number.isNaN(nb)) return 1;
  return a < b ? 1 : a > b ? -1 : 0;
}

async function isDir(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

export class ModelServing {
  private readonly models = new Map<string, LoadedModel>();
  /** Why a model is not loaded (failed load or unloaded), for the repository index. */
  private readonly unavailable = new Map<string, { version?: string; reason: string }>();
  /** Serialises load/unload per model name. */
  private readonly locks = new Map<string, Promise<unknown>>();
  readonly metrics: ModelMetrics;

  constructor(
    private readonly config: ModelsConfig,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.metrics = modelMetrics(registry);
  }

  get repository(): string | undefined {
    return this.config.repository;
  }

  /** Loads the latest version of every model in the repository. A model that fails is logged and left unavailable. */
  async loadAll(): Promise<void> {
    const names = await this.modelNames();
    for (const name of names) {
      try {
        await this.load(name);
      } catch (err) {
        this.log.error({ model: name, detail: (err as Error).message }, 'model failed to load; it stays unavailable');
      }
    }
    this.log.info({ repository: this.config.repository, loaded: [...this.models.values()].map((m) => `${m.name}@${m.version}`) }, 'model repository loaded');
  }

  private async modelNames(): Promise<string[]> {
    const repo = this.config.repository;
    if (!repo) return [];
    const entries = await readdir(repo, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    return entries.filter((e) => e.isDirectory() && MODEL_NAME.test(e.name)).map((e) => e.name).sort();
  }

  private async versionsOnDisk(name: string): Promise<string[]> {
    const repo = this.config.repository;
    if (!repo) return [];
    const entries = await readdir(join(repo, name), { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory() && VERSION_NAME.test(e.name)).map((e) => e.name).sort(compareVersions);
  }

  private withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => {});
    this.locks.set(name, settled);
    void settled.then(() => this.locks.get(name) === settled && this.locks.delete(name));
    return next;
  }

  /**
   * Loads `version` (default: the highest on disk) of `name` and swaps it in. The old version keeps answering until
   * the new one has loaded, then drains its queue and is released: a reload drops no request.
   */
  load(name: string, version?: string): Promise<LoadedModel> {
    if (!MODEL_NAME.test(name)) return Promise.reject(inferError('model_not_found', `model name '${name.slice(0, 64)}' is not valid`));
    if (version !== undefined && !VERSION_NAME.test(version)) return Promise.reject(fail400(`version '${version.slice(0, 64)}' is not valid`));
    return this.withLock(name, async () => {
      const repo = this.config.repository;
      if (!repo || !(await isDir(join(repo, name))))
        throw inferError('model_not_found', `model '${name}' is not in the model repository${repo ? '' : ' (no repository configured: DOCUPOD_MODELS_REPOSITORY)'}`);
      const versions = await this.versionsOnDisk(name);
      const chosen = version ?? versions[0];
      if (!chosen || !versions.includes(chosen))
        throw inferError('model_not_found', version ? `model '${name}' has no version '${version}' (on disk: ${versions.join(', ') || 'none'})` : `model '${name}' has no version folder`);
      const dir = join(repo, name, chosen);
      let model: LoadedModel;
      try {
        model = await this.open(name, chosen, dir);
      } catch (err) {
        this.metrics.loads.inc({ model: name, outcome: 'failed' });
        if (!this.models.has(name)) this.unavailable.set(name, { version: chosen, reason: `load failed: ${(err as Error).message}` });
        throw err instanceof DocupodError ? err : new DocupodError(Problems.unprocessable, `model '${name}' version ${chosen}: ${(err as Error).message}`, {}, { cause: err });
      }
      const old = this.models.get(name);
      this.models.set(name, model);
      this.unavailable.delete(name);
      this.metrics.loads.inc({ model: name, outcome: 'loaded' });
      this.log.info({ model: name, version: chosen, replaced: old?.version, batchable: model.batchable }, 'model loaded');
      if (old) await this.release(old);
      return model;
    });
  }

  unload(name: string): Promise<void> {
    return this.withLock(name, async () => {
      const model = this.models.get(name);
      if (!model) throw inferError('model_not_found', `model '${name.slice(0, 128)}' is not loaded`);
      this.models.delete(name);
      this.unavailable.set(name, { version: model.version, reason: 'unloaded' });
      this.log.info({ model: name, version: model.version }, 'model unloaded');
      await this.release(model);
    });
  }

  private async release(model: LoadedModel): Promise<void> {
    await model.batcher.drain();
    await model.predictor.close();
  }

  private async open(name: string, version: string, dir: string): Promise<LoadedModel> {
    const path = join(dir, 'manifest.json');
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(path, 'utf8'));
    } catch (err) {
      throw new DocupodError(Problems.unprocessable, `${path}: ${(err as Error).message}`, {}, { cause: err });
    }
    const parsed = ServingManifest.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new DocupodError(Problems.unprocessable, `${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    const manifest = parsed.data;
    if (manifest.name !== name || manifest.version !== version)
      throw new DocupodError(
        Problems.unprocessable,
        `${path}: says ${manifest.name} version ${manifest.version} but sits in ${name}/${version}; the folder names must match the manifest`,
      );
    for (const p of manifest.preprocessing ?? []) {
      const input = manifest.inputs.find((i) => i.name === p.input);
      if (!input || (input.datatype !== 'FP32' && input.datatype !== 'FP64'))
        throw new DocupodError(Problems.unprocessable, `${path}: preprocessing names input '${p.input}', which is not an FP32/FP64 input`);
      const last = input.shape[input.shape.length - 1];
      if (p.mean.length !== p.std.length || (last !== -1 && last !== p.mean.length))
        throw new DocupodError(Problems.unprocessable, `${path}: preprocessing of '${p.input}' needs mean and std of the input's last dimension (${last})`);
    }
    const pp = manifest.postprocessing;
    if (pp) {
      const out = manifest.outputs.find((o) => o.name === pp.output);
      if (!out) throw new DocupodError(Problems.unprocessable, `${path}: postprocessing names output '${pp.output}', which the model does not have`);
      if (!manifest.labels) throw new DocupodError(Problems.unprocessable, `${path}: argmax postprocessing needs labels`);
    }
    const predictor = await openPredictor(dir, manifest);
    const batchable = isBatchable(manifest);
    const opts: BatchOptions = {
      maxBatchSize: batchable ? this.config.maxBatchSize : 1,
      maxDelayMs: batchable ? this.config.maxBatchDelayMs : 0,
      concurrency: this.config.concurrency,
      maxQueueRows: this.config.maxQueue,
    };
    const batchSize = this.metrics.batchSize.labels({ model: name });
    const batcher = new MicroBatcher<Map<string, HostTensor>, Map<string, HostTensor>>(
      (items) => runBatch(predictor, manifest, items),
      opts,
      (rows) => batchSize.observe(rows),
    );
    return { name, version, dir, manifest, batchable, predictor, batcher, loadedAt: new Date() };
  }

  /** The loaded model (and version, when given), or a 404. */
  get(name: string, version?: string): LoadedModel {
    const model = this.models.get(name);
    if (!model) throw inferError('model_not_found', `model '${name.slice(0, 128)}' is not loaded`);
    if (version !== undefined && version !== model.version)
      throw inferError('model_not_found', `model '${name}' version '${version.slice(0, 64)}' is not loaded (loaded: ${model.version})`);
    return model;
  }

  list(): LoadedModel[] {
    return [...this.models.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Every model folder in the repository with its versions; loaded ones READY, the rest UNAVAILABLE with a reason. */
  async index(opts: { ready?: boolean } = {}): Promise<IndexEntry[]> {
    const names = new Set([...(await this.modelNames()), ...this.models.keys()]);
    const out: IndexEntry[] = [];
    for (const name of [...names].sort()) {
      const loaded = this.models.get(name);
      const versions = await this.versionsOnDisk(name);
      if (loaded && !versions.includes(loaded.version)) versions.unshift(loaded.version);
      for (const version of versions.length ? versions : [undefined]) {
        if (loaded && version === loaded.version) out.push({ name, version, state: 'READY' });
        else if (!opts.ready) {
          const u = this.unavailable.get(name);
          const reason = loaded
            ? `not served: version ${loaded.version} is loaded`
            : u && (u.version === undefined || u.version === version)
              ? u.reason
              : 'not loaded';
          out.push({ name, ...(version !== undefined ? { version } : {}), state: 'UNAVAILABLE', reason });
        }
      }
    }
    return out;
  }

  /** Model metadata in the protocol's shape. */
  metadata(model: LoadedModel) {
    const t = (s: TensorSpec) => ({ name: s.name, datatype: s.datatype, shape: s.shape });
    return {
      name: model.name,
      versions: [model.version],
      platform: PLATFORM[model.manifest.framework],
      inputs: model.manifest.inputs.map(t),
      outputs: model.manifest.outputs.map(t),
    };
  }

  /** Times a request, counts it and its failure reason; `name` is only used as a label when the model is loaded. */
  async observe<T>(name: string, api: 'v2' | 'predict', fn: () => Promise<T>): Promise<T> {
    const label = this.models.has(name) ? name : UNKNOWN_MODEL;
    const t0 = performance.now();
    this.metrics.requests.inc({ model: label, api });
    try {
      return await fn();
    } catch (err) {
      this.metrics.errors.inc({ model: label, reason: reasonOf(err) });
      throw err;
    } finally {
      this.metrics.duration.observe({ model: label, api }, (performance.now() - t0) / 1000);
    }
  }

  /** Parses and checks an OIP v2 inference request body against the model's manifest. */
  parseInferRequest(model: LoadedModel, body: unknown): InferInput {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw inferError('invalid_request', 'the body must be a JSON object with an "inputs" array');
    const b = body as Record<string, unknown>;
    if (b.id !== undefined && typeof b.id !== 'string') throw inferError('invalid_request', '"id" must be a string');
    const parameters = optionalObject(b.parameters, 'parameters');
    if (parameters && ('binary_data_output' in parameters || 'binary_data_size' in parameters))
      throw inferError('unsupported', 'the binary tensor data extension is not supported; send JSON tensors');
    if (!Array.isArray(b.inputs) || b.inputs.length === 0) throw inferError('invalid_request', '"inputs" must be a non-empty array of tensors');
    const specs = new Map(model.manifest.inputs.map((s) => [s.name, s]));
    const inputs = new Map<string, HostTensor>();
    for (const [i, raw] of b.inputs.entries()) {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw inferError('invalid_request', `inputs[${i}] must be an object {name, shape, datatype, data}`);
      const t = raw as Record<string, unknown>;
      if (typeof t.name !== 'string') throw inferError('invalid_request', `inputs[${i}].name must be a string`);
      const name = t.name;
      const spec = specs.get(name);
      if (!spec)
        throw inferError('unknown_input', `unknown input '${name.slice(0, 64)}'; model '${model.name}' takes ${[...specs.keys()].map((n) => `'${n}'`).join(', ')}`);
      if (inputs.has(name)) throw inferError('duplicate_input', `input '${name}' is given twice`);
      if (typeof t.datatype !== 'string') throw inferError('invalid_request', `inputs[${i}].datatype must be a string`);
      if (t.datatype !== spec.datatype)
        throw inferError('wrong_datatype', `input '${name}' has datatype ${t.datatype.slice(0, 16)} but model '${model.name}' expects ${spec.datatype}`);
      if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && (d as number) >= 0))
        throw inferError('invalid_request', `inputs[${i}].shape must be an array of non-negative integers`);
      const shape = t.shape as number[];
      checkShape(name, shape, spec);
      optionalObject(t.parameters, `inputs[${i}].parameters`);
      const flat = flattenData(name, t.data, shape);
      inputs.set(name, { datatype: spec.datatype, shape, data: toTypedData(name, spec.datatype, flat) });
    }
    for (const name of specs.keys()) if (!inputs.has(name)) throw inferError('missing_input', `missing input '${name}' (model '${model.name}' needs ${[...specs.keys()].map((n) => `'${n}'`).join(', ')})`);
    if (model.batchable) {
      const rows = new Set([...inputs.values()].map((t) => t.shape[0]));
      if (rows.size > 1) throw inferError('wrong_shape', `inputs disagree on the batch dimension (dimension 0): ${[...inputs].map(([n, t]) => `'${n}' ${showShape(t.shape)}`).join(', ')}`);
    }

    const outputSpecs = new Map(model.manifest.outputs.map((s) => [s.name, s]));
    let outputs: InferInput['outputs'];
    if (b.outputs === undefined) outputs = [...outputSpecs.keys()].map((name) => ({ name }));
    else {
      if (!Array.isArray(b.outputs)) throw inferError('invalid_request', '"outputs" must be an array of {name, parameters}');
      outputs = b.outputs.map((o: unknown, i) => {
        const r = o as Record<string, unknown> | null;
        if (!r || typeof r !== 'object' || typeof r.name !== 'string') throw inferError('invalid_request', `outputs[${i}].name must be a string`);
        if (!outputSpecs.has(r.name))
          throw inferError('unknown_output', `unknown output '${r.name.slice(0, 64)}'; model '${model.name}' produces ${[...outputSpecs.keys()].map((n) => `'${n}'`).join(', ')}`);
        const p = optionalObject(r.parameters, `outputs[${i}].parameters`);
        if (p && ('binary_data' in p) && p.binary_data === true) throw inferError('unsupported', 'the binary tensor data extension is not supported; send JSON tensors');
        const k = p?.classification;
        if (k !== undefined && (!Number.isInteger(k) || (k as number) < 1)) throw inferError('invalid_request', `outputs[${i}].parameters.classification must be a positive integer`);
        return { name: r.name, ...(k !== undefined ? { classification: k as number } : {}) };
      });
    }
    return { ...(b.id !== undefined ? { id: b.id as string } : {}), ...(parameters ? { parameters } : {}), inputs, outputs };
  }

  /** Runs validated inputs through the model's batcher; one result map per request. */
  async run(model: LoadedModel, inputs: Map<string, HostTensor>): Promise<Map<string, HostTensor>> {
    const rows = model.batchable ? inputs.values().next().value!.shape[0]! : 1;
    const key = model.batchable ? [...inputs].map(([n, t]) => `${n}:${t.shape.slice(1).join('x')}`).join('|') : '';
    try {
      return await model.batcher.submit(inputs, rows, key);
    } catch (err) {
      if (err instanceof QueueFullError) throw inferError('overloaded', `model '${model.name}' is overloaded: ${err.message}`);
      if (err instanceof DocupodError) throw err;
      this.log.error({ err, model: model.name }, 'model run failed');
      throw inferError('runtime_error', `model '${model.name}' failed to run: ${(err as Error).message}`);
    }
  }

  async infer(model: LoadedModel, req: InferInput): Promise<InferResponse> {
    const result = await this.run(model, req.inputs);
    const outputs = req.outputs.map(({ name, classification }) => {
      const t = result.get(name)!;
      if (classification !== undefined) return classify(model, name, t, classification);
      return { name, datatype: t.datatype, shape: t.shape, data: toJsonData(t) };
    });
    return {
      model_name: model.name,
      model_version: model.version,
      ...(req.id !== undefined ? { id: req.id } : {}),
      outputs,
    };
  }

  async close(): Promise<void> {
    for (const model of this.models.values()) await this.release(model).catch(() => {});
    this.models.clear();
  }
}

const fail400 = (detail: string) => inferError('invalid_request', detail);

function optionalObject(v: unknown, what: string): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw inferError('invalid_request', `"${what}" must be an object`);
  return v as Record<string, unknown>;
}

export function checkShape(name: string, shape: readonly number[], spec: TensorSpec): void {
  const ok = shape.length === spec.shape.length && spec.shape.every((d, i) => d === -1 || d === shape[i]);
  if (!ok) throw inferError('wrong_shape', `input '${name}' has shape ${showShape(shape)} but the model expects ${showShape(spec.shape)} (-1: any size)`);
}

/** Runs one batch: standardise inputs, concatenate along dimension 0, run, cut the outputs back per request. */
async function runBatch(predictor: Predictor, manifest: ServingManifest, items: Array<Map<string, HostTensor>>): Promise<Array<Map<string, HostTensor>>> {
  const names = manifest.inputs.map((i) => i.name);
  const merged = new Map<string, HostTensor>();
  for (const name of names) merged.set(name, concatRows(items.map((m) => m.get(name)!)));
  for (const p of manifest.preprocessing ?? []) {
    const t = merged.get(p.input)!;
    const src = t.data as Float32Array | Float64Array;
    const out = new (src.constructor as Float32ArrayConstructor)(src.length);
    const width = t.shape[t.shape.length - 1]!;
    if (width !== p.mean.length) throw inferError('wrong_shape', `input '${p.input}' must have ${p.mean.length} values in its last dimension for standardisation`);
    for (let i = 0; i < src.length; i++) out[i] = (src[i]! - p.mean[i % width]!) / p.std[i % width]!;
    merged.set(p.input, { ...t, data: out });
  }
  const result = await predictor.run(merged);
  if (items.length === 1) return [result];
  const out: Array<Map<string, HostTensor>> = items.map(() => new Map());
  for (const [name, t] of result) {
    let start = 0;
    items.forEach((m, i) => {
      const rows = m.values().next().value!.shape[0]!;
      out[i]!.set(name, sliceRows(t, start, rows));
      start += rows;
    });
    if (start !== t.shape[0]) throw new Error(`output '${name}' has ${t.shape[0]} rows for a batch of ${start}; the model is not batch-major`);
  }
  return out;
}

/**
 * Triton's classification extension: the top k classes of each row as BYTES "score:index[:label]", shape [rows, k]
 * (or [k] for a 1-D output).
 */
function classify(model: LoadedModel, name: string, t: HostTensor, k: number): InferOutput {
  if (t.datatype === 'BYTES' || t.datatype === 'BOOL') throw inferError('invalid_request', `output '${name}' is ${t.datatype}; classification needs a numeric output`);
  const values = toJsonData(t) as number[];
  const classes = t.shape[t.shape.length - 1] ?? values.length;
  const rows = values.length / Math.max(classes, 1);
  const labels = model.manifest.labels;
  const data: string[] = [];
  const top = Math.min(k, classes);
  for (let r = 0; r < rows; r++) {
    const row = values.slice(r * classes, (r + 1) * classes).map((v, i) => [v, i] as const);
    row.sort((a, b) => b[0] - a[0]);
    for (const [v, i] of row.slice(0, top)) data.push(`${v}:${i}${labels?.[i] !== undefined ? `:${labels[i]}` : ''}`);
  }
  return { name, datatype: 'BYTES', shape: t.shape.length > 1 ? [rows, top] : [top], data };
}
