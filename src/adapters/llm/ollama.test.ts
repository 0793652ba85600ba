import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOllama, type FakeOllama } from '../../../test/fixtures/fake-ollama.js';
import { DocupodError } from '../../core/errors.js';
import { complete } from './llm.js';
import { OllamaLlm, type PullProgress } from './ollama.js';

let fake: FakeOllama;
beforeAll(async () => {
  fake = await startFakeOllama({ models: ['llama3.2'], reply: () => 'Restore with psql from the dump [2].' });
});
afterAll(async () => fake?.close());

const llm = (model = 'llama3.2', extra: object = {}) => new OllamaLlm({ baseUrl: fake.url, model, retryBaseMs: 5, ...extra });
const ask = [{ role: 'user' as const, content: 'How do I restore?' }];

describe('ollama LLM adapter', () => {
  it('streams /api/chat NDJSON and takes token counts from the final line', async () => {
    const tokens: string[] = [];
    let done: unknown;
    for await (const e of llm().stream({ messages: ask, maxTokens: 100, temperature: 0.1 })) {
      if (e.type === 'token') tokens.push(e.text);
      else done = e;
    }
    expect(tokens.join('')).toBe('Restore with psql from the dump [2].');
    expect(done).toEqual({ type: 'done', finishReason: 'stop', model: 'llama3.2', usage: { promptTokens: 8, completionTokens: 7, totalTokens: 15 } });
    expect(fake.chatRequests().at(-1)!.body).toMatchObject({ model: 'llama3.2', stream: true, options: { num_predict: 100, temperature: 0.1, num_ctx: 4096 } });
  });

  it('says to pull a model Ollama does not have', async () => {
    const err = (await complete(llm('mistral'), { messages: ask }).catch((e: unknown) => e)) as DocupodError;
    expect(err).toBeInstanceOf(DocupodError);
    expect(err.message).toMatch(/not found.*ollama pull mistral/);
  });

  it('retries a refused connection, fails cleanly on a drop mid-stream and on silence', async () => {
    fake.fail('POST', '/api/chat', { drop: 'before-headers' });
    expect((await complete(llm(), { messages: ask })).text).toContain('psql');

    fake.fail('POST', '/api/chat', { stream: 'drop', afterTokens: 2 });
    const dropped = (await complete(llm(), { messages: ask }).catch((e: unknown) => e)) as DocupodError;
    expect(dropped.status).toBe(503);
    expect(dropped.message).toMatch(/broke off mid-answer|before the answer ended/);

    fake.fail('POST', '/api/chat', { stream: 'stall', afterTokens: 1 });
    const silent = (await complete(llm('llama3.2', { idleTimeoutMs: 100 }), { messages: ask }).catch((e: unknown) => e)) as DocupodError;
    expect(silent.status).toBe(504);
  });

  it('passes an error line from Ollama through', async () => {
    fake.route('POST', '/api/chat', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end('{"model":"llama3.2","message":{"content":"Hi"},"done":false}\n{"error":"model runner has unexpectedly stopped"}\n');
    });
    try {
      const err = (await complete(llm(), { messages: ask }).catch((e: unknown) => e)) as DocupodError;
      expect(err.message).toMatch(/unexpectedly stopped/);
    } finally {
      fake.route('POST', '/api/chat', (req, res) => (fake as unknown as { chat: (a: unknown, b: unknown) => Promise<void> }).chat(req, res));
    }
  });

  it('lists models from /api/tags and pulls a missing one with progress', async () => {
    expect(await llm().listModels()).toEqual(['llama3.2:latest']);
    expect(await llm('qwen2.5:0.5b').hasModel()).toBe(false);
    const progress: PullProgress[] = [];
    await llm('qwen2.5:0.5b').pull(undefined, (p) => progress.push(p));
    expect(progress.map((p) => p.status)).toContain('success');
    expect(progress.some((p) => p.total === 2_000_000 && p.completed === 1_000_000)).toBe(true);
    expect(await llm('qwen2.5:0.5b').hasModel()).toBe(true);
    await expect(llm('missing-model').pull()).rejects.toThrow(/file does not exist/);
    expect(await llm().ready()).toBe(true);
  });
});
