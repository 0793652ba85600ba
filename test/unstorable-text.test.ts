import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocupodError } from '../src/core/errors.js';
import { unstorableTextReason } from '../src/core/storable-text.js';
import { M } from '../src/modules/graph.js';
import type { IngestClient } from '../src/roles/ingest/contract.js';
import { as, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { backends } from './fixtures/database.js';
import { makePdf } from './fixtures/ingest/pdf.js';
import { multipart } from './fixtures/multipart.js';
import { startFakeOpenAi, type FakeOpenAi } from './fixtures/fake-openai.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// Text Postgres cannot store (NUL; lone UTF-16 surrogates, which the drivers mangle in text and jsonb refuses) is
// bad input wherever a user sends it: a 400 problem+json naming the field, never a failed query (a 500). Text that
// comes out of a parsed file is cleaned instead, so the file still indexes.

const NUL = 'a\u0000b';
const LONE = 'x\ud800y';
/** A JSON body as the client sends it: JSON.stringify writes a lone surrogate as the escape \ud800. */
const json = (body: unknown): Pick<InjectOptions, 'payload' | 'headers'> => ({ payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

describe.each(backends())('text Postgres cannot store (%s)', (backend) => {
  let s: TestServer;
  let owner: Session;
  let ws: { id: string; slug: string };
  let chatId: string;

  beforeAll(async () => {
    s = await startTestServer({ backend });
    owner = await signup(s.app, 'owner@example.com');
    ws = await createWorkspace(s.app, owner, 'Text');
    chatId = (await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats`, payload: {} })).json().id;
  });
  afterAll(async () => s?.close());

  async function expectRejected(opts: InjectOptions, path: string, what: RegExp, who: Session | null = owner) {
    const res = who ? await as(s.app, who)(opts) : await s.app.inject(opts);
    expect(res.statusCode, res.body).toBe(400);
    expect(String(res.headers['content-type'])).toContain('application/problem+json');
    const body = res.json();
    expect(body.type).toBe('/problems/validation');
    expect(body.errors).toContainEqual({ path, message: expect.stringMatching(what) });
    expect(body.detail).toContain(path);
  }

  it('refuses NUL in sign-up fields, naming the field, and creates no account', async () => {
    await expectRejected({ method: 'POST', url: '/api/auth/signup', ...json({ email: 'nul@example.com', password: 'long enough password', name: NUL }) }, 'body.name', /NUL/, null);
    await expectRejected({ method: 'POST', url: '/api/auth/signup', ...json({ email: 'nul@example.com', password: `pass${NUL}word` }) }, 'body.password', /NUL/, null);
    const login = await s.app.inject({ method: 'POST', url: '/api/auth/login', ...json({ email: 'nul@example.com', password: 'long enough password' }) });
    expect(login.statusCode).toBe(401);
  });

  it('refuses a lone surrogate in a workspace name or description and leaves the workspace as it was', async () => {
    await expectRejected({ method: 'POST', url: '/api/workspaces', ...json({ name: LONE }) }, 'body.name', /unpaired UTF-16 surrogate/);
    await expectRejected({ method: 'PATCH', url: `/api/workspaces/${ws.slug}`, ...json({ description: `\udc00${LONE}` }) }, 'body.description', /surrogate .* at position 0/);
    const now = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}` })).json();
    expect(now).toMatchObject({ name: 'Text', description: '' });
    expect((await as(s.app, owner)({ url: '/api/workspaces' })).json()).toHaveLength(1);
  });

  it('refuses such text in search queries, chat titles and messages, feedback and settings', async () => {
    await expectRejected({ method: 'POST', url: `/api/workspaces/${ws.slug}/search`, ...json({ query: NUL }) }, 'body.query', /NUL/);
    await expectRejected({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats`, ...json({ title: LONE }) }, 'body.title', /surrogate/);
    await expectRejected({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${chatId}/messages`, ...json({ content: `what is ${NUL}?` }) }, 'body.content', /NUL/);
    await expectRejected({ method: 'PUT', url: `/api/workspaces/${ws.slug}/chat-settings`, ...json({ systemPrompt: LONE }) }, 'body.systemPrompt', /surrogate/);
    await expectRejected({ method: 'POST', url: '/api/keys', ...json({ name: NUL }) }, 'body.name', /NUL/);
  });

  it('refuses it in the query string and in path parameters, keys included', async () => {
    await expectRejected({ url: `/api/workspaces/${ws.slug}/documents?state=%00` }, 'querystring.state', /NUL/);
    await expectRejected({ url: `/api/workspaces/${ws.slug}/chats?a%00=1` }, 'querystring.a', /the key contains a NUL/);
    // The workspace is looked up from the path before any schema runs: this one used to reach the database.
    await expectRejected({ url: '/api/workspaces/a%00b/stats' }, 'params.ws', /NUL/);
  });

  it('answers a path that is not valid UTF-8 (an encoded lone surrogate) with problem+json too', async () => {
    const res = await as(s.app, owner)({ url: '/api/workspaces/%ED%A0%80/stats' });
    expect(res.statusCode).toBe(400);
    expect(String(res.headers['content-type'])).toContain('application/problem+json');
    expect(res.json().detail).toMatch(/not valid percent-encoded UTF-8/);
  });

  it('refuses such a multipart file name and stores nothing from the upload', async () => {
    const upload = await multipart([
      { name: 'fine.md', content: '# Fine\n\nA good file.\n' },
      { name: `bad${NUL}.md`, content: '# Bad\n\nIts name has a NUL.\n' },
    ]);
    await expectRejected({ method: 'POST', url: `/api/workspaces/${ws.slug}/documents`, ...upload }, 'body.file.filename', /NUL/);
    const stats = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/stats` })).json();
    expect(stats.storedBytes ?? 0).toBe(0);
    expect((await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents` })).json().total).toBe(0);
  });

  it('answers the OpenAI-compatible API in its own error shape, naming the field as `param`', async () => {
    const res = await as(s.app, owner)({ method: 'POST', url: '/v1/chat/completions', ...json({ model: `docupod:${ws.slug}`, messages: [{ role: 'user', content: NUL }] }) });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().error).toMatchObject({ type: 'invalid_request_error', param: 'messages.0.content' });
  });

  it('refuses it in a call through a role contract (the in-process form a CLI or another role uses)', async () => {
    const ingest = s.runtime.get<IngestClient>(M.ingestClient);
    const err = await ingest
      .submit({ workspaceId: ws.id, userId: owner.userId, files: [{ source: `guide${NUL}.md`, blobKey: `${ws.id}/x`, sizeBytes: 1, contentHash: 'a'.repeat(64) }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DocupodError);
    expect((err as DocupodError).status).toBe(400);
    expect((err as DocupodError).extra.errors).toContainEqual({ path: 'body.files.0.source', message: expect.stringMatching(/NUL/) });
  });

  it('cleans such text out of parsed files, which then index and are found', async () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Zebras graze\u0000 at dusk.\n\nGiraffes \ud800browse the acacia.\n', 'utf16le')]);
    const pastSniff = `${'Filler line for the binary sniff.\n'.repeat(300)}\nOkapis hide\u0000 in the rainforest.\n`;
    const pdf = makePdf([{ paragraphs: ['Pangolins roll into a ball.'] }], { title: 'Scaly\u0000mammals' });
    const res = await as(s.app, owner)({
      method: 'POST',
      url: `/api/workspaces/${ws.slug}/documents`,
      ...(await multipart([
        { name: 'utf16.txt', content: utf16 },
        { name: 'long.txt', content: pastSniff },
        { name: 'scaly.pdf', content: pdf },
      ])),
    });
    expect(res.statusCode, res.body).toBe(202);
    const ids = (res.json().documents as Array<{ id: string }>).map((d) => d.id);
    const docs = await Promise.all(ids.map((id) => waitForDocument(id)));
    for (const d of docs) expect(d, JSON.stringify(d)).toMatchObject({ state: 'indexed', error: null });
    expect(docs[2]!.title).toBe('Scalymammals');
    for (const [query, source] of [['zebras dusk', 'utf16.txt'], ['giraffes acacia', 'utf16.txt'], ['okapis rainforest', 'long.txt'], ['pangolins', 'scaly.pdf']] as const) {
      const hits = (await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/search`, ...json({ query }) })).json().results as Array<{ source: string; text: string }>;
      expect(hits[0]?.source, query).toBe(source);
      expect(unstorableTextReason(hits[0]!.text)).toBeUndefined();
    }
  });

  async function waitForDocument(id: string): Promise<{ state: string; error: string | null; title: string | null }> {
    for (let i = 0; i < 400; i++) {
      const doc = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents/${id}` })).json();
      if (doc.state === 'indexed' || doc.state === 'failed') return doc;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`document ${id} never finished`);
  }
});

describe('text a model writes', () => {
  let fake: FakeOpenAi;
  let s: TestServer;
  afterAll(async () => {
    await s?.close();
    await fake?.close();
  });

  it('is cleaned, not refused: an answer with a NUL is saved without it, and a chat title never ends in half an emoji', async () => {
    fake = await startFakeOpenAi({ reply: () => 'Zebras graze\u0000 at dusk [1].' });
    s = await startTestServer({ env: { DOCUPOD_LLM_PROVIDER: 'openai', DOCUPOD_LLM_BASE_URL: `${fake.url}/v1`, DOCUPOD_LLM_MODEL: 'gpt-test', DOCUPOD_LLM_MAX_RETRIES: '0' } });
    const owner = await signup(s.app, 'model@example.com');
    const ws = await createWorkspace(s.app, owner, 'Model');
    const req = as(s.app, owner);
    const up = await req({ method: 'POST', url: `/api/workspaces/${ws.slug}/documents`, ...(await multipart([{ name: 'zebras.md', content: '# Zebras\n\nZebras graze at dusk on the savanna.\n' }])) });
    const docId = up.json().documents[0].id as string;
    for (let i = 0; i < 400 && (await req({ url: `/api/workspaces/${ws.slug}/documents/${docId}` })).json().state !== 'indexed'; i++) await new Promise((r) => setTimeout(r, 50));
    const chatId = (await req({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats`, payload: {} })).json().id as string;
    const question = `${'When do zebras graze '.repeat(4).slice(0, 79)}😀?`;
    const res = await req({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${chatId}/messages`, payload: { content: question } });
    expect(res.statusCode, res.body).toBe(200);
    const chat = (await req({ url: `/api/workspaces/${ws.slug}/chats/${chatId}` })).json() as { title: string; messages: Array<{ role: string; content: string }> };
    expect(chat.messages.find((m) => m.role === 'assistant')?.content).toBe('Zebras graze at dusk [1].');
    expect(chat.title).toBe(question.slice(0, 79));
  });
});
