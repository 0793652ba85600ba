import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { as, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { startFakeRerank, type FakeRerank } from './fixtures/fake-rerank.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// The reranking stage on the whole product, configured only through DOCUPOD_RERANK_* (config → module graph → chat):
// the answer uses the reranker's order, shows the stage in its trace and in metrics, and when the reranker fails or
// hangs the answer still comes (200) in retrieval's order and says why.

const DOCS = [
  { name: 'nightly.md', content: '# Nightly backups\n\nThe backup job writes archives every night and keeps them for thirty days.\n' },
  { name: 'offsite.md', content: '# Offsite copies\n\nBackup archives are also copied offsite once a week.\n' },
  { name: 'restore.md', content: '# Restoring a backup\n\nTo restore a backup archive, create an empty database and feed it to psql.\n' },
];

describe('reranking in chat answers (TEI protocol)', () => {
  let s: TestServer;
  let owner: Session;
  let slug: string;
  let fake: FakeRerank;
  const question = 'How long are backup archives kept?';

  beforeAll(async () => {
    // The fake prefers the offsite chunk, which lexical search does not rank first for this question.
    fake = await startFakeRerank({ score: (_q, text) => (text.includes('offsite') ? 10 : 1) });
    s = await startTestServer({ env: { DOCUPOD_RERANK_PROVIDER: 'tei', DOCUPOD_RERANK_URL: fake.url, DOCUPOD_RERANK_TIMEOUT: '300ms', DOCUPOD_METRICS_ENABLED: 'true' } });
    owner = await signup(s.app, 'rerank@example.com');
    slug = (await createWorkspace(s.app, owner, 'Rerank Space')).slug;
    const form = new FormData();
    for (const d of DOCS) form.append('file', new Blob([d.content]), d.name);
    const req = new Request('http://x/', { method: 'POST', body: form });
    const up = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${slug}/documents`, payload: Buffer.from(await req.arrayBuffer()), headers: { 'content-type': req.headers.get('content-type')! } });
    expect(up.statusCode, up.body).toBe(202);
    for (const d of up.json().documents as Array<{ id: string }>) {
      for (let i = 0; (await as(s.app, owner)({ url: `/api/workspaces/${slug}/documents/${d.id}` })).json().state !== 'indexed'; i++) {
        if (i > 200) throw new Error('not indexed');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }, 60_000);
  afterAll(async () => {
    await s?.close();
    await fake?.close();
  });
  beforeEach(() => {
    fake.mode = 'ok';
    fake.requests.length = 0;
  });

  const retrievalOrder = async () =>
    ((await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${slug}/search`, payload: { query: question, k: 30 } })).json().results as Array<{ chunkId: string; source: string }>).map((r) => r.chunkId);
  const ask = async () => {
    const chat = (await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${slug}/chats`, payload: {} })).json();
    return as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${slug}/chats/${chat.id}/messages`, payload: { content: question } });
  };

  it('answers from the reranked order and shows the stage in the trace', async () => {
    const lexical = await retrievalOrder();
    const res = await ask();
    expect(res.statusCode, res.body).toBe(200);
    const trace = res.json().trace;
    expect(trace.rerank).toMatchObject({ by: `tei:${fake.url}`, applied: true, candidates: lexical.length });
    expect(trace.rerank.ms).toBeGreaterThan(0);
    expect(trace.results[0].source).toBe('offsite.md');
    expect(lexical.indexOf(trace.results[0].chunkId)).toBeGreaterThan(0); // the reranker moved it up
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]!.body).toMatchObject({ query: question });
  });

  it.each([
    ['an error status', 500 as const, /answered 500: Model is overloaded/],
    ['a timeout', 'hang' as const, /did not answer within 300 ms/],
  ])('keeps retrieval order after %s and says so, never a 500', async (_what, mode, reason) => {
    fake.mode = mode;
    const lexical = await retrievalOrder();
    const res = await ask();
    expect(res.statusCode, res.body).toBe(200);
    const { trace, answer } = res.json();
    expect(answer.length).toBeGreaterThan(0);
    expect(trace.rerank).toMatchObject({ applied: false });
    expect(trace.rerank.error).toMatch(reason);
    expect(trace.rerank.error).toMatch(/retrieval order kept/);
    expect(trace.retrievalNotes).toContain(trace.rerank.error);
    expect(trace.results.map((r: { chunkId: string }) => r.chunkId)).toEqual(lexical.slice(0, trace.results.length));
  });

  it('times every attempt in a histogram labelled by provider only', async () => {
    const text = (await s.app.inject({ url: '/metrics' })).body;
    // Three answers so far (each test file's order is fixed): one reranked, two failed.
    expect(text).toMatch(/docupod_rerank_duration_seconds_count\{[^}]*provider="tei"[^}]*\} 3\n/);
    expect(text).toMatch(/docupod_rerank_failures_total\{[^}]*provider="tei"[^}]*\} 2\n/);
    for (const line of text.split('\n').filter((l) => l.startsWith('docupod_rerank'))) expect(line).not.toMatch(/workspace|tenant|rerank-space|backup/i);
  });
});
