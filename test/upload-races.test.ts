import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/storage/database.js';
import { as, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { backends } from './fixtures/database.js';
import { multipart } from './fixtures/multipart.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// The same file uploaded by several requests at the same moment (a double click, a retrying client, two people):
// one document, every other answer `duplicate: true` naming it, never a 500. Through the HTTP API on the whole
// product, on PGlite and on Postgres (where the requests' transactions really overlap).

async function until(check: () => Promise<boolean>, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('timed out');
}

describe.each(backends())('identical uploads at once, on %s', (backend) => {
  let s: TestServer;
  let owner: Session;
  let ws: { id: string; slug: string };
  beforeAll(async () => {
    // Blobs in the database, so the test can count the originals left behind.
    s = await startTestServer({ backend, env: { DOCUPOD_BLOB_STORE: 'postgres' } });
    owner = await signup(s.app, 'owner@example.com');
    ws = await createWorkspace(s.app, owner, 'Races');
  });
  afterAll(async () => s?.close());

  const upload = async (name: string, content: string) =>
    as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/documents`, ...(await multipart([{ name, content }])) });
  const q = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await s.db.database.db.execute(query));

  it('yields one document and duplicate: true for the others, never a 500', async () => {
    for (let round = 0; round < 5; round++) {
      const content = `# Runbook ${round}\n\nRestart the replica, then check the lag of round ${round}.\n`;
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => upload(`runbook-${round}-${i}.md`, content)));
      for (const a of answers) expect(a.statusCode, a.body).toBe(202);
      const docs = answers.map((a) => a.json().documents[0] as { id: string; duplicate: boolean; source: string });
      const originals = docs.filter((d) => !d.duplicate);
      expect(originals).toHaveLength(1);
      for (const d of docs) expect(d).toMatchObject({ id: originals[0]!.id, source: originals[0]!.source });
    }
    const [{ n }] = await q<{ n: number }>(sql`select count(*)::int as n from documents where workspace_id = ${ws.id}`) as [{ n: number }];
    expect(n).toBe(5);
    // The duplicates' originals, stored before the duplicate was known, are gone again: one blob per document.
    const orphans = await q(sql`select b.key from blobs b left join documents d on d.blob_key = b.key where b.workspace_id = ${ws.id} and d.id is null`);
    expect(orphans).toEqual([]);
  });

  it('refuses with 409, not 500, to bring back a failed document whose bytes are live again in another', async () => {
    const content = '# Failover\n\nPromote the standby when the primary is gone.\n';
    const first = (await upload('failover.md', content)).json().documents[0];
    await until(async () => (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents/${first.id}` })).json().state === 'indexed');
    // As if its indexing had failed for a passing reason (an embedder that was down), then the file came again.
    await s.db.database.db.execute(sql`update documents set state = 'failed', error = 'the embedder did not answer' where id = ${first.id}`);
    const again = (await upload('failover-again.md', content)).json().documents[0];
    expect(again.duplicate).toBe(false);
    const res = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/documents/${first.id}/reindex` });
    expect(res.statusCode, res.body).toBe(409);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.json().detail).toContain(again.id);
  });
});
