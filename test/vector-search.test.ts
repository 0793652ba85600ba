import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { normalise, startFakeOpenAi, type FakeOpenAi } from './fixtures/fake-openai.js';
import { startTestServer, type TestServer } from './fixtures/server.js';
import { multipart } from './fixtures/multipart.js';

// Vector and hybrid search end to end: uploads are embedded through the openai adapter (against an in-test
// OpenAI-compatible server whose "model" is a hashed bag of words, so related texts have related vectors), stored
// as halfvec, indexed with HNSW by pgvector, and searched by cosine distance. On the test database's backend: PostgreSQL
// 15 with pgvector 0.8 when DOCUPOD_TEST_DATABASE_URL is set (and again on PGlite in the api-on-pglite project).

const DIMS = 64;
function bagOfWords(text: string): number[] {
  const v = new Array<number>(DIMS).fill(0);
  for (const word of text.toLowerCase().match(/[a-z]{3,}/g) ?? []) {
    let h = 0x811c9dc5;
    for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
    v[(h >>> 0) % DIMS]! += 1;
  }
  return normalise(v);
}

let fake: FakeOpenAi;
let s: TestServer;
let owner: Session;
let ws: { slug: string };

beforeAll(async () => {
  fake = await startFakeOpenAi({ dimensions: DIMS, embed: bagOfWords });
  s = await startTestServer({
    env: { DOCUPOD_EMBED_PROVIDER: 'openai', DOCUPOD_EMBED_BASE_URL: `${fake.url}/v1`, DOCUPOD_EMBED_MODEL: 'text-embedding-3-small' },
  });
  owner = await signup(s.app, 'vec@example.com');
  ws = await createWorkspace(s.app, owner, 'Vectors');
  const files = [
    { name: 'garden.md', content: '# Garden\n\nTomatoes need sunlight, water and rich compost soil to grow sweet fruit.' },
    { name: 'network.md', content: '# Network\n\nThe router forwards packets between subnets using its routing table and gateway.' },
    { name: 'kitchen.md', content: '# Kitchen\n\nBake the bread dough in a hot oven until the crust turns golden brown.' },
  ];
  const res = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/documents`, ...(await multipart(files)) });
  expect(res.statusCode, res.body).toBe(202);
  for (const d of res.json().documents as Array<{ id: string }>) {
    for (let i = 0; i < 300; i++) {
      const doc = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents/${d.id}` })).json();
      if (doc.state === 'indexed') break;
      if (doc.state === 'failed') throw new Error(doc.error);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
});

async function search(query: string, mode?: string) {
  const res = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/search`, payload: { query, k: 3, ...(mode ? { mode } : {}) } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { mode: string; results: Array<{ source: string; score: number }> };
}

describe('vector and hybrid search', () => {
  it('embeds every chunk through the configured embedder', () => {
    const embedded = fake.embeddingRequests().flatMap((r) => [r.body.input].flat().map(String));
    expect(embedded.some((t) => t.includes('Tomatoes need sunlight'))).toBe(true);
    expect(embedded.some((t) => t.includes('router forwards packets'))).toBe(true);
  });

  it('finds the nearest chunk by cosine similarity, with the similarity as score', async () => {
    const r = await search('which soil and water do tomatoes need', 'vector');
    expect(r.mode).toBe('vector');
    expect(r.results[0]!.source).toBe('garden.md');
    expect(r.results[0]!.score).toBeGreaterThan(r.results[1]!.score);
    expect(r.results[0]!.score).toBeLessThanOrEqual(1.0001);
  });

  it('defaults to hybrid when an embedder is configured, fusing both rankings', async () => {
    const r = await search('oven bread crust');
    expect(r.mode).toBe('hybrid');
    expect(r.results[0]!.source).toBe('kitchen.md');
  });
});
