import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llmUsage } from '../src/storage/schema-chat.js';
import { as, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { uploadIndexed } from './fixtures/documents.js';
import { startFakeOpenAi } from './fixtures/fake-openai.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// Token usage is buffered in memory and written once a second (src/roles/chat/usage.ts). Through the API that must
// not show: every answer counted once, budgets enforced before the write, nothing lost when the server stops.

const seed = (srv: TestServer, who: Session, slug: string) => uploadIndexed(srv, who, slug, 'backup.md', '# Backup guide\n\n## Nightly dumps\n\nRun pg_dump every night and keep the archives for thirty days. Restore a dump with pg_restore.\n');

const ask = async (s: TestServer, who: Session, slug: string) => {
  const chatId = (await as(s.app, who)({ method: 'POST', url: `/api/workspaces/${slug}/chats`, payload: {} })).json().id as string;
  return as(s.app, who)({ method: 'POST', url: `/api/workspaces/${slug}/chats/${chatId}/messages`, payload: { content: 'How long are the archives kept?' } });
};

describe('buffered token usage', () => {
  let s: TestServer;
  let owner: Session;
  beforeAll(async () => {
    s = await startTestServer();
    owner = await signup(s.app, 'owner@example.com');
  });
  afterAll(async () => s?.close());

  it('counts every answer of a concurrent burst exactly once', async () => {
    const ws = await createWorkspace(s.app, owner, 'Burst');
    await seed(s, owner, ws.slug);
    const answers = await Promise.all(Array.from({ length: 12 }, () => ask(s, owner, ws.slug)));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(12).fill(200));
    const tokens = answers.reduce((n, a) => n + (a.json().usage.promptTokens as number) + (a.json().usage.completionTokens as number), 0);
    const usage = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/usage` })).json();
    expect(usage.rows).toHaveLength(1);
    expect(usage.rows[0].requests).toBe(12);
    expect(usage.rows[0].promptTokens + usage.rows[0].completionTokens).toBe(tokens);
    expect(usage.today.tokens).toBe(tokens);
  });

});

describe('buffered token usage with a model (tokens to count)', () => {
  it('enforces the daily budget with usage not yet written', async () => {
    // The extractive answerer uses no tokens (issue 16), so the budget is spent by an OpenAI-compatible fake model.
    const fake = await startFakeOpenAi({ reply: () => 'Archives are kept for thirty days [1].' });
    const s = await startTestServer({ env: { DOCUPOD_LLM_PROVIDER: 'openai', DOCUPOD_LLM_BASE_URL: `${fake.url}/v1`, DOCUPOD_LLM_MODEL: 'gpt-test', DOCUPOD_LLM_MAX_RETRIES: '0' } });
    try {
      const owner = await signup(s.app, 'owner@example.com');
      const ws = await createWorkspace(s.app, owner, 'Budget');
      await seed(s, owner, ws.slug);
      expect((await as(s.app, owner)({ method: 'PUT', url: `/api/quotas/workspaces/${ws.id}`, payload: { dailyTokens: 5 } })).statusCode).toBe(200);
      expect((await ask(s, owner, ws.slug)).statusCode).toBe(200);
      // Asked at once, well inside the flush interval: the budget check counts what is still in memory.
      const over = await ask(s, owner, ws.slug);
      expect(over.statusCode).toBe(429);
      expect(over.json().type).toBe('/problems/quota-exceeded');
    } finally {
      await s.close();
      await fake.close();
    }
  });
});

describe('buffered token usage on shutdown', () => {
  it('writes what is buffered when the server stops', async () => {
    const s = await startTestServer();
    try {
      const owner = await signup(s.app, 'owner@example.com');
      const ws = await createWorkspace(s.app, owner, 'Stopping');
      await seed(s, owner, ws.slug);
      const answers = await Promise.all([ask(s, owner, ws.slug), ask(s, owner, ws.slug), ask(s, owner, ws.slug)]);
      expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200]);
      // Usually nothing is written yet (the flush runs once a second); on a very slow machine it may be, and the
      // total below must be the same either way.
      const before = (await s.db.database.db.select().from(llmUsage)).filter((r) => r.workspaceId === ws.id);
      expect(before.reduce((n, r) => n + r.requests, 0)).toBeLessThanOrEqual(3);
      await s.runtime.stop(); // graceful stop; the test database stays open
      const rows = await s.db.database.db.select().from(llmUsage);
      expect(rows.filter((r) => r.workspaceId === ws.id).map((r) => r.requests)).toEqual([3]);
    } finally {
      await s.db.close();
    }
  });
});
