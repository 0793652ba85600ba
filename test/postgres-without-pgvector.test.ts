import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/config/schema.js';
import { createLogger } from '../src/observability/logger.js';
import { startRuntime, type Runtime } from '../src/modules/runtime.js';
import { as, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { databaseWithoutVector, describeOnPostgres } from './fixtures/database.js';
import { normalise, startFakeOpenAi, type FakeOpenAi } from './fixtures/fake-openai.js';
import { multipart } from './fixtures/multipart.js';

// A Postgres where pgvector cannot be enabled (its role may not create the untrusted extension, as on a managed
// server without it) still runs docupod: it migrates, says at start that search is lexical-only, indexes uploads and
// answers lexical search, and a vector search gets a 400 that names the cause. The whole product starts on its own
// database URL, migrating at start, so the path a deployment takes is the one tested.

describeOnPostgres('a Postgres server without pgvector', () => {
  let database: Awaited<ReturnType<typeof databaseWithoutVector>>;
  let fake: FakeOpenAi;
  let runtime: Runtime | undefined;
  let owner: Session;
  let ws: { slug: string };
  const lines: Array<{ level: number; msg: string; vector?: boolean }> = [];

  beforeAll(async () => {
    database = await databaseWithoutVector();
    // An embedder is configured, so lexical-only comes from the database alone.
    fake = await startFakeOpenAi({ dimensions: 8, embed: (text) => normalise(Array.from({ length: 8 }, (_, i) => (text.charCodeAt(i) || 1) % 7)) });
    const config = loadConfig({
      DATABASE_URL: database.url,
      DOCUPOD_MIGRATE_ON_START: 'true',
      DOCUPOD_DATA_DIR: 'memory://',
      DOCUPOD_LOG_LEVEL: 'info',
      DOCUPOD_METRICS_ENABLED: 'false',
      DOCUPOD_JWT_SECRET: 'test-secret-that-is-at-least-32-characters-long',
      DOCUPOD_EMBED_PROVIDER: 'openai',
      DOCUPOD_EMBED_BASE_URL: `${fake.url}/v1`,
      DOCUPOD_EMBED_MODEL: 'text-embedding-3-small',
    });
    const log = createLogger({ level: 'info', format: 'json' }, {}, { write: (line: string) => void lines.push(JSON.parse(line)) });
    runtime = await startRuntime(config, log);
    owner = await signup(runtime.app, 'lexical@example.com');
    ws = await createWorkspace(runtime.app, owner, 'Lexical');
    const files = [
      { name: 'garden.md', content: '# Garden\n\nTomatoes need sunlight, water and rich compost soil to grow sweet fruit.' },
      { name: 'network.md', content: '# Network\n\nThe router forwards packets between subnets using its routing table.' },
    ];
    const res = await as(runtime.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/documents`, ...(await multipart(files)) });
    expect(res.statusCode, res.body).toBe(202);
    for (const d of res.json().documents as Array<{ id: string }>) {
      for (let i = 0; ; i++) {
        const doc = (await as(runtime.app, owner)({ url: `/api/workspaces/${ws.slug}/documents/${d.id}` })).json();
        if (doc.state === 'indexed') break;
        if (doc.state === 'failed') throw new Error(doc.error);
        if (i > 300) throw new Error(`document ${d.id} not indexed: ${doc.state}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  afterAll(async () => {
    await runtime?.stop();
    await fake?.close();
    await database?.close();
  });

  it('starts, and says at start that search is lexical-only', () => {
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'database ready', driver: 'postgres', vector: false }));
    expect(lines).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringMatching(/pgvector is not installed .*lexical-only/) }));
  });

  it('indexes uploads and answers lexical search', async () => {
    const res = await as(runtime!.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/search`, payload: { query: 'compost soil', k: 3 } });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { mode: string; results: Array<{ source: string }> };
    expect(body.mode).toBe('lexical');
    expect(body.results[0]?.source).toBe('garden.md');
    expect(body.results.map((r) => r.source)).not.toContain('network.md');
  });

  it('answers a vector search with a 400 problem that names the missing extension', async () => {
    const res = await as(runtime!.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/search`, payload: { query: 'compost soil', k: 3, mode: 'vector' } });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.json().detail).toMatch(/pgvector.*lexical-only/);
  });

  it('really has no vector extension: its role may not create it', async () => {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      expect((await client.query(`select 1 from pg_extension where extname = 'vector'`)).rowCount).toBe(0);
      expect((await client.query(`select 1 from pg_available_extensions where name = 'vector'`)).rowCount).toBe(1);
      await expect(client.query('create extension vector')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await client.end();
    }
  });
});
