import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { M } from '../src/modules/graph.js';
import { startRuntime, type Runtime } from '../src/modules/runtime.js';
import { silentLogger } from '../src/observability/logger.js';
import { rowsOf } from '../src/storage/database.js';
import { as, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { backends, freshDatabase, type TestDatabase } from './fixtures/database.js';
import { normalise, startFakeOpenAi, type FakeOpenAi } from './fixtures/fake-openai.js';
import { multipart } from './fixtures/multipart.js';
import { testConfig } from './fixtures/server.js';

// A change of embedder re-embeds: the product is started on one database with an OpenAI-compatible embedder of
// 8 dimensions, documents are ingested, then it restarts with another model of 16 dimensions. A durable job embeds
// every chunk again and swaps the vectors in; the workspace records the new embedder and dimension; vector search
// never compares a query with the other model's vectors. A restart in the middle of the job resumes from the vectors
// already staged. Embedder `none` removes the vectors. Embedded (PGlite) and over the pg driver on PostgreSQL 15 with
// pgvector (when the test server is configured; in CI it is).

const DIMS: Record<string, number> = { 'embed-8': 8, 'embed-16': 16 };
function bagOfWords(text: string, model: string): number[] {
  const dims = DIMS[model] ?? 8;
  const v = new Array<number>(dims).fill(0);
  for (const word of text.toLowerCase().match(/[a-z]{3,}/g) ?? []) {
    let h = 0x811c9dc5 ^ dims;
    for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
    v[(h >>> 0) % dims]! += 1;
  }
  return normalise(v);
}

describe.each(backends())('%s', (backend) => {
  let fake: FakeOpenAi;
  let db: TestDatabase;
  let runtime: Runtime | undefined;
  let owner: Session;
  let ws: { id: string; slug: string };

  async function start(model: string | 'none'): Promise<Runtime> {
    await runtime?.stop();
    const env: Record<string, string> =
      model === 'none' ? { DOCUPOD_EMBED_PROVIDER: 'none' } : { DOCUPOD_EMBED_PROVIDER: 'openai', DOCUPOD_EMBED_BASE_URL: `${fake.url}/v1`, DOCUPOD_EMBED_MODEL: model };
    runtime = await startRuntime(testConfig(db, env), silentLogger(), { provided: { [M.db]: db.database } });
    return runtime;
  }

  const api = () => as(runtime!.app, owner);
  async function stats() {
    const res = await api()({ url: `/api/workspaces/${ws.slug}/stats` });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { chunks: number; embedding?: { embedder: string; dims: number | null; state: string; target: string | null; chunksDone: number; chunksTotal: number; error: string | null } };
  }
  async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const q = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await db.database.db.execute(query));
  async function vectors() {
    return q<{ dims: number; n: number }>(sql`select dims, count(*)::int as n from chunk_embeddings where workspace_id = ${ws.id} group by dims order by dims`);
  }
  const inputsSent = () => fake.embeddingRequests().reduce((n, r) => n + [r.body.input].flat().length, 0);

  beforeAll(async () => {
    fake = await startFakeOpenAi({ models: Object.keys(DIMS), embed: bagOfWords });
    db = await freshDatabase(backend);
    await start('embed-8');
    owner = await signup(runtime!.app, 'reembed@example.com');
    ws = await createWorkspace(runtime!.app, owner, 'Reembed');
    // ~100 chunks in one file, so the re-embedding takes two requests (64 chunks each) and can stop between them.
    const big = Array.from({ length: 100 }, (_, i) => `## Section ${i}\n\n${`Paragraph ${i} about lighthouse keepers and harbour number ${i}. `.repeat(40)}`).join('\n\n');
    const files = [
      { name: 'garden.md', content: '# Garden\n\nTomatoes need sunlight, water and rich compost soil to grow sweet fruit.' },
      { name: 'network.md', content: '# Network\n\nThe router forwards packets between subnets using its routing table and gateway.' },
      { name: 'big.md', content: `# Harbour\n\n${big}` },
    ];
    const res = await api()({ method: 'POST', url: `/api/workspaces/${ws.slug}/documents`, ...(await multipart(files)) });
    expect(res.statusCode, res.body).toBe(202);
    for (const d of res.json().documents as Array<{ id: string }>)
      await until('indexing', async () => {
        const doc = (await api()({ url: `/api/workspaces/${ws.slug}/documents/${d.id}` })).json();
        if (doc.state === 'failed') throw new Error(doc.error);
        return doc.state === 'indexed';
      });
  }, 120_000);
  afterAll(async () => {
    await runtime?.stop();
    await db?.close();
    await fake?.close();
  });

  describe(`a change of embedder (${backend})`, () => {
    it('records the embedder and dimension of a workspace at its first embedded document', async () => {
      const s = await stats();
      expect(s.chunks).toBeGreaterThan(64);
      expect(s.embedding).toMatchObject({ embedder: 'openai:embed-8', dims: 8, state: 'ready', target: null });
      expect(await vectors()).toEqual([{ dims: 8, n: s.chunks }]);
    });

    it('re-embeds every chunk with the new model, resuming after a restart, and records the new dimension', async () => {
      const total = (await stats()).chunks;
      // The second batch of the job hangs, so the process stops with 64 chunks staged.
      fake.fail('POST', '/v1/embeddings', { delayMs: 0 }, { delayMs: 60_000 });
      const before = inputsSent();
      const requestsBefore = fake.requestsTo('/v1/embeddings').length;
      await start('embed-16');
      const mid = await until('the first batch', async () => {
        const s = await stats();
        return s.embedding && s.embedding.chunksDone >= 64 && s.embedding;
      });
      expect(mid).toMatchObject({ embedder: 'none', dims: null, state: 'reembedding', target: 'openai:embed-16', chunksTotal: total });
      // Vector search is off meanwhile: the old vectors went with the switch, the new ones are not visible yet.
      expect(await vectors()).toEqual([]);
      const lexical = await api()({ method: 'POST', url: `/api/workspaces/${ws.slug}/search`, payload: { query: 'tomatoes compost', mode: 'lexical', k: 3 } });
      expect(lexical.json().results[0].source).toBe('garden.md');
      // Hybrid search answers lexically and says why vector search sat out.
      const hybrid = await api()({ method: 'POST', url: `/api/workspaces/${ws.slug}/search`, payload: { query: 'tomatoes compost', mode: 'hybrid', k: 3 } });
      expect(hybrid.statusCode, hybrid.body).toBe(200);
      expect(hybrid.json().results[0].source).toBe('garden.md');
      expect(hybrid.json().notes).toEqual([expect.stringMatching(/vector search is paused .* re-embedded with openai:embed-16 \(\d+\/\d+ chunks\)/)]);

      // Restart with the same configuration (once the hung request has arrived, so it counts before the restart): the
      // job continues with the chunks still missing a vector.
      await until('the second batch', async () => fake.requestsTo('/v1/embeddings').length >= requestsBefore + 2);
      const beforeRestart = inputsSent();
      await start('embed-16');
      const done = await until('the swap', async () => {
        const s = await stats();
        return s.embedding?.state === 'ready' && s.embedding;
      });
      expect(done).toMatchObject({ embedder: 'openai:embed-16', dims: 16, target: null, chunksDone: total, chunksTotal: total, error: null });
      expect(await vectors()).toEqual([{ dims: 16, n: total }]);
      expect(await q(sql`select 1 from staged_embeddings`)).toEqual([]);
      // The restart did not start over: it embedded exactly the chunks the first process had not staged.
      expect(inputsSent() - beforeRestart).toBe(total - 64);
      expect(beforeRestart - before).toBe(64 + Math.min(64, total - 64)); // the first batch, and the one that hung

      const r = await api()({ method: 'POST', url: `/api/workspaces/${ws.slug}/search`, payload: { query: 'which soil and water do tomatoes need', mode: 'vector', k: 3 } });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().results[0].source).toBe('garden.md');
      expect(r.json().notes).toBeUndefined();
    }, 120_000);

    it('indexes a document uploaded after the swap with the new embedder', async () => {
      const res = await api()({ method: 'POST', url: `/api/workspaces/${ws.slug}/documents`, ...(await multipart([{ name: 'kitchen.md', content: '# Kitchen\n\nBake the bread dough in a hot oven until the crust turns golden brown.' }])) });
      const id = res.json().documents[0].id as string;
      await until('indexing', async () => (await api()({ url: `/api/workspaces/${ws.slug}/documents/${id}` })).json().state === 'indexed');
      const s = await stats();
      expect(await vectors()).toEqual([{ dims: 16, n: s.chunks }]);
    });

    it('starts no second job when restarted with the embedder it already has', async () => {
      await start('embed-16');
      const jobs = await q<{ n: number }>(sql`select count(*)::int as n from jobs where name = 'ingest.reembed' and workspace_id = ${ws.id}`);
      expect(jobs[0]!.n).toBe(1);
    });

    it('removes the vectors when the embedder becomes none', async () => {
      await start('none');
      expect((await stats()).embedding).toMatchObject({ embedder: 'none', dims: null, state: 'ready' });
      expect(await vectors()).toEqual([]);
    });
  });
});
