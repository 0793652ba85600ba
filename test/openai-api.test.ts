import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, createKey, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { startFakeOpenAi, type FakeOpenAi } from './fixtures/fake-openai.js';
import { uploadIndexed } from './fixtures/documents.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

const seed = (srv: TestServer, who: Session, slug: string) => uploadIndexed(srv, who, slug, 'backup.md', '# Backup guide\n\n## Nightly dumps\n\nRun pg_dump every night and keep the archives for thirty days. The retention window is configured in backup.conf.\n');

// docupod's /v1 API through the official openai client: models, chat completions (grounded docupod:{workspace} and
// pass-through, stream and non-stream, with usage), embeddings, and OpenAI-shaped errors.

let s: TestServer;
let fake: FakeOpenAi;
let owner: Session;
let ws: { id: string; slug: string };
let key: string;
let client: OpenAI;
let base: string;

beforeAll(async () => {
  fake = await startFakeOpenAi({ chatModels: ['gpt-test'], reply: (messages) => (messages[0]!.content.includes('standalone') ? 'backup retention' : 'Archives are kept for thirty days [1].') });
  s = await startTestServer({
    env: {
      DOCUPOD_LLM_PROVIDER: 'openai',
      DOCUPOD_LLM_BASE_URL: `${fake.url}/v1`,
      DOCUPOD_LLM_MODEL: 'gpt-test',
      DOCUPOD_EMBED_PROVIDER: 'openai',
      DOCUPOD_EMBED_BASE_URL: `${fake.url}/v1`,
      DOCUPOD_EMBED_MODEL: 'text-embedding-3-small',
    },
  });
  owner = await signup(s.app, 'owner@example.com');
  ws = await createWorkspace(s.app, owner, 'Ops');
  await seed(s, owner, ws.slug);
  key = (await createKey(s.app, owner, { name: 'sdk' })).key;
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}/v1`;
  client = new OpenAI({ apiKey: key, baseURL: base, maxRetries: 0 });
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
});

describe('OpenAI-compatible API with the official client', () => {
  it('lists docupod:{workspace} models and the configured LLM’s models', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toContain(`docupod:${ws.slug}`);
    expect(ids).toContain('gpt-test');
  });

  it('answers from a workspace with usage and citations (non-stream)', async () => {
    const r = await client.chat.completions.create({ model: `docupod:${ws.slug}`, messages: [{ role: 'user', content: 'How long are nightly dumps kept?' }] });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0]!.message.content).toBe('Archives are kept for thirty days [1].');
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(r.usage!.total_tokens).toBeGreaterThan(0);
    const citations = (r as unknown as { citations: Array<{ source: string; quote: string }> }).citations;
    expect(citations[0]!.source).toBe('backup.md');
    expect(fake.chatRequests().at(-1)!.body.messages[0]!.content).toMatch(/\[1\] backup\.md/);
  });

  it('streams a workspace answer with a final usage chunk', async () => {
    const stream = await client.chat.completions.create({ model: `docupod:${ws.slug}`, messages: [{ role: 'user', content: 'How long are nightly dumps kept?' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe('Archives are kept for thirty days [1].');
    expect(finish).toBe('stop');
    expect(usage!.completion_tokens).toBe(7);
  });

  it('passes other model names through to the configured LLM, stream and non-stream', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 50 });
    expect(r.choices[0]!.message.content).toBe('Archives are kept for thirty days [1].');
    expect(fake.chatRequests().at(-1)!.body).toMatchObject({ model: 'gpt-test', max_tokens: 50, messages: [{ role: 'user', content: 'hello there' }] });
    const chunks = [];
    for await (const c of await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], stream: true })) chunks.push(c.choices[0]?.delta.content ?? '');
    expect(chunks.join('')).toBe('Archives are kept for thirty days [1].');
  });

  it('embeds with the configured embedding model', async () => {
    const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['backup', 'restore'] });
    expect(r.data).toHaveLength(2);
    expect(r.data[0]!.embedding).toHaveLength(8);
    const b64 = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'backup', encoding_format: 'base64' });
    expect(Buffer.from(b64.data[0]!.embedding as unknown as string, 'base64').byteLength).toBe(8 * 4);
  });

  it('answers errors in OpenAI’s shape: bad key, unknown workspace, invalid body, upstream failure, rate limit', async () => {
    const bad = new OpenAI({ apiKey: 'dp_nope', baseURL: base, maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const nf = await client.chat.completions.create({ model: 'docupod:nowhere', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(nf).toBeInstanceOf(OpenAI.NotFoundError);
    expect((nf as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    const raw = await s.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { authorization: `Bearer ${key}` }, payload: { model: 'gpt-test', messages: [] } });
    expect(raw.statusCode).toBe(400);
    expect(raw.json().error).toMatchObject({ type: 'invalid_request_error' });
    expect(raw.json().error.message).toMatch(/messages/);

    fake.fail('POST', '/v1/chat/completions', { status: 400, body: { error: { message: 'context too long' } } });
    const up = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(up).toBeInstanceOf(OpenAI.BadRequestError);
    expect((up as Error).message).toMatch(/context too long/);

    const k = await createKey(s.app, owner, { name: 'limited' });
    expect((await as(s.app, owner)({ method: 'PUT', url: `/api/quotas/keys/${k.id}`, payload: { requestsPerMinute: 1 } })).statusCode).toBe(200);
    const limited = new OpenAI({ apiKey: k.key, baseURL: base, maxRetries: 0 });
    await limited.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'x' }] });
    const rl = await limited.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'x' }], stream: true }).catch((e: unknown) => e);
    expect(rl).toBeInstanceOf(OpenAI.RateLimitError);
    expect(Number((rl as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after'))).toBeGreaterThan(0);
  });

  it('keeps a key scoped to another workspace away from docupod:{workspace}', async () => {
    const other = await createWorkspace(s.app, owner, 'Other');
    const scoped = new OpenAI({ apiKey: (await createKey(s.app, owner, { name: 'scoped', workspaces: [other.slug] })).key, baseURL: base, maxRetries: 0 });
    const ids = [];
    for await (const m of scoped.models.list()) ids.push(m.id);
    expect(ids).toContain(`docupod:${other.slug}`);
    expect(ids).not.toContain(`docupod:${ws.slug}`);
    await expect(scoped.chat.completions.create({ model: `docupod:${ws.slug}`, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});
