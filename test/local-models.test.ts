// The in-process llama.cpp adapters (issue 9) on a tiny llama-architecture GGUF the test writes itself
// (fixtures/tiny-gguf.ts): deterministic generation, streaming through /v1/chat/completions with the official openai
// client, cancellation when the client goes away, GGUF embeddings, and malformed files that must not take the server
// down. llama.cpp runs with one thread: the CI box has two cores shared with other work.
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlamaCppEmbedder } from '../src/adapters/embed/llamacpp.js';
import { checkGgufBeforeLoad, inspectGguf, listGgufFiles, probeGgufInChild } from '../src/adapters/llm/gguf.js';
import { LlamaCppLlm } from '../src/adapters/llm/llamacpp.js';
import { complete, type Llm } from '../src/adapters/llm/llm.js';
import { DocupodError } from '../src/core/errors.js';
import { M } from '../src/modules/graph.js';
import { createKey, signup } from './fixtures/auth.js';
import { startTestServer, type TestServer } from './fixtures/server.js';
import { BIN } from './fixtures/child-server.js';
import { writeTinyGguf } from './fixtures/tiny-gguf.js';

const run = promisify(execFile);

let dir: string;
let good: string;
/** Passes the header check, refused by llama.cpp at load (probe results are cached per file, so tests share it). */
let wrongShape: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'docupod-gguf-'));
  good = await writeTinyGguf(join(dir, 'tiny-llama.gguf'));
  wrongShape = await writeTinyGguf(join(dir, 'shape.gguf'), { wrongShape: true });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const until = async (what: string, ok: () => boolean, ms = 20_000) => {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('llamacpp LLM adapter', () => {
  it('generates the same non-empty answer twice at temperature 0, with token usage', async () => {
    const llm = new LlamaCppLlm({ modelPath: good, threads: 1, contextTokens: 1024 });
    try {
      const ask = () => complete(llm, { messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello world' }], temperature: 0, maxTokens: 12 });
      const a = await ask();
      const b = await ask();
      expect(a.text.trim().length).toBeGreaterThan(0);
      expect(b.text).toBe(a.text);
      expect(a.finishReason).toBe('length');
      expect(a.usage.completionTokens).toBe(12);
      expect(a.usage.promptTokens).toBeGreaterThan(5);
      expect(a.model).toBe('tiny-llama');
      expect(llm.contextTokens).toBe(1024);
      expect(llm.stats()).toMatchObject({ loaded: true, active: 0, completed: 2, generatedTokens: 24 });
    } finally {
      await llm.close();
    }
  });

  it('shares one loaded model between concurrent answers and refuses beyond the queue limit', async () => {
    const llm = new LlamaCppLlm({ modelPath: good, threads: 1, contextTokens: 512, parallel: 2, maxQueue: 1, probe: false });
    try {
      await llm.load();
      const ask = (content: string) => complete(llm, { messages: [{ role: 'user', content }], temperature: 0, maxTokens: 8 });
      const settled = await Promise.allSettled([ask('hello'), ask('the cat'), ask('a mat'), ask('one two')]);
      const ok = settled.filter((s) => s.status === 'fulfilled');
      const refused = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
      // Two run at once on the context's two sequences, one waits, the fourth is over the queue limit.
      expect(ok).toHaveLength(3);
      expect(refused).toHaveLength(1);
      expect(refused[0]!.reason).toBeInstanceOf(DocupodError);
      expect((refused[0]!.reason as DocupodError).status).toBe(503);
      expect((refused[0]!.reason as DocupodError).message).toMatch(/busy.*DOCUPOD_LLM_PARALLEL/);
      // A sequence starts empty for every answer: the same question alone gives the same answer as in the crowd.
      const again = await ask('hello');
      expect(again.text).toBe((ok[0] as PromiseFulfilledResult<{ text: string }>).value.text);
    } finally {
      await llm.close();
    }
  });
});

describe('llamacpp embedder', () => {
  it('embeds with a GGUF embedding context: dimension = n_embd, deterministic, unit length', async () => {
    const path = await writeTinyGguf(join(dir, 'tiny-embed.gguf'), { nEmbd: 32, seed: 7, name: 'tiny-embed' });
    const embedder = new LlamaCppEmbedder({ modelPath: path, threads: 1, contextTokens: 256 });
    try {
      expect(embedder.id).toBe('llamacpp:tiny-embed');
      expect(await embedder.dimensions()).toBe(32);
      const [a, b, c] = await embedder.embed(['the cat sat on the mat', 'backup every night', 'the cat sat on the mat']);
      expect(a).toHaveLength(32);
      expect(c).toEqual(a);
      expect(b).not.toEqual(a);
      expect(Math.hypot(...a!)).toBeCloseTo(1, 5);
      expect(a!.every(Number.isFinite)).toBe(true);
      const [again] = await embedder.embed(['the cat sat on the mat']);
      expect(again).toEqual(a);
    } finally {
      await embedder.close();
    }
  });
});

describe('docupod models local', () => {
  it('lists the GGUF files of the model directory with architecture, size, context and quantisation (--json too)', async () => {
    const models = await mkdtemp(join(dir, 'models-'));
    await writeTinyGguf(join(models, 'qwen-tiny.gguf'), { name: 'Qwen Tiny' });
    await writeTinyGguf(join(models, 'sub', 'broken.gguf'), { omitKeys: ['llama.attention.head_count'] });
    const env = { PATH: process.env.PATH ?? '', DOCUPOD_LLAMACPP_MODELS_DIR: models };
    const json = JSON.parse((await run(process.execPath, [BIN, 'models', 'local', '--json'], { env })).stdout);
    expect(json.dir).toBe(models);
    expect(json.models).toEqual([
      expect.objectContaining({ file: 'qwen-tiny.gguf', name: 'Qwen Tiny', architecture: 'llama', contextLength: 1024, quantisation: 'F32', sizeBytes: expect.any(Number) }),
      expect.objectContaining({ file: 'broken.gguf', problem: expect.stringMatching(/llama\.attention\.head_count/) }),
    ]);
    const text = (await run(process.execPath, [BIN, 'models', 'local', '--dir', models], { env })).stdout;
    expect(text).toMatch(/qwen-tiny\.gguf\s+Qwen Tiny\s+llama\s+\d+\.\d KB\s+1024\s+F32/);
    expect(text).toMatch(/broken\.gguf\s+PROBLEM: missing required metadata llama\.attention\.head_count/);
  });
});

describe('GGUF files are checked before llama.cpp sees them', () => {
  it('reads the header: architecture, context, size, quantisation; lists a directory', async () => {
    const s = await inspectGguf(good);
    expect(s).toMatchObject({ architecture: 'llama', contextLength: 1024, embeddingLength: 64, blockCount: 2, quantisation: 'F32', chatTemplate: true, version: 3, name: 'tiny-llama' });
    expect(s.sizeBytes).toBeGreaterThan(100_000);
    const sub = await mkdtemp(join(dir, 'list-'));
    await writeTinyGguf(join(sub, 'a.gguf'));
    await writeTinyGguf(join(sub, 'b.gguf'), { omitKeys: ['llama.attention.head_count'] });
    const listed = await listGgufFiles(sub);
    expect(listed.map((m) => m.file)).toEqual(['a.gguf', 'b.gguf']);
    expect(listed[1]).toMatchObject({ problem: expect.stringMatching(/llama\.attention\.head_count/) });
  });

  it('names the file and the problem: bad magic, missing metadata, truncation', async () => {
    const cases: Array<[string, Parameters<typeof writeTinyGguf>[1], RegExp]> = [
      ['magic.gguf', { magic: 'GGML' }, /not a GGUF file/],
      ['no-ff.gguf', { omitKeys: ['llama.feed_forward_length'] }, /missing required metadata llama\.feed_forward_length/],
      ['cut.gguf', { truncateTo: 0.6 }, /truncated/],
    ];
    for (const [name, opts, problem] of cases) {
      const path = await writeTinyGguf(join(dir, name), opts);
      const err = await inspectGguf(path).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(DocupodError);
      expect((err as Error).message).toContain(path);
      expect((err as Error).message).toMatch(problem);
    }
  });

  it('probe-loads a file in a child process, where a llama.cpp abort (GGML_ASSERT, exit 134) stays', async () => {
    // Past the header check (it would refuse this file), straight to llama.cpp: it aborts the probe process only.
    const path = await writeTinyGguf(join(dir, 'abort.gguf'), { omitKeys: ['llama.feed_forward_length'] });
    const r = await probeGgufInChild(path);
    expect(r.ok).toBe(false);
    expect(r.problem).toMatch(/aborted \(exit 134\)|SIGABRT/);
    expect(r.problem).toMatch(/GGML_ASSERT|feed_forward|n_ff/);
    const err = await checkGgufBeforeLoad(wrongShape).catch((e: unknown) => e);
    expect((err as Error).message).toContain(wrongShape);
    expect((err as Error).message).toMatch(/probe process.*blk\.0\.ffn_gate\.weight/);
  });
});

describe('a docupod server with DOCUPOD_LLM_PROVIDER=llamacpp', () => {
  let s: TestServer;
  let client: OpenAI;
  let base: string;
  let key: string;
  beforeAll(async () => {
    const embedModel = await writeTinyGguf(join(dir, 'server-embed.gguf'), { nEmbd: 32, seed: 3 });
    s = await startTestServer({
      env: {
        DOCUPOD_LLM_PROVIDER: 'llamacpp',
        DOCUPOD_LLM_MODEL: good,
        DOCUPOD_LLM_CONTEXT_TOKENS: '1024',
        DOCUPOD_EMBED_PROVIDER: 'llamacpp',
        DOCUPOD_EMBED_MODEL: embedModel,
        DOCUPOD_LLAMACPP_THREADS: '1',
      },
    });
    const owner = await signup(s.app, 'owner@example.com');
    key = (await createKey(s.app, owner, { name: 'sdk' })).key;
    await s.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}/v1`;
    client = new OpenAI({ apiKey: key, baseURL: base, maxRetries: 0 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('streams an answer through /v1/chat/completions to the official openai client', async () => {
    const ask = async () => {
      const stream = await client.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: 'hello world' }], stream: true, temperature: 0, max_tokens: 10, stream_options: { include_usage: true } });
      const chunks: string[] = [];
      let usage: OpenAI.CompletionUsage | null | undefined;
      let finish: string | null | undefined;
      for await (const c of stream) {
        if (c.choices[0]?.delta.content) chunks.push(c.choices[0].delta.content);
        finish = c.choices[0]?.finish_reason ?? finish;
        if (c.usage) usage = c.usage;
      }
      return { chunks, usage, finish };
    };
    const a = await ask();
    expect(a.chunks.length).toBeGreaterThan(1);
    expect(a.chunks.join('').trim().length).toBeGreaterThan(0);
    expect(a.finish).toBe('length');
    expect(a.usage!.completion_tokens).toBe(10);
    expect((await ask()).chunks.join('')).toBe(a.chunks.join(''));
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toContain('tiny-llama');
    expect((await s.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    // Time to first token and tokens/s, by provider, as for every other LLM.
    const metrics = (await s.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/docupod_llm_time_to_first_token_seconds_count\{[^}]*provider="llamacpp"[^}]*\} 2/);
    expect(metrics).toMatch(/docupod_llm_tokens_per_second_count\{[^}]*provider="llamacpp"[^}]*\} 2/);
  });

  it('embeds through /v1/embeddings with the GGUF embedding model', async () => {
    const r = await client.embeddings.create({ model: 'server-embed', input: ['the cat sat', 'backup every night'] });
    expect(r.data.map((d) => d.embedding.length)).toEqual([32, 32]);
    expect(r.data[0]!.embedding).not.toEqual(r.data[1]!.embedding);
  });

  it('stops generating when the client disconnects mid-stream', async () => {
    const llm = s.runtime.get<Llm>(M.llm) as LlamaCppLlm;
    const before = llm.stats();
    const ac = new AbortController();
    const stream = await client.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: 'tell me a long story' }], stream: true, temperature: 0, max_tokens: 900 }, { signal: ac.signal });
    let got = 0;
    try {
      for await (const c of stream) {
        if (c.choices[0]?.delta.content && ++got === 3) ac.abort();
      }
    } catch {
      // the client's own abort
    }
    expect(got).toBe(3);
    await until('the generation to stop', () => llm.stats().active === 0);
    const after = llm.stats();
    expect(after.cancelled).toBe(before.cancelled + 1);
    const generated = after.generatedTokens - before.generatedTokens;
    expect(generated).toBeGreaterThanOrEqual(3);
    expect(generated).toBeLessThan(900);
    // Nothing runs on after the stop.
    await new Promise((r) => setTimeout(r, 200));
    expect(llm.stats().generatedTokens).toBe(after.generatedTokens);
  });
});

describe('a malformed GGUF does not take the server down', () => {
  for (const [what, problem] of [
    ['missing llama.feed_forward_length', /missing required metadata llama\.feed_forward_length/],
    ['a tensor of the wrong shape (refused by llama.cpp in the probe process)', /probe process.*blk\.0\.ffn_gate\.weight.*wrong shape/],
  ] as const) {
    it(`answers 503 naming the file and the problem, and keeps serving: ${what}`, async () => {
      const bad = what.startsWith('missing') ? await writeTinyGguf(join(dir, 'no-ff-server.gguf'), { omitKeys: ['llama.feed_forward_length'] }) : wrongShape;
      const s = await startTestServer({ env: { DOCUPOD_LLM_PROVIDER: 'llamacpp', DOCUPOD_LLM_MODEL: bad, DOCUPOD_LLAMACPP_THREADS: '1' } });
      try {
        const owner = await signup(s.app, 'owner@example.com');
        const { key } = await createKey(s.app, owner, { name: 'sdk' });
        const res = await s.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { authorization: `Bearer ${key}` }, payload: { model: 'bad', messages: [{ role: 'user', content: 'hi' }] } });
        expect(res.statusCode).toBe(503);
        const message = res.json().error?.message ?? res.json().detail;
        expect(message).toContain(bad);
        expect(message).toMatch(problem);
        expect((await s.app.inject({ url: '/healthz' })).statusCode).toBe(200);
        const ready = await s.app.inject({ url: '/readyz' });
        expect(ready.statusCode).toBe(503);
        expect(ready.body).toContain(bad);
      } finally {
        await s.close();
      }
    });
  }
});
