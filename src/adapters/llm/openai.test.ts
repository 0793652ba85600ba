import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAi, type FakeOpenAi } from '../../../test/fixtures/fake-openai.js';
import { DocupodError } from '../../core/errors.js';
import { complete, type LlmEvent } from './llm.js';
import { OpenAiLlm } from './openai.js';

let fake: FakeOpenAi;
beforeAll(async () => {
  fake = await startFakeOpenAi({ apiKey: 'sk-test', reply: () => 'Backups are kept for thirty days [1].' });
});
afterAll(async () => fake?.close());

const llm = (extra: Partial<ConstructorParameters<typeof OpenAiLlm>[0]> = {}) =>
  new OpenAiLlm({ baseUrl: `${fake.url}/v1`, model: 'gpt-test', apiKey: 'sk-test', retryBaseMs: 5, ...extra });
const ask = [{ role: 'user' as const, content: 'How long are backups kept?' }];

async function collect(it: AsyncIterable<LlmEvent>) {
  const events: LlmEvent[] = [];
  for await (const e of it) events.push(e);
  return events;
}

describe('openai-compatible LLM adapter', () => {
  it('streams tokens over SSE and ends with the usage the server reported', async () => {
    const events = await collect(llm().stream({ messages: ask }));
    const tokens = events.filter((e) => e.type === 'token').map((e) => (e as { text: string }).text);
    expect(tokens.length).toBeGreaterThan(3);
    expect(tokens.join('')).toBe('Backups are kept for thirty days [1].');
    expect(events.at(-1)).toEqual({ type: 'done', finishReason: 'stop', model: 'gpt-test', usage: { promptTokens: 9, completionTokens: 7, totalTokens: 16 } });
    const sent = fake.chatRequests().at(-1)!;
    expect(sent.body).toMatchObject({ model: 'gpt-test', stream: true, stream_options: { include_usage: true }, messages: ask });
    expect(sent.headers.authorization).toBe('Bearer sk-test');
  });

  it('reports finish_reason length when max_tokens cuts the answer', async () => {
    const c = await complete(llm(), { messages: ask, maxTokens: 2 });
    expect(c).toMatchObject({ text: 'Backups are', finishReason: 'length', usage: { completionTokens: 2 } });
  });

  it('retries connection errors and 5xx before the stream starts', async () => {
    fake.fail('POST', '/v1/chat/completions', { drop: 'before-headers' }, { status: 503, body: { error: { message: 'overloaded' } } });
    const c = await complete(llm(), { messages: ask });
    expect(c.text).toContain('thirty days');
  });

  it('fails with the upstream message on a 4xx, without retrying', async () => {
    const before = fake.chatRequests().length;
    const err = await complete(llm({ model: 'no-such-model' }), { messages: ask }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DocupodError);
    expect((err as DocupodError).message).toMatch(/does not exist.*DOCUPOD_LLM_MODEL/);
    expect(fake.chatRequests().length - before).toBe(1);
    const auth = await complete(llm({ apiKey: 'wrong' }), { messages: ask }).catch((e: unknown) => e);
    expect((auth as DocupodError).message).toMatch(/refused our key \(401\).*DOCUPOD_LLM_API_KEY/);
  });

  it('gives up after the retries with the last upstream error', async () => {
    fake.fail('POST', '/v1/chat/completions', ...Array.from({ length: 3 }, () => ({ status: 500, body: { error: { message: 'boom' } } })));
    const err = (await complete(llm(), { messages: ask }).catch((e: unknown) => e)) as DocupodError;
    expect(err.status).toBe(503);
    expect(err.message).toMatch(/answered 500: boom \(gave up after 3 attempts\)/);
  });

  it('times out when the server does not answer, and when it goes silent mid-answer', async () => {
    fake.fail('POST', '/v1/chat/completions', { delayMs: 5_000 });
    const slow = (await complete(llm({ timeoutMs: 100, maxRetries: 0 }), { messages: ask }).catch((e: unknown) => e)) as DocupodError;
    expect(slow.status).toBe(504);
    expect(slow.message).toMatch(/did not answer within 100 ms/);

    fake.fail('POST', '/v1/chat/completions', { stream: 'stall', afterTokens: 2 });
    const tokens: string[] = [];
    const stalled = await (async () => {
      for await (const e of llm({ idleTimeoutMs: 150 }).stream({ messages: ask })) if (e.type === 'token') tokens.push(e.text);
    })().catch((e: unknown) => e);
    expect(tokens.join('')).toBe('Backups are');
    expect((stalled as DocupodError).status).toBe(504);
    expect((stalled as DocupodError).message).toMatch(/went silent/);
  });

  it('fails cleanly when the connection drops mid-stream, after the tokens already sent', async () => {
    fake.fail('POST', '/v1/chat/completions', { stream: 'drop', afterTokens: 3 });
    const tokens: string[] = [];
    const err = await (async () => {
      for await (const e of llm().stream({ messages: ask })) if (e.type === 'token') tokens.push(e.text);
    })().catch((e: unknown) => e);
    expect(tokens.join('')).toBe('Backups are kept');
    expect(err).toBeInstanceOf(DocupodError);
    expect((err as DocupodError).message).toMatch(/broke off mid-answer|before the answer ended/);
  });

  it('cancels the upstream request when the caller aborts', async () => {
    const slowFake = await startFakeOpenAi({ tokenDelayMs: 30, reply: () => 'one two three four five six seven eight nine ten' });
    try {
      const ac = new AbortController();
      const it = new OpenAiLlm({ baseUrl: `${slowFake.url}/v1`, model: 'gpt-test' }).stream({ messages: ask, signal: ac.signal });
      const got: string[] = [];
      const err = await (async () => {
        for await (const e of it) {
          if (e.type === 'token') got.push(e.text);
          if (got.length === 2) ac.abort(new Error('client went away'));
        }
      })().catch((e: unknown) => e);
      expect((err as Error).message).toBe('client went away');
      await new Promise((r) => setTimeout(r, 100));
      expect(slowFake.cancelledStreams).toHaveLength(1);
    } finally {
      await slowFake.close();
    }
  });

  it('lists the server’s models and reports readiness', async () => {
    expect(await llm().listModels()).toContain('text-embedding-3-small');
    expect(await llm().ready()).toBe(true);
    expect(await new OpenAiLlm({ baseUrl: 'http://127.0.0.1:1/v1', model: 'x' }).ready()).toMatch(/does not answer/);
  });
});
