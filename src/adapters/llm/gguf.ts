// GGUF model files for the in-process llama.cpp adapters (llamacpp LLM and embedder): checking a file before llama.cpp
// sees it, loading it where a bad file cannot take the server down, listing a directory of them, and the one shared
// node-llama-cpp runtime.
//
// Why the care: llama.cpp does not fail gracefully on every malformed file. A missing llama.feed_forward_length or
// attention.head_count, or a vocabulary with duplicate pieces, hits a GGML_ASSERT that abort()s the whole process
// (exit 134), taking every request and role with it. So a file is (1) read by node-llama-cpp's GGUF parser (pure JS:
// magic, version, metadata, tensor table) and checked for what llama.cpp asserts on, then (2) loaded once in a child
// process that evaluates a token; only a file that passed both is loaded in process. Each step's error names the file.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { GgufFileInfo, Llama } from 'node-llama-cpp';
import { DocupodError, Problems } from '../../core/errors.js';

export interface GgufSummary {
  path: string;
  file: string;
  /** general.name, else the file name. */
  name: string;
  architecture: string;
  sizeBytes: number;
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  /** e.g. Q4_K_M, F16 (from general.file_type), else the most common tensor type. */
  quantisation: string;
  /** Whether the file carries its own chat template (tokenizer.chat_template). */
  chatTemplate: boolean;
  version: number;
}

/** Architectures without attention heads or feed-forward blocks (state-space and RNN models). */
const NO_ATTENTION = new Set(['mamba', 'mamba2', 'rwkv6', 'rwkv6qwen2', 'rwkv7', 'arwkv7']);

/** [elements per block, bytes per block] of the ggml tensor types, to find where the tensor data must end. */
const GGML_TYPE_SIZE: Record<number, [number, number]> = {
  0: [1, 4], 1: [1, 2], 2: [32, 18], 3: [32, 20], 6: [32, 22], 7: [32, 24], 8: [32, 34], 9: [32, 36],
  10: [256, 84], 11: [256, 110], 12: [256, 144], 13: [256, 176], 14: [256, 210], 15: [256, 292],
  16: [256, 66], 17: [256, 74], 18: [256, 98], 19: [256, 50], 20: [32, 18], 21: [256, 110], 22: [256, 82],
  23: [256, 136], 24: [1, 1], 25: [1, 2], 26: [1, 4], 27: [1, 8], 28: [1, 8], 29: [256, 56], 30: [1, 2],
  34: [256, 54], 35: [256, 66],
};

function invalid(path: string, problem: string, cause?: unknown): DocupodError {
  return new DocupodError(Problems.llmUnavailable, `GGUF model ${path}: ${problem}`, { retryable: false, model: path }, cause ? { cause } : undefined);
}

/**
 * Reads and checks a GGUF file's header without llama.cpp: magic and version, the metadata llama.cpp needs for the
 * architecture, a vocabulary without duplicates, and tensor data that fits in the file. Throws a DocupodError naming
 * the file and the problem.
 */
export async function inspectGguf(modelPath: string): Promise<GgufSummary> {
  const path = resolve(modelPath);
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw invalid(path, err.code === 'ENOENT' ? 'no such file' : `cannot read it (${err.code ?? err.message})`, err);
  });
  if (!st.isFile()) throw invalid(path, 'is not a file');
  const { readGgufFileInfo, GgufFileType } = await import('node-llama-cpp');
  let info: GgufFileInfo;
  try {
    info = await readGgufFileInfo(path, { sourceType: 'filesystem', logWarnings: false, spliceSplitFiles: false });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (/magic/i.test(msg)) throw invalid(path, `not a GGUF file (${msg})`, err);
    throw invalid(path, `unreadable GGUF header: ${msg} (truncated or corrupt?)`, err);
  }
  if (info.version < 2 || info.version > 3) throw invalid(path, `GGUF version ${info.version} is not supported (2 or 3 expected)`);
  const meta = info.metadata as unknown as Record<string, Record<string, unknown> | undefined>;
  const general = meta.general ?? {};
  const arch = typeof general.architecture === 'string' ? general.architecture : undefined;
  if (!arch) throw invalid(path, 'missing metadata general.architecture');
  const archMeta = (meta[arch] ?? {}) as Record<string, unknown>;
  const attention = (archMeta.attention ?? {}) as Record<string, unknown>;
  const required: Array<[string, unknown]> = [
    [`${arch}.context_length`, archMeta.context_length],
    [`${arch}.embedding_length`, archMeta.embedding_length],
    [`${arch}.block_count`, archMeta.block_count],
  ];
  if (!NO_ATTENTION.has(arch))
    required.push([`${arch}.feed_forward_length`, archMeta.feed_forward_length], [`${arch}.attention.head_count`, attention.head_count]);
  const tokenizer = ((meta.tokenizer ?? {}) as Record<string, Record<string, unknown> | undefined>).ggml ?? {};
  required.push(['tokenizer.ggml.model', tokenizer.model], ['tokenizer.ggml.tokens', tokenizer.tokens]);
  const missing = required.filter(([, v]) => v === undefined || v === null).map(([k]) => k);
  if (missing.length > 0)
    throw invalid(path, `missing required metadata ${missing.join(', ')} (llama.cpp would abort the process on this file)`);
  const tokens = tokenizer.tokens as unknown[];
  if (!Array.isArray(tokens) || tokens.length === 0) throw invalid(path, 'tokenizer.ggml.tokens is empty');
  if (new Set(tokens).size !== tokens.length) throw invalid(path, 'tokenizer.ggml.tokens has duplicate pieces (llama.cpp would abort the process on this file)');

  const tensors = info.tensorInfo ?? [];
  if (tensors.length === 0) throw invalid(path, 'has no tensors');
  const dataStart = info.infoEndOffset ?? 0;
  let needed = dataStart;
  const typeCount = new Map<number, number>();
  for (const t of tensors) {
    const elements = t.dimensions.reduce<number>((n, d) => n * Number(d), 1);
    typeCount.set(t.ggmlType, (typeCount.get(t.ggmlType) ?? 0) + elements);
    const size = GGML_TYPE_SIZE[t.ggmlType];
    const bytes = size ? Math.ceil(elements / size[0]) * size[1] : 0;
    needed = Math.max(needed, dataStart + Number(t.offset) + bytes);
  }
  if (st.size < needed)
    throw invalid(path, `truncated: the file has ${st.size} bytes but its tensors need ${needed} (an interrupted download?)`);

  const fileType = typeof general.file_type === 'number' ? (GgufFileType as Record<number, string>)[general.file_type] : undefined;
  const commonest = [...typeCount.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const typeName = (GGML_TYPE_NAMES[commonest ?? -1] ?? 'unknown');
  return {
    path,
    file: basename(path),
    name: typeof general.name === 'string' && general.name ? general.name : basename(path).replace(/\.gguf$/i, ''),
    architecture: arch,
    sizeBytes: st.size,
    contextLength: Number(archMeta.context_length),
    embeddingLength: Number(archMeta.embedding_length),
    blockCount: Number(archMeta.block_count),
    quantisation: fileType ? fileType.replace(/^(MOSTLY|ALL)_/, '') : typeName,
    chatTemplate: typeof (meta.tokenizer as Record<string, unknown> | undefined)?.chat_template === 'string',
    version: info.version,
  };
}

const GGML_TYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 30: 'BF16',
};

/** The *.gguf files directly in `dir` (and one level of subfolders), each inspected; a bad file is listed with its problem. */
export async function listGgufFiles(dir: string): Promise<Array<GgufSummary | { path: string; file: string; problem: string }>> {
  const root = resolve(dir);
  const found: string[] = [];
  const walk = async (d: string, depth: number) => {
    const entries = await readdir(d, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (d === root) throw new DocupodError(Problems.notFound, `model directory ${root}: ${err.code === 'ENOENT' ? 'no such directory' : err.message}`, { retryable: false });
      return [];
    });
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isFile() && /\.gguf$/i.test(e.name)) found.push(p);
      else if (e.isDirectory() && depth < 1) await walk(p, depth + 1);
    }
  };
  await walk(root, 0);
  found.sort();
  return Promise.all(
    found.map((p) =>
      inspectGguf(p).catch((err: unknown) => ({ path: p, file: basename(p), problem: err instanceof Error ? err.message.replace(`GGUF model ${p}: `, '') : String(err) })),
    ),
  );
}

// ── the shared runtime ──────────────────────────────────────────────────────────────────────────────────────────────

/** Threads llama.cpp uses when not configured: all cores up to 4 (more rarely helps on CPU, and starves the server). */
export function defaultThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

let llamaPromise: Promise<Llama> | undefined;

/**
 * The process's one node-llama-cpp runtime: the prebuilt CPU binary of @node-llama-cpp/linux-x64, never a GPU build,
 * never a compile or download at run time.
 */
export function getLlamaRuntime(log?: { warn(obj: object, msg: string): void }): Promise<Llama> {
  llamaPromise ??= (async () => {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    return getLlama({
      gpu: false,
      build: 'never',
      progressLogs: false,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text && (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal || level === LlamaLogLevel.warn)) log?.warn({ llamaCpp: level }, text);
      },
    });
  })().catch((err: unknown) => {
    llamaPromise = undefined;
    throw new DocupodError(
      Problems.llmUnavailable,
      `node-llama-cpp has no usable CPU binary (${err instanceof Error ? err.message : String(err)}); install @node-llama-cpp/linux-x64 (npm ci installs it on linux x64)`,
      { retryable: false },
      { cause: err },
    );
  });
  return llamaPromise;
}

export interface ProbeResult {
  ok: boolean;
  /** Why not: the child's last error line and how it ended. */
  problem?: string;
  ms: number;
}

// The probe child: loads the model with the same runtime settings, creates a small context and evaluates a token, so
// what aborts in llama.cpp aborts there. Plain JS written to a temporary .mjs file, so it runs the same from dist/ and
// from the TS sources (not `node -e`: node-llama-cpp re-runs process.execArgv to test its binary).
const PROBE_SCRIPT = `
import { writeSync } from 'node:fs';
const { getLlama, LlamaLogLevel } = await import(process.env.DOCUPOD_PROBE_LIB);
// llama.cpp's own messages, written at once: an abort right after must not lose them.
const logger = (level, message) => writeSync(2, 'llama.cpp: ' + String(message).trim() + '\\n');
try {
  const llama = await getLlama({ gpu: false, build: 'never', progressLogs: false, logLevel: LlamaLogLevel.error, logger });
  const model = await llama.loadModel({ modelPath: process.env.DOCUPOD_PROBE_MODEL });
  const context = await model.createContext({ contextSize: Math.min(256, model.trainContextSize), sequences: 1, threads: 1 });
  const tokens = model.tokenize('hello');
  await context.getSequence().evaluateWithoutGeneratingNewTokens(tokens.length > 0 ? tokens.slice(0, 4) : [model.tokens.bos ?? 0]);
  writeSync(1, JSON.stringify({ ok: true, embedding: model.embeddingVectorSize }));
  process.exit(0);
} catch (err) {
  await new Promise((r) => setTimeout(r, 50));
  writeSync(2, 'probe: ' + (err && err.message ? err.message : String(err)) + '\\n');
  process.exit(1);
}
`;

let probeFile: Promise<string> | undefined;
function probeScriptFile(): Promise<string> {
  probeFile ??= (async () => {
    const file = join(tmpdir(), `docupod-gguf-probe-${createHash('sha1').update(PROBE_SCRIPT).digest('hex').slice(0, 12)}.mjs`);
    await writeFile(file, PROBE_SCRIPT);
    return file;
  })();
  return probeFile;
}

/** Loads the model in a child process; resolves with what happened (never throws for a bad model). */
export async function probeGgufInChild(modelPath: string, opts: { timeoutMs?: number } = {}): Promise<ProbeResult> {
  const t0 = performance.now();
  const lib = pathToFileURL(createRequire(import.meta.url).resolve('node-llama-cpp')).href;
  const script = await probeScriptFile();
  return new Promise((done) => {
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, DOCUPOD_PROBE_LIB: lib, DOCUPOD_PROBE_MODEL: resolve(modelPath), NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-8192)));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      done({ ok: false, problem: `could not start the probe process: ${e.message}`, ms: performance.now() - t0 });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      if (code === 0 && out.includes('"ok":true')) return done({ ok: true, ms });
      const lines = err.split('\n').map((l) => l.trim().replace(/^(llama\.cpp: |\[node-llama-cpp\] )/, '')).filter(Boolean);
      // The most specific line: llama.cpp's assertion or load error, else the probe's own error.
      const line =
        lines.find((l) => /GGML_ASSERT|error loading model/.test(l)) ??
        lines.find((l) => /error|failed/i.test(l) && !/failed to load model|^probe: /i.test(l)) ??
        lines.find((l) => l.startsWith('probe: ')) ??
        lines.at(-1) ??
        'no output';
      const how = signal === 'SIGKILL' && ms >= (opts.timeoutMs ?? 180_000) - 50 ? `timed out after ${Math.round(ms)} ms` : signal ? `killed by ${signal}` : code === 134 ? 'aborted (exit 134)' : `exit ${code}`;
      done({ ok: false, problem: `llama.cpp failed to load it in a probe process (${how}): ${line.replace(/^.*?llama\.cpp\/(src|ggml)\//, '').replace(/^llama_model_load: error loading model: /, '')}`, ms });
    });
  });
}

const probed = new Map<string, Promise<void>>();

/**
 * Checks the header, then probe-loads the file in a child process (once per file version: path, size, mtime), so a
 * file that would abort llama.cpp never reaches this process. Throws a DocupodError naming the file and the problem.
 */
export async function checkGgufBeforeLoad(modelPath: string, opts: { probe?: boolean; timeoutMs?: number } = {}): Promise<GgufSummary> {
  const summary = await inspectGguf(modelPath);
  if (opts.probe === false) return summary;
  const st = await stat(summary.path);
  const key = createHash('sha1').update(`${summary.path}\0${st.size}\0${st.mtimeMs}`).digest('hex');
  let p = probed.get(key);
  if (!p) {
    p = probeGgufInChild(summary.path, opts).then((r) => {
      if (!r.ok) throw invalid(summary.path, r.problem ?? 'the probe load failed');
    });
    // A failure is remembered too: the key changes when the file is replaced (size or mtime), and then it is probed anew.
    probed.set(key, p);
  }
  await p;
  return summary;
}
