import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/schema.js';
import { startRuntime, type Runtime } from '../src/modules/runtime.js';
import { silentLogger } from '../src/observability/logger.js';
import {
  CLASSIFIER,
  EMBEDDING,
  classifierExpected,
  classifierManifest,
  classifierOnnx,
  gatherManifest,
  gatherOnnx,
  pairManifest,
  pairOnnx,
  writeOnnxModel,
} from './fixtures/onnx.js';

// The models role on its own (DOCUPOD_ROLE=models, no database), serving tiny ONNX models the test writes and the
// intent classifier trained by the built CLI. Every expected number is computed here, independently of the runtime.

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/main.js');
const CSV = join(ROOT, 'deploy/models/intents.csv');
const TOKEN = 'models-test-internal-token';
const admin = { authorization: `Bearer ${TOKEN}` };

let dir: string;
let repo: string;
let rt: Runtime;
let trainOutput: string;

// The models role on its own has no user database: its callers (another docupod role, a deploy pipeline) present the
// internal token, for inference (DOCUPOD_MODELS_INFERENCE=authenticated, the default) and the repository alike.
const inject = (method: 'GET' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = admin) =>
  rt.app.inject({ method, url, ...(payload !== undefined ? { payload: payload as object } : {}), headers });

const close = (a: number, b: number, digits = 5) => expect(a).toBeCloseTo(b, digits);

async function histogram(name: string, model: string): Promise<{ count: number; sum: number }> {
  const m = rt.metrics.getSingleMetric(name);
  const values = (await m!.get()).values;
  const pick = (suffix: string) =>
    values.find((v) => (v as { metricName?: string }).metricName === `${name}${suffix}` && v.labels.model === model)?.value ?? 0;
  return { count: pick('_count'), sum: pick('_sum') };
}

async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const values = (await rt.metrics.getSingleMetric(name)!.get()).values;
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'docupod-models-'));
  repo = join(dir, 'models');
  await writeOnnxModel(repo, 'classifier', '1', classifierOnnx(), classifierManifest);
  await writeOnnxModel(repo, 'gather', '1', gatherOnnx(), gatherManifest);
  await writeOnnxModel(repo, 'pair', '1', pairOnnx(), pairManifest);
  // The intent model comes from the real CLI, into the repository layout the role serves.
  const { stdout } = await run(process.execPath, [CLI, 'models', 'train-intent', CSV, '--out', join(repo, 'intent-classifier', '1'), '--seed', '42'], {
    env: { PATH: process.env.PATH, DOCUPOD_LOG_LEVEL: 'silent' },
  });
  trainOutput = stdout;
  const config = loadConfig({
    DOCUPOD_ROLE: 'models',
    DOCUPOD_DATA_DIR: dir,
    DOCUPOD_MODELS_REPOSITORY: repo,
    DOCUPOD_MODELS_MAX_BATCH_SIZE: '8',
    // Long enough that concurrent test requests meet in one batch on a slow runner.
    DOCUPOD_MODELS_MAX_BATCH_DELAY: '30ms',
    DOCUPOD_INTERNAL_TOKEN: TOKEN,
    DOCUPOD_LOG_LEVEL: 'silent',
    DOCUPOD_METRICS_ENABLED: 'false',
  });
  rt = await startRuntime(config, silentLogger());
});

afterAll(async () => {
  await rt?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('docupod models train-intent', () => {
  it('prints the held-out accuracy and writes a model folder', () => {
    expect(trainOutput).toMatch(/held-out accuracy 0\.\d{4} \(n_test=\d+, seed=42\)/);
    expect(Number(/held-out accuracy (\S+)/.exec(trainOutput)![1])).toBeGreaterThanOrEqual(0.85);
    expect(trainOutput).toContain(join(repo, 'intent-classifier', '1', 'manifest.json'));
  });

  it('lists the repository with `docupod models list`', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'models', 'list', '--json'], {
      env: { PATH: process.env.PATH, DOCUPOD_MODELS_REPOSITORY: repo, DOCUPOD_LOG_LEVEL: 'silent' },
    });
    const listed = JSON.parse(stdout) as { models: Array<{ name: string; version: string; framework: string; accuracy?: number }> };
    expect(listed.models.map((m) => `${m.name}/${m.version}/${m.framework}`)).toEqual([
      'classifier/1/onnx',
      'gather/1/onnx',
      'intent-classifier/1/docupod-tfidf-logreg',
      'pair/1/onnx',
    ]);
    expect(listed.models.find((m) => m.name === 'intent-classifier')!.accuracy).toBeGreaterThan(0.85);
  });
});

describe('Open Inference Protocol v2: health and metadata', () => {
  it('answers server liveness, readiness and metadata', async () => {
    const live = await inject('GET', '/models/v2/health/live');
    expect([live.statusCode, live.json()]).toEqual([200, { live: true }]);
    const ready = await inject('GET', '/models/v2/health/ready');
    expect([ready.statusCode, ready.json()]).toEqual([200, { ready: true }]);
    const meta = await inject('GET', '/models/v2');
    expect(meta.statusCode).toBe(200);
    expect(meta.json()).toEqual({ name: 'docupod', version: expect.any(String), extensions: ['model_repository', 'classification'] });
  });

  it('describes a model with exactly the protocol fields', async () => {
    const res = await inject('GET', '/models/v2/models/classifier');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      name: 'classifier',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'logits', datatype: 'FP32', shape: [-1, 3] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
      ],
    });
    expect((await inject('GET', '/models/v2/models/classifier/versions/1')).json()).toEqual(res.json());
    const intent = (await inject('GET', '/models/v2/models/intent-classifier')).json();
    expect(intent).toMatchObject({ platform: 'docupod_tfidf_logreg', inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }] });
  });

  it('reports model readiness, and 404 problem+json for an unknown model or version', async () => {
    const ready = await inject('GET', '/models/v2/models/classifier/ready');
    expect([ready.statusCode, ready.json()]).toEqual([200, { name: 'classifier', ready: true }]);
    expect((await inject('GET', '/models/v2/models/classifier/versions/1/ready')).statusCode).toBe(200);
    const missing = await inject('GET', '/models/v2/models/nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toContain('application/problem+json');
    expect(missing.json()).toMatchObject({ type: '/problems/not-found', status: 404, detail: "model 'nope' is not loaded", error: "model 'nope' is not loaded" });
    const wrongVersion = await inject('GET', '/models/v2/models/classifier/versions/7/ready');
    expect(wrongVersion.statusCode).toBe(404);
    expect(wrongVersion.json().detail).toBe("model 'classifier' version '7' is not loaded (loaded: 1)");
  });
});

describe('Open Inference Protocol v2: infer', () => {
  const rows = [
    [1, 2, 3, 4],
    [0.5, -1, 2, 0],
  ];

  it('runs MatMul + Add + Softmax and returns every output in protocol form', async () => {
    const res = await inject('POST', '/models/v2/models/classifier/infer', {
      id: 'req-1',
      inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: rows.flat() }],
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['id', 'model_name', 'model_version', 'outputs']);
    expect(body.model_name).toBe('classifier');
    expect(body.model_version).toBe('1');
    expect(body.id).toBe('req-1');
    expect(body.outputs.map((o: { name: string }) => o.name)).toEqual(['logits', 'probabilities']);
    for (const o of body.outputs) {
      expect(Object.keys(o).sort()).toEqual(['data', 'datatype', 'name', 'shape']);
      expect(o.datatype).toBe('FP32');
      expect(o.shape).toEqual([2, 3]);
      expect(o.data).toHaveLength(6);
    }
    const expected = rows.map(classifierExpected);
    expected.forEach((e, r) =>
      e.probabilities.forEach((p, j) => {
        close(body.outputs[1].data[r * 3 + j], p, 6);
        close(body.outputs[0].data[r * 3 + j], e.logits[j]!, 5);
      }),
    );
  });

  it('accepts nested data, returns only the requested outputs and omits id when none was sent', async () => {
    const res = await inject('POST', '/models/v2/models/classifier/versions/1/infer', {
      inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: rows, parameters: {} }],
      outputs: [{ name: 'probabilities' }],
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.id).toBeUndefined();
    expect(body.outputs).toHaveLength(1);
    expect(body.outputs[0]).toMatchObject({ name: 'probabilities', datatype: 'FP32', shape: [2, 3] });
    close(body.outputs[0].data[2], classifierExpected(rows[0]!).probabilities[2]!, 6);
  });

  it('answers the classification extension with "score:index:label" strings', async () => {
    const res = await inject('POST', '/models/v2/models/classifier/infer', {
      inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: rows.flat() }],
      outputs: [{ name: 'probabilities', parameters: { classification: 2 } }],
    });
    const out = res.json().outputs[0];
    expect(out.datatype).toBe('BYTES');
    expect(out.shape).toEqual([2, 2]);
    const [first, second] = rows.map(classifierExpected);
    const ranked = (p: number[]) => p.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
    expect(out.data.map((s: string) => s.split(':').slice(1).join(':'))).toEqual([
      ...ranked(first!.probabilities).slice(0, 2).map(([, i]) => `${i}:${CLASSIFIER.labels[i]}`),
      ...ranked(second!.probabilities).slice(0, 2).map(([, i]) => `${i}:${CLASSIFIER.labels[i]}`),
    ]);
    close(Number(out.data[0].split(':')[0]), ranked(first!.probabilities)[0]![0], 6);
  });

  it('gathers embedding rows for INT64 ids and returns INT64 outputs', async () => {
    const ids = [
      [1, 2, 9],
      [0, 3, 4],
    ];
    const res = await inject('POST', '/models/v2/models/gather/infer', { inputs: [{ name: 'ids', shape: [2, 3], datatype: 'INT64', data: ids.flat() }] });
    expect(res.statusCode).toBe(200);
    const [vectors, next] = res.json().outputs;
    expect(vectors).toMatchObject({ name: 'vectors', datatype: 'FP32', shape: [2, 3, 3] });
    const expected = ids.flat().flatMap((i) => [0, 1, 2].map((d) => EMBEDDING.value(i, d)));
    vectors.data.forEach((v: number, k: number) => close(v, expected[k]!, 6));
    expect(next).toEqual({ name: 'next_ids', datatype: 'INT64', shape: [2, 3], data: ids.flat().map((i) => i + 1) });
  });

  it('batches concurrent requests into fewer runs, each answer still its own', async () => {
    const before = await histogram('docupod_models_batch_size', 'classifier');
    const inputs = Array.from({ length: 16 }, (_, i) => [i, i / 2, -i / 4, 1]);
    const answers = await Promise.all(
      inputs.map((x) => inject('POST', '/models/v2/models/classifier/infer', { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: x }], outputs: [{ name: 'probabilities' }] })),
    );
    answers.forEach((res, i) => {
      expect(res.statusCode).toBe(200);
      const out = res.json().outputs[0];
      expect(out.shape).toEqual([1, 3]);
      classifierExpected(inputs[i]!).probabilities.forEach((p, j) => close(out.data[j], p, 6));
    });
    const after = await histogram('docupod_models_batch_size', 'classifier');
    const runs = after.count - before.count;
    expect(after.sum - before.sum).toBe(16); // every row ran exactly once
    expect(runs).toBeLessThan(16);
    expect(runs).toBeGreaterThanOrEqual(2); // max batch size is 8
  });

  it('batches only requests whose non-batch dimensions match', async () => {
    const reqs = [[[1, 2]], [[3, 4, 5]], [[6, 7]], [[8, 9, 0]]];
    const answers = await Promise.all(reqs.map((ids) => inject('POST', '/models/v2/models/gather/infer', { inputs: [{ name: 'ids', shape: [1, ids[0]!.length], datatype: 'INT64', data: ids }] })));
    answers.forEach((res, i) => {
      expect(res.statusCode).toBe(200);
      expect(res.json().outputs[1].data).toEqual(reqs[i]![0]!.map((v) => v + 1));
    });
  });
});

describe('bad inputs are 400 problem+json with the exact reason', () => {
  const x = (over: Record<string, unknown>) => ({ inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4], ...over }] });
  const cases: Array<[string, string, unknown, string, string]> = [
    ['wrong shape', 'classifier', x({ shape: [1, 5], data: [1, 2, 3, 4, 5] }), 'wrong_shape', "input 'x' has shape [1, 5] but the model expects [-1, 4] (-1: any size)"],
    ['wrong rank', 'classifier', x({ shape: [4] }), 'wrong_shape', "input 'x' has shape [4] but the model expects [-1, 4] (-1: any size)"],
    ['wrong datatype', 'classifier', x({ datatype: 'FP64' }), 'wrong_datatype', "input 'x' has datatype FP64 but model 'classifier' expects FP32"],
    ['shape/data length mismatch', 'classifier', x({ shape: [2, 4] }), 'data_length_mismatch', "input 'x': shape [2, 4] holds 8 elements but data has 4"],
    ['nested data not matching the shape', 'classifier', x({ data: [[1, 2, 3]] }), 'data_length_mismatch', "input 'x': nested data does not match shape [1, 4]: data[0] has 3 elements, expected 4"],
    ['element of the wrong type', 'classifier', x({ data: [1, 'two', 3, 4] }), 'invalid_data', 'input \'x\': element 1 ("two") is not a number, as datatype FP32 requires'],
    ['fractional INT64', 'gather', { inputs: [{ name: 'ids', shape: [1, 1], datatype: 'INT64', data: [1.5] }] }, 'invalid_data', "input 'ids': element 0 (1.5) is not an integer, as datatype INT64 requires"],
    ['missing input', 'pair', { inputs: [{ name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] }, 'missing_input', "missing input 'b' (model 'pair' needs 'a', 'b')"],
    ['unknown input', 'classifier', x({ name: 'y' }), 'unknown_input', "unknown input 'y'; model 'classifier' takes 'x'"],
    ['unknown output', 'classifier', { ...x({}), outputs: [{ name: 'scores' }] }, 'unknown_output', "unknown output 'scores'; model 'classifier' produces 'logits', 'probabilities'"],
    [
      'batch dimensions that disagree',
      'pair',
      { inputs: [{ name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 2] }, { name: 'b', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3, 4] }] },
      'wrong_shape',
      "inputs disagree on the batch dimension (dimension 0): 'a' [1, 2], 'b' [2, 2]",
    ],
    ['no inputs', 'classifier', { inputs: [] }, 'invalid_request', '"inputs" must be a non-empty array of tensors'],
    ['binary data extension', 'classifier', { ...x({}), parameters: { binary_data_output: true } }, 'unsupported', 'the binary tensor data extension is not supported; send JSON tensors'],
  ];

  it.each(cases)('rejects %s', async (_what, model, body, reason, detail) => {
    const before = await counter('docupod_models_errors_total', { model, reason });
    const res = await inject('POST', `/models/v2/models/${model}/infer`, body);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ type: '/problems/bad-request', status: 400, reason, detail, error: detail, instance: expect.any(String) });
    expect(await counter('docupod_models_errors_total', { model, reason })).toBe(before + 1);
  });

  it('answers 404 for an unknown model and counts it without the requested name as a label', async () => {
    const res = await inject('POST', '/models/v2/models/made-up-model/infer', x({}));
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ reason: 'model_not_found', detail: "model 'made-up-model' is not loaded" });
    const exposition = await rt.metrics.metrics();
    expect(exposition).toContain('docupod_models_errors_total{model="_unknown",reason="model_not_found"');
    expect(exposition).not.toContain('made-up-model');
  });
});

describe('plain JSON /predict', () => {
  it('classifies one text with the intent model', async () => {
    const res = await inject('POST', '/models/intent-classifier/predict', { text: 'hey there, good morning' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['confidence', 'intent']);
    expect(body.intent).toBe('greeting');
    expect(body.confidence).toBeGreaterThan(0.2);
    expect(body.confidence).toBeLessThanOrEqual(1);
  });

  it('classifies a batch of texts in order', async () => {
    const res = await inject('POST', '/models/intent-classifier/predict', { texts: ['i forgot my pasword again', 'I was billed twice for my subscription'] });
    expect(res.statusCode).toBe(200);
    expect(res.json().predictions.map((p: { intent: string }) => p.intent)).toEqual(['reset_password', 'billing']);
  });

  it('serves the same model over OIP v2 with a BYTES input', async () => {
    const res = await inject('POST', '/models/v2/models/intent-classifier/infer', {
      inputs: [{ name: 'text', shape: [2], datatype: 'BYTES', data: ['please let me talk to a real human', 'hello'] }],
    });
    expect(res.statusCode).toBe(200);
    const [intent, probabilities] = res.json().outputs;
    expect(intent).toEqual({ name: 'intent', datatype: 'BYTES', shape: [2], data: ['human_agent', 'greeting'] });
    expect(probabilities).toMatchObject({ name: 'probabilities', datatype: 'FP32', shape: [2, 8] });
    close(probabilities.data.slice(0, 8).reduce((a: number, b: number) => a + b, 0), 1, 5);
  });

  it('rejects a body without text', async () => {
    const res = await inject('POST', '/models/intent-classifier/predict', { txt: 'hello' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ reason: 'missing_input', detail: 'expected {"text": "…"} or {"texts": ["…", …]}' });
    expect((await inject('POST', '/models/intent-classifier/predict', { text: 42 })).json().detail).toBe('"text" must be a string');
  });

  it('takes nested arrays for an ONNX model and adds argmax labels', async () => {
    const x = [
      [1, 2, 3, 4],
      [4, 0, 0, 0],
    ];
    const res = await inject('POST', '/models/classifier/predict', { inputs: { x } });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const expected = x.map(classifierExpected);
    expect(body.outputs.probabilities).toHaveLength(2);
    body.outputs.probabilities[1].forEach((p: number, j: number) => close(p, expected[1]!.probabilities[j]!, 6));
    const argmax = (p: number[]) => p.indexOf(Math.max(...p));
    expect(body.predictions.map((p: { label: string }) => p.label)).toEqual(expected.map((e) => CLASSIFIER.labels[argmax(e.probabilities)]));
    close(body.predictions[0].confidence, Math.max(...expected[0]!.probabilities), 6);
  });

  it('answers 404 for an unknown model', async () => {
    expect((await inject('POST', '/models/nope/predict', { text: 'hi' })).statusCode).toBe(404);
  });
});

describe('metrics per model', () => {
  it('exposes requests, latency, batch sizes and errors by model on /metrics', async () => {
    await inject('POST', '/models/intent-classifier/predict', { text: 'hi' });
    const text = (await inject('GET', '/metrics')).body;
    expect(text).toMatch(/docupod_models_requests_total\{[^}]*model="intent-classifier"[^}]*api="predict"[^}]*\} \d+/);
    expect(text).toMatch(/docupod_models_request_duration_seconds_bucket\{[^}]*model="classifier"/);
    expect(text).toMatch(/docupod_models_batch_size_count\{[^}]*model="classifier"[^}]*\} \d+/);
    expect(text).toMatch(/docupod_models_errors_total\{[^}]*model="classifier"[^}]*reason="wrong_shape"[^}]*\} \d+/);
  });
});

describe('who may call the models role on its own', () => {
  const x = [1, 2, 3, 4];
  const calls: Array<[method: 'GET' | 'POST', url: string, body?: unknown]> = [
    ['GET', '/models/v2/models/classifier'],
    ['GET', '/models/v2/models/classifier/ready'],
    ['POST', '/models/v2/models/classifier/infer', { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: x }] }],
    ['POST', '/models/v2/models/classifier/versions/1/infer', { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: x }] }],
    ['POST', '/models/intent-classifier/predict', { text: 'I forgot my password' }],
  ];

  it('refuses inference and model metadata without the internal token, even from loopback, naming the setting that opens it', async () => {
    for (const [method, url, body] of calls) {
      // app.inject comes from 127.0.0.1: a loopback caller is not trusted.
      for (const headers of [{}, { authorization: 'Bearer an-access-token-this-role-cannot-check' }] as Array<Record<string, string>>) {
        const res = await inject(method, url, body, headers);
        expect(res.statusCode, `${method} ${url}`).toBe(401);
        expect(res.headers['content-type']).toContain('application/problem+json');
        expect(res.json().detail).toMatch(/DOCUPOD_INTERNAL_TOKEN.*DOCUPOD_MODELS_INFERENCE=open/);
        expect(res.body).not.toMatch(/logits|intent"/);
      }
      expect((await inject(method, url, body)).statusCode, `${method} ${url} with the token`).toBe(200);
    }
  });

  it('keeps server health and metadata open for probes', async () => {
    for (const url of ['/models/v2/health/live', '/models/v2/health/ready', '/models/v2']) expect((await inject('GET', url, undefined, {})).statusCode, url).toBe(200);
  });

  it('serves inference to anyone with DOCUPOD_MODELS_INFERENCE=open, and still guards the repository', async () => {
    const open = await startRuntime(
      loadConfig({ DOCUPOD_ROLE: 'models', DOCUPOD_DATA_DIR: dir, DOCUPOD_MODELS_REPOSITORY: repo, DOCUPOD_MODELS_INFERENCE: 'open', DOCUPOD_INTERNAL_TOKEN: TOKEN, DOCUPOD_LOG_LEVEL: 'silent', DOCUPOD_METRICS_ENABLED: 'false' }),
      silentLogger(),
    );
    try {
      for (const [method, url, body] of calls) {
        const res = await open.app.inject({ method, url, ...(body ? { payload: body as object } : {}) });
        expect(res.statusCode, `${method} ${url}`).toBe(200);
      }
      expect((await open.app.inject({ method: 'GET', url: '/models/v2/repository/index' })).statusCode).toBe(401);
    } finally {
      await open.stop();
    }
  });
});

describe('model repository: reload and unload without a restart', () => {
  it('needs the internal token, even from loopback', async () => {
    const res = await inject('POST', '/models/v2/repository/models/classifier/load', undefined, {});
    expect(res.statusCode).toBe(401);
    expect(res.json().detail).toMatch(/Bearer <DOCUPOD_INTERNAL_TOKEN>/);
    expect((await inject('GET', '/models/v2/repository/index', undefined, { authorization: 'Bearer wrong-token-of-the-same-size!' })).statusCode).toBe(401);
  });

  it('lists the repository in the repository-extension shape', async () => {
    const res = await inject('GET', '/models/v2/repository/index', undefined, admin);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([
      { name: 'classifier', version: '1', state: 'READY' },
      { name: 'gather', version: '1', state: 'READY' },
      { name: 'intent-classifier', version: '1', state: 'READY' },
      { name: 'pair', version: '1', state: 'READY' },
    ]);
  });

  it('loads a new version in place; the old one is gone, answers use the new weights', async () => {
    // Version 2: the same graph with a manifest that standardises x first (x - 1) / 2; the answer must change accordingly.
    await writeOnnxModel(repo, 'classifier', '2', classifierOnnx(), {
      ...classifierManifest,
      preprocessing: [{ type: 'standardize', input: 'x', mean: [1, 1, 1, 1], std: [2, 2, 2, 2] }],
    });
    const load = await inject('POST', '/models/v2/repository/models/classifier/load', undefined, admin);
    expect([load.statusCode, load.json()]).toEqual([200, { name: 'classifier', version: '2', state: 'READY' }]);
    expect((await inject('GET', '/models/v2/models/classifier')).json().versions).toEqual(['2']);
    const x = [3, 5, -1, 1];
    const res = await inject('POST', '/models/v2/models/classifier/infer', { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: x }] });
    expect(res.json().model_version).toBe('2');
    const expected = classifierExpected(x.map((v) => (v - 1) / 2));
    res.json().outputs[1].data.forEach((p: number, j: number) => close(p, expected.probabilities[j]!, 6));
    expect((await inject('POST', '/models/v2/models/classifier/versions/1/infer', { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: x }] })).statusCode).toBe(404);
    const index = (await inject('GET', '/models/v2/repository/index', undefined, admin)).json();
    expect(index.filter((e: { name: string }) => e.name === 'classifier')).toEqual([
      { name: 'classifier', version: '2', state: 'READY' },
      { name: 'classifier', version: '1', state: 'UNAVAILABLE', reason: 'not served: version 2 is loaded' },
    ]);
    // Back to a pinned version.
    const pinned = await inject('POST', '/models/v2/repository/models/classifier/load', { parameters: { version: '1' } }, admin);
    expect(pinned.json()).toEqual({ name: 'classifier', version: '1', state: 'READY' });
  });

  it('unloads a model (404 afterwards) and loads it again', async () => {
    const unload = await inject('POST', '/models/v2/repository/models/gather/unload', undefined, admin);
    expect([unload.statusCode, unload.json()]).toEqual([200, { name: 'gather', state: 'UNAVAILABLE' }]);
    expect((await inject('GET', '/models/v2/models/gather')).statusCode).toBe(404);
    expect((await inject('GET', '/models/v2/models/gather/ready')).statusCode).toBe(404);
    const index = (await inject('GET', '/models/v2/repository/index', undefined, admin)).json();
    expect(index).toContainEqual({ name: 'gather', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' });
    expect((await inject('POST', '/models/v2/repository/models/gather/unload', undefined, admin)).statusCode).toBe(404);
    expect((await inject('POST', '/models/v2/repository/models/gather/load', undefined, admin)).statusCode).toBe(200);
    expect((await inject('GET', '/models/v2/models/gather/ready')).json()).toEqual({ name: 'gather', ready: true });
  });

  it('refuses names that are not in the repository, including path tricks', async () => {
    const res = await inject('POST', '/models/v2/repository/models/not-there/load', undefined, admin);
    expect(res.statusCode).toBe(404);
    expect(res.json().detail).toBe("model 'not-there' is not in the model repository");
    expect((await inject('POST', '/models/v2/repository/models/..%2F..%2Fetc/load', undefined, admin)).statusCode).toBe(404);
  });
});
