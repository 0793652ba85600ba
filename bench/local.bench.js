// In-process llama.cpp (issue 9): docupod's llamacpp adapter (built dist/, LlamaCppLlm.stream) against calling
// node-llama-cpp directly (LlamaChat.generateResponse on its own context), on the tiny llama GGUF the tests write
// (test/fixtures/tiny-gguf.ts, transpiled on the fly; no download, no committed weights). Same prompt, temperature 0,
// same thread count; the tiny model never emits an end token, so every run generates exactly BENCH_TOKENS tokens.
//
// Prints, per side, the median over BENCH_REPEATS runs (alternating sides, so drifting machine load hits both alike) of
// the time per generated token after the first one, the added overhead in percent and the ratio (goal ≤ 5 %), and the
// process RSS before and with the model loaded. On the tiny model a token takes well under a millisecond of
// compute, so this is the adapter's per-token cost at its most visible; on a real model it vanishes in the noise.
// Knobs: BENCH_REPEATS (9), BENCH_TOKENS (300), BENCH_THREADS (1).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const num = (k, d) => (process.env[k] ? Number(process.env[k]) : d);
const REPEATS = num('BENCH_REPEATS', 9);
const TOKENS = num('BENCH_TOKENS', 300);
const THREADS = num('BENCH_THREADS', 1);
const MESSAGES = [{ role: 'user', content: 'hello world, tell me about the backup' }];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mb = (n) => `${(n / 1024 / 1024).toFixed(0)} MB`;

/** The test fixture, transpiled with the project's TypeScript (a devDependency, as benches are). */
async function tinyGgufWriter(dir) {
  const ts = (await import('typescript')).default;
  const src = readFileSync(path.join(root, 'test/fixtures/tiny-gguf.ts'), 'utf8');
  const out = path.join(dir, 'tiny-gguf.mjs');
  writeFileSync(out, ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);
  return import(pathToFileURL(out).href);
}

export async function run() {
  const dir = mkdtempSync(path.join(tmpdir(), 'docupod-bench-local-'));
  try {
    const { writeTinyGguf } = await tinyGgufWriter(dir);
    const modelPath = await writeTinyGguf(path.join(dir, 'tiny-llama.gguf'));
    const { LlamaCppLlm } = await import(pathToFileURL(path.join(root, 'dist/adapters/llm/llamacpp.js')).href);
    const { getLlama, LlamaChat, LlamaLogLevel } = await import('node-llama-cpp');

    const rssStart = process.memoryUsage().rss;
    // docupod: the adapter as the server builds it (file checked and probe-loaded in a child first).
    const llm = new LlamaCppLlm({ modelPath, threads: THREADS, contextTokens: 1024 });
    const tLoad = performance.now();
    await llm.load();
    const loadMs = performance.now() - tLoad;
    const rssLoaded = process.memoryUsage().rss;

    // node-llama-cpp directly: its own model and context, the same settings.
    const llama = await getLlama({ gpu: false, build: 'never', progressLogs: false, logLevel: LlamaLogLevel.warn });
    const model = await llama.loadModel({ modelPath });
    const context = await model.createContext({ contextSize: 1024, sequences: 1, threads: THREADS });
    const sequence = context.getSequence();

    const cpuMs = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    /** Wall and CPU ms per token after the first, and the text (both sides must generate the same). */
    const viaDocupod = async () => {
      let first;
      let cpu0;
      let n = 0;
      let text = '';
      for await (const ev of llm.stream({ messages: MESSAGES, temperature: 0, maxTokens: TOKENS })) {
        if (ev.type === 'token') {
          if (first === undefined) {
            first = performance.now();
            cpu0 = cpuMs();
          }
          text += ev.text;
        } else n = ev.usage.completionTokens;
      }
      return { perToken: (performance.now() - first) / (n - 1), cpuPerToken: (cpuMs() - cpu0) / (n - 1), n, text };
    };
    const direct = async () => {
      const chat = new LlamaChat({ contextSequence: sequence, autoDisposeSequence: false });
      let first;
      let cpu0;
      let n = 0;
      let text = '';
      await chat.generateResponse([{ type: 'user', text: MESSAGES[0].content }, { type: 'model', response: [] }], {
        temperature: 0,
        maxTokens: TOKENS,
        onToken: (t) => {
          if (first === undefined) {
            first = performance.now();
            cpu0 = cpuMs();
          }
          n += t.length;
        },
        onTextChunk: (t) => (text += t),
      });
      const perToken = (performance.now() - first) / (n - 1);
      const cpuPerToken = (cpuMs() - cpu0) / (n - 1);
      chat.dispose({ disposeSequence: false });
      await sequence.clearHistory();
      return { perToken, cpuPerToken, n, text };
    };

    // Warm-up (first evaluations allocate buffers), then alternate.
    await viaDocupod();
    await direct();
    const a = [];
    const b = [];
    const ac = [];
    const bc = [];
    for (let i = 0; i < REPEATS; i++) {
      let d;
      let r;
      if (i % 2 === 0) {
        d = await viaDocupod();
        r = await direct();
      } else {
        r = await direct();
        d = await viaDocupod();
      }
      if (d.n !== TOKENS || r.n !== TOKENS) throw new Error(`expected ${TOKENS} tokens each, got docupod ${d.n}, direct ${r.n}`);
      if (d.text !== r.text) throw new Error('docupod and node-llama-cpp generated different text at temperature 0');
      a.push(d.perToken);
      b.push(r.perToken);
      ac.push(d.cpuPerToken);
      bc.push(r.cpuPerToken);
    }
    const pct = (x, y) => (x / y - 1) * 100;
    const signed = (p) => `${p >= 0 ? '+' : ''}${p.toFixed(1)} %`;
    const us = (ms) => `${(ms * 1000).toFixed(0).padStart(6)} µs`;
    const [dw, rw, dc, rc] = [median(a), median(b), median(ac), median(bc)];
    console.log(`tiny llama GGUF (n_embd 64, 2 layers), ${TOKENS} tokens per run, ${THREADS} thread(s), ${REPEATS} runs per side (medians), load average ${loadavg()[0].toFixed(2)}`);
    console.log(`                              wall/token   CPU/token   tokens/s`);
    console.log(`  node-llama-cpp directly   ${us(rw)}   ${us(rc)}   ${(1000 / rw).toFixed(0).padStart(8)}`);
    console.log(`  docupod llamacpp adapter  ${us(dw)}   ${us(dc)}   ${(1000 / dw).toFixed(0).padStart(8)}`);
    console.log(`  added overhead per token: CPU ${signed(pct(dc, rc))} (ratio ${(dc / rc).toFixed(3)}), wall ${signed(pct(dw, rw))} (ratio ${(dw / rw).toFixed(3)}); goal ≤ 5 % (CPU): ${pct(dc, rc) <= 5 ? 'met' : 'NOT met'}`);
    console.log(`  runs, wall µs/token: docupod ${a.map((x) => (x * 1000).toFixed(0)).join(' ')} | direct ${b.map((x) => (x * 1000).toFixed(0)).join(' ')}`);
    console.log(`  (CPU time is this process's user+system time, so other load on a shared machine barely moves it; wall time does)`);
    console.log(`  RSS ${mb(rssStart)} before loading, ${mb(rssLoaded)} with the model loaded through docupod (load incl. header check and probe process: ${loadMs.toFixed(0)} ms)`);
    await context.dispose();
    await model.dispose();
    await llm.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
