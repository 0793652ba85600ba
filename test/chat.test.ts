import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, createKey, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { startFakeOpenAi, type FakeOpenAi } from './fixtures/fake-openai.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// The chat API end to end on the whole product: upload, index, ask (JSON and SSE), follow-ups, "the documents don't
// say", feedback, export, system prompt, quotas; then the same against an OpenAI-compatible fake model, including a
// stream that breaks mid-answer and a client that disconnects.

const GUIDE = `# Backup guide

## Nightly dumps

Run pg_dump every night and keep the archives for thirty days. The retention window is configured in backup.conf.

## Restoring

To restore, create an empty database and feed the dump to psql. Test restores monthly.
`;
const FAQ = `# Cluster FAQ

## Scaling

The ingest workers scale horizontally; each one claims jobs with a lease.

## Storage

Originals are kept in the blob store until the document is deleted.
`;

async function multipart(files: Array<{ name: string; content: string }>) {
  const form = new FormData();
  for (const f of files) form.append('file', new Blob([f.content]), f.name);
  const req = new Request('http://x/', { method: 'POST', body: form });
  return { payload: Buffer.from(await req.arrayBuffer()), headers: { 'content-type': req.headers.get('content-type')! } };
}

export async function seed(s: TestServer, who: Session, slug: string) {
  const res = await as(s.app, who)({ method: 'POST', url: `/api/workspaces/${slug}/documents`, ...(await multipart([{ name: 'backup.md', content: GUIDE }, { name: 'faq.md', content: FAQ }])) });
  expect(res.statusCode, res.body).toBe(202);
  for (const d of res.json().documents as Array<{ id: string }>) {
    for (let i = 0; ; i++) {
      const doc = (await as(s.app, who)({ url: `/api/workspaces/${slug}/documents/${d.id}` })).json();
      if (doc.state === 'indexed') break;
      if (doc.state === 'failed' || i > 200) throw new Error(`not indexed: ${JSON.stringify(doc)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function parseSse(body: string) {
  return body
    .split('\n\n')
    .filter((b) => b.includes('data: '))
    .map((block) => ({ event: /event: (\w+)/.exec(block)?.[1], data: JSON.parse(/data: (.*)/.exec(block)![1]!) }));
}

describe('chat with the extractive answerer', () => {
  let s: TestServer;
  let owner: Session;
  let ws: { id: string; slug: string };
  beforeAll(async () => {
    s = await startTestServer();
    owner = await signup(s.app, 'owner@example.com');
    ws = await createWorkspace(s.app, owner, 'Ops');
    await seed(s, owner, ws.slug);
  });
  afterAll(async () => s?.close());

  const newChat = async () => {
    const res = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats`, payload: {} });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  };
  const ask = (chatId: string, content: string, stream = false) =>
    as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${chatId}/messages`, payload: { content, stream } });

  it('answers from the documents with citations resolved to chunks, sources and quoted spans, and saves both messages', async () => {
    const id = await newChat();
    const res = await ask(id, 'How long are the nightly dumps kept?');
    expect(res.statusCode, res.body).toBe(200);
    const a = res.json();
    expect(a.answer).toContain('keep the archives for thirty days');
    expect(a.answer).toMatch(/\[1\]/);
    expect(a.citations[0]).toMatchObject({ n: 1, source: 'backup.md' });
    expect(a.citations[0].quote).toContain('thirty days');
    expect(a.citations[0].quoteEnd).toBeGreaterThan(a.citations[0].quoteStart);
    expect(a.trace).toMatchObject({ relevant: true, mode: 'lexical', llm: 'extractive' });
    // No model ran: no tokens count against the workspace (issue 16).
    expect(a.usage).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0 });

    const chat = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/chats/${id}` })).json();
    expect(chat.title).toBe('How long are the nightly dumps kept?');
    expect(chat.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);
    expect(chat.messages[1]).toMatchObject({ id: a.messageId, content: a.answer, citations: a.citations });
    const list = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/chats` })).json();
    expect(list.chats.map((c: { id: string }) => c.id)).toContain(id);
  });

  it('streams tokens as Server-Sent Events, then a final event with the answer', async () => {
    const id = await newChat();
    const res = await ask(id, 'How do I restore a dump?', true);
    expect(res.headers['content-type']).toContain('text/event-stream');
    const events = parseSse(res.body);
    const tokens = events.filter((e) => e.event === 'token').map((e) => e.data.text).join('');
    const final = events.at(-1)!;
    expect(final.event).toBe('final');
    expect(tokens).toBe(final.data.answer);
    expect(final.data.answer).toContain('feed the dump to psql');
  });

  it('rewrites a follow-up into a standalone query', async () => {
    const id = await newChat();
    await ask(id, 'How long are the nightly dumps kept?');
    const a = (await ask(id, 'Where is that configured?')).json();
    expect(a.trace.rewrittenBy).toBe('heuristic');
    expect(a.trace.query).toMatch(/nightly|dumps/);
    expect(a.answer).toContain('backup.conf');
  });

  it("says the documents don't say instead of guessing", async () => {
    const id = await newChat();
    const a = (await ask(id, 'What is the wifi password of the office?')).json();
    expect(a.answer).toMatch(/^The documents don't say\./);
    expect(a.citations).toEqual([]);
  });

  it('stores feedback with the answer and exports the chat as JSON with traces', async () => {
    const id = await newChat();
    const a = (await ask(id, 'Which workers claim jobs with a lease?')).json();
    const fb = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${id}/messages/${a.messageId}/feedback`, payload: { rating: 'down', comment: 'too short' } });
    expect(fb.statusCode, fb.body).toBe(200);
    const chat = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/chats/${id}` })).json();
    expect(chat.messages[1].feedback).toMatchObject({ rating: 'down', comment: 'too short' });
    const exp = await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/chats/${id}/export` });
    expect(exp.headers['content-disposition']).toContain('attachment');
    const doc = exp.json();
    expect(doc.format).toBe('docupod.chat.v1');
    expect(doc.messages[1].trace.results.length).toBeGreaterThan(0);
    expect(doc.messages[1].feedback[0]).toMatchObject({ rating: 'down' });
  });

  it('keeps chats private to their creator, and another workspace cannot see them', async () => {
    const id = await newChat();
    const other = await signup(s.app, 'other@example.com');
    await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/members`, payload: { email: other.email, role: 'viewer' } });
    expect((await as(s.app, other)({ url: `/api/workspaces/${ws.slug}/chats/${id}` })).statusCode).toBe(404);
    const otherWs = await createWorkspace(s.app, other, 'Elsewhere');
    expect((await as(s.app, owner)({ url: `/api/workspaces/${otherWs.slug}/chats/${id}` })).statusCode).toBe(404);
    expect((await as(s.app, other)({ url: `/api/workspaces/${otherWs.slug}/chats/${id}` })).statusCode).toBe(404);
  });

  it('spends no daily token budget on extractive answers, and enforces requests per minute per key with 429 and Retry-After', async () => {
    const w2 = await createWorkspace(s.app, owner, 'Budgeted');
    await seed(s, owner, w2.slug);
    const key = (await createKey(s.app, owner, { name: 'bot' })).id;
    const set = await as(s.app, owner)({ method: 'PUT', url: `/api/quotas/workspaces/${w2.id}`, payload: { dailyTokens: 10 } });
    expect(set.statusCode, set.body).toBe(200);
    const chatId = (await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${w2.slug}/chats`, payload: {} })).json().id;
    // The daily budget counts model tokens; with no model, answers never spend it (the 429 itself is tested with a
    // model in 'chat with an OpenAI-compatible model' below).
    for (let i = 0; i < 3; i++) {
      const res = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${w2.slug}/chats/${chatId}/messages`, payload: { content: 'How do I restore a dump?' } });
      expect(res.statusCode, res.body).toBe(200);
    }
    const usage = (await as(s.app, owner)({ url: `/api/workspaces/${w2.slug}/usage` })).json();
    expect(usage.today.dailyBudget).toBe(10);
    expect(usage.today.tokens).toBe(0);
    expect(usage.rows[0].requests).toBe(3);

    // requests per minute per API key
    const k = await createKey(s.app, owner, { name: 'limited' });
    expect((await as(s.app, owner)({ method: 'PUT', url: `/api/quotas/keys/${k.id}`, payload: { requestsPerMinute: 2 } })).statusCode).toBe(200);
    const c2 = (await as(s.app, k.key)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats`, payload: {} })).json().id;
    const codes: number[] = [];
    for (let i = 0; i < 3; i++) codes.push((await as(s.app, k.key)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${c2}/messages`, payload: { content: 'restore' } })).statusCode);
    expect(codes).toEqual([200, 200, 429]);
    expect(key).toBeTruthy();
    // only admins set quotas
    const member = await signup(s.app, 'member@example.com');
    expect((await as(s.app, member)({ method: 'PUT', url: `/api/quotas/workspaces/${w2.id}`, payload: { dailyTokens: 1 } })).statusCode).toBe(403);
  });
});

describe('chat with an OpenAI-compatible model', () => {
  let s: TestServer;
  let fake: FakeOpenAi;
  let owner: Session;
  let ws: { id: string; slug: string };
  beforeAll(async () => {
    fake = await startFakeOpenAi({ reply: (messages) => (messages[0]!.content.startsWith('Rewrite') ? 'nightly dump retention configuration' : 'Dumps are kept for thirty days [1]. See backup.conf [1].') });
    s = await startTestServer({ env: { DOCUPOD_LLM_PROVIDER: 'openai', DOCUPOD_LLM_BASE_URL: `${fake.url}/v1`, DOCUPOD_LLM_MODEL: 'gpt-test', DOCUPOD_LLM_MAX_RETRIES: '0', DOCUPOD_LLM_IDLE_TIMEOUT: '300ms', DOCUPOD_CHAT_REWRITE_TIMEOUT: '400ms' } });
    owner = await signup(s.app, 'owner@example.com');
    ws = await createWorkspace(s.app, owner, 'Ops');
    await seed(s, owner, ws.slug);
  });
  afterAll(async () => {
    await s?.close();
    await fake?.close();
  });

  const newChat = async () => (await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats`, payload: {} })).json().id as string;
  const messages = async (id: string) => (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/chats/${id}` })).json().messages as unknown[];

  it('sends numbered sources and the workspace system prompt, and rewrites follow-ups with the model', async () => {
    const put = await as(s.app, owner)({ method: 'PUT', url: `/api/workspaces/${ws.slug}/chat-settings`, payload: { systemPrompt: 'Answer like a pirate.' } });
    expect(put.statusCode, put.body).toBe(200);
    const id = await newChat();
    const a = (await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${id}/messages`, payload: { content: 'How long are nightly dumps kept?' } })).json();
    expect(a.answer).toBe('Dumps are kept for thirty days [1]. See backup.conf [1].');
    expect(a.citations).toHaveLength(1);
    expect(a.citations[0].quote).toMatch(/thirty days|backup\.conf/);
    expect(a.usage).toMatchObject({ completionTokens: 10 });
    const sent = fake.chatRequests().at(-1)!.body;
    expect(sent.messages[0]!.content).toMatch(/^Answer like a pirate\./);
    expect(sent.messages[0]!.content).toMatch(/\[1\] backup\.md/);

    const b = (await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${id}/messages`, payload: { content: 'and where is it configured?' } })).json();
    expect(b.trace).toMatchObject({ rewrittenBy: 'llm', query: 'nightly dump retention configuration' });
  });

  it("enforces a workspace's daily token budget on the model's tokens with 429 and Retry-After", async () => {
    const w2 = await createWorkspace(s.app, owner, 'Budgeted');
    await seed(s, owner, w2.slug);
    expect((await as(s.app, owner)({ method: 'PUT', url: `/api/quotas/workspaces/${w2.id}`, payload: { dailyTokens: 10 } })).statusCode).toBe(200);
    const chatId = (await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${w2.slug}/chats`, payload: {} })).json().id;
    const first = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${w2.slug}/chats/${chatId}/messages`, payload: { content: 'How do I restore a dump?' } });
    expect(first.statusCode, first.body).toBe(200);
    const over = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${w2.slug}/chats/${chatId}/messages`, payload: { content: 'How do I restore a dump?', stream: true } });
    expect(over.statusCode).toBe(429);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(over.json().type).toBe('/problems/quota-exceeded');
    const usage = (await as(s.app, owner)({ url: `/api/workspaces/${w2.slug}/usage` })).json();
    expect(usage.today).toMatchObject({ dailyBudget: 10 });
    expect(usage.today.tokens).toBeGreaterThan(10);
  });

  it('asks the model to rewrite only follow-ups, and falls back to the rule-based rewrite on an error or a timeout', async () => {
    const id = await newChat();
    const send = (content: string) => as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${id}/messages`, payload: { content } });
    const rewrites = () => fake.chatRequests().filter((r) => r.body.messages[0]!.content.startsWith('Rewrite')).length;
    await send('How long are nightly dumps kept?');
    // A new question (a topic switch that begins with "so") is searched as asked: no rewrite call at all.
    const before = rewrites();
    const fresh = (await send('So which workers claim jobs with a lease?')).json();
    expect(fresh.trace).toMatchObject({ rewrittenBy: 'none', query: 'So which workers claim jobs with a lease?' });
    expect(rewrites()).toBe(before);
    // The model fails on the rewrite: the rules rewrite it, and the answer still comes from the model.
    fake.fail('POST', '/v1/chat/completions', { status: 500, body: { error: { message: 'rewrite crashed' } } });
    const failed = await send('How many of them run at once?');
    expect(failed.statusCode, failed.body).toBe(200);
    expect(failed.json().trace).toMatchObject({ rewrittenBy: 'heuristic' });
    expect(failed.json().trace.query).toMatch(/workers/);
    expect(failed.json().answer).toBe('Dumps are kept for thirty days [1]. See backup.conf [1].');
    // The model is too slow to rewrite (DOCUPOD_CHAT_REWRITE_TIMEOUT=400ms, far below DOCUPOD_LLM_TIMEOUT): same.
    fake.fail('POST', '/v1/chat/completions', { delayMs: 3_000 });
    const t0 = Date.now();
    const slow = await send('And where are they configured?');
    expect(slow.statusCode, slow.body).toBe(200);
    expect(slow.json().trace).toMatchObject({ rewrittenBy: 'heuristic' });
    expect(Date.now() - t0).toBeLessThan(2_500);
  });

  it('ends a stream that breaks mid-answer with an error event and saves nothing', async () => {
    const id = await newChat();
    fake.fail('POST', '/v1/chat/completions', { stream: 'drop', afterTokens: 2 });
    const res = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${id}/messages`, payload: { content: 'How long are nightly dumps kept?', stream: true } });
    const events = parseSse(res.body);
    expect(events.filter((e) => e.event === 'token').length).toBe(2);
    expect(events.at(-1)).toMatchObject({ event: 'error', data: { status: 503 } });
    expect(events.at(-1)!.data.detail).toMatch(/mid-answer|before the answer ended/);
    expect(await messages(id)).toEqual([]);

    fake.fail('POST', '/v1/chat/completions', { status: 500, body: { error: { message: 'model crashed' } } });
    const failed = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${id}/messages`, payload: { content: 'How long are nightly dumps kept?', stream: true } });
    expect(failed.statusCode).toBe(503);
    expect(failed.headers['content-type']).toContain('application/problem+json');
    expect(failed.json().detail).toMatch(/model crashed/);
    expect(await messages(id)).toEqual([]);
  });

  it('cancels the upstream call when the client disconnects, and saves nothing', async () => {
    const slow = await startFakeOpenAi({ tokenDelayMs: 50, reply: () => Array.from({ length: 100 }, (_, i) => `word${i}`).join(' ') });
    const srv = await startTestServer({ env: { DOCUPOD_LLM_PROVIDER: 'openai', DOCUPOD_LLM_BASE_URL: `${slow.url}/v1`, DOCUPOD_LLM_MODEL: 'gpt-test' } });
    try {
      const o = await signup(srv.app, 'o@example.com');
      const w = await createWorkspace(srv.app, o, 'W');
      await seed(srv, o, w.slug);
      const id = (await as(srv.app, o)({ method: 'POST', url: `/api/workspaces/${w.slug}/chats`, payload: {} })).json().id;
      await srv.app.listen({ port: 0, host: '127.0.0.1' });
      const port = (srv.app.server.address() as AddressInfo).port;
      const ac = new AbortController();
      const res = await fetch(`http://127.0.0.1:${port}/api/workspaces/${w.slug}/chats/${id}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${o.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ content: 'How long are nightly dumps kept?', stream: true }),
        signal: ac.signal,
      });
      const reader = res.body!.getReader();
      let got = '';
      while (!got.includes('event: token')) got += new TextDecoder().decode((await reader.read()).value);
      ac.abort();
      for (let i = 0; i < 50 && slow.cancelledStreams.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(slow.cancelledStreams).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 100));
      expect((await as(srv.app, o)({ url: `/api/workspaces/${w.slug}/chats/${id}` })).json().messages).toEqual([]);
    } finally {
      await srv.close();
      await slow.close();
    }
  });
});
