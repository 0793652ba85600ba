import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { startTestServer, type TestServer } from './fixtures/server.js';
import { multipart } from './fixtures/multipart.js';

// Upload → parse → chunk → index → search, through the public API on the whole product (all roles, one process).


let s: TestServer;
let owner: Session;
let ws: { id: string; slug: string };

const GUIDE = `# Backup guide

## Nightly dumps

Run pg_dump every night and keep the archives for thirty days. The retention window is configured in backup.conf.

## Restoring

To restore, create an empty database and feed the dump to psql. Test restores monthly.
`;

const FAQ = `<html><head><title>Cluster FAQ</title></head><body>
<h1>Cluster FAQ</h1><h2>Scaling</h2><p>The ingest workers scale horizontally; each one claims jobs with a lease.</p>
<h2>Storage</h2><p>Originals are kept in the blob store until the document is deleted.</p></body></html>`;

async function upload(files: Array<{ name: string; content: string | Uint8Array }>, who: Session = owner, slug = ws.slug) {
  const body = await multipart(files);
  return as(s.app, who)({ method: 'POST', url: `/api/workspaces/${slug}/documents`, ...body });
}

async function waitFor(id: string, states = ['indexed', 'failed'], slug = ws.slug, who: Session = owner) {
  for (let i = 0; i < 300; i++) {
    const res = await as(s.app, who)({ url: `/api/workspaces/${slug}/documents/${id}` });
    const doc = res.json();
    if (states.includes(doc.state)) return doc;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`document ${id} did not reach ${states.join('/')}`);
}

async function search(query: string, slug = ws.slug, who: Session = owner, extra: object = {}) {
  const res = await as(s.app, who)({ method: 'POST', url: `/api/workspaces/${slug}/search`, payload: { query, ...extra } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { results: Array<{ source: string; text: string; heading: string; headingPath: string[]; documentId: string; chunkId: string; highlight?: string; score: number }>; mode: string };
}

beforeAll(async () => {
  s = await startTestServer({ env: { DOCUPOD_UPLOAD_LIMIT: '64KB' } });
  owner = await signup(s.app, 'owner@example.com');
  ws = await createWorkspace(s.app, owner, 'Ops Handbook');
});
afterAll(async () => s?.close());

describe('ingestion and search', () => {
  it('indexes uploaded files and finds them by their words, with headings and highlights', async () => {
    const res = await upload([
      { name: 'backup.md', content: GUIDE },
      { name: 'faq.html', content: FAQ },
    ]);
    expect(res.statusCode, res.body).toBe(202);
    const docs = res.json().documents;
    expect(docs).toHaveLength(2);
    const [md, html] = await Promise.all(docs.map((d: { id: string }) => waitFor(d.id)));
    expect(md).toMatchObject({ state: 'indexed', source: 'backup.md', title: 'Backup guide' });
    expect(md.chunkCount).toBeGreaterThan(0);
    expect(html).toMatchObject({ state: 'indexed', title: 'Cluster FAQ' });

    const r = await search('how long are the nightly dumps kept', ws.slug, owner, { highlight: true });
    expect(r.mode).toBe('lexical');
    expect(r.results[0]!.source).toBe('backup.md');
    expect(r.results[0]!.headingPath[0]).toBe('Backup guide');
    expect(r.results[0]!.text).toContain('keep the archives for thirty days');
    expect(r.results[0]!.highlight).toMatch(/<mark>[Nn]ight/);

    const lease = await search('workers claim jobs with a lease');
    expect(lease.results[0]!.source).toBe('faq.html');
    expect(lease.results[0]!.text).toContain('claims jobs with a lease');
  });

  it('filters by source pattern', async () => {
    const r = await search('deleted document archives', ws.slug, owner, { sources: ['*.html'] });
    expect(r.results.length).toBeGreaterThan(0);
    expect(r.results.every((x) => x.source.endsWith('.html'))).toBe(true);
  });

  it('answers a second upload of the same bytes with the existing document', async () => {
    const res = await upload([{ name: 'copy-of-backup.md', content: GUIDE }]);
    expect(res.statusCode).toBe(202);
    const [d] = res.json().documents;
    expect(d.duplicate).toBe(true);
    expect(d.source).toBe('backup.md');
    const list = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents` })).json();
    expect(list.total).toBe(2);
  });

  it('replaces a changed file atomically: the old text disappears when the new one is indexed', async () => {
    const res = await upload([{ name: 'backup.md', content: GUIDE.replace('thirty days', 'ninety days').replace('pg_dump', 'pg_basebackup') }]);
    const [d] = res.json().documents;
    expect(d.duplicate).toBe(false);
    expect(d.replacesId).toBeTruthy();
    await waitFor(d.id);
    const r = await search('ninety days');
    expect(r.results[0]!.documentId).toBe(d.id);
    const old = await search('pg_dump thirty');
    expect(old.results.every((x) => x.documentId === d.id)).toBe(true);
    expect((await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents/${d.replacesId}` })).statusCode).toBe(404);
  });

  it('fails a broken file with a reason, and keeps serving and keeping every other document', async () => {
    const junk = new Uint8Array(4096).map((_, i) => (i * 7919) % 251);
    const res = await upload([{ name: 'report.pdf', content: junk }]);
    expect(res.statusCode).toBe(202);
    const failed = await waitFor(res.json().documents[0].id);
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/pdf|PDF|recogni|binary|unsupported/i);
    expect((await search('lease')).results.length).toBeGreaterThan(0);
  });

  it('rejects a file over the upload limit with 413 and stores nothing', async () => {
    const before = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents` })).json().total;
    const res = await upload([{ name: 'small.txt', content: 'fine' }, { name: 'big.txt', content: 'x'.repeat(70 * 1024) }]);
    expect(res.statusCode).toBe(413);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json().detail).toMatch(/DOCUPOD_UPLOAD_LIMIT/);
    expect((await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents` })).json().total).toBe(before);
  });

  it('streams progress as Server-Sent Events until the document is indexed', async () => {
    const res = await upload([{ name: 'notes.txt', content: 'Rotate the TLS certificates every ninety days.\n\nKeep the CA offline.' }]);
    const id = res.json().documents[0].id;
    const sse = await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents/${id}/events` });
    expect(sse.headers['content-type']).toContain('text/event-stream');
    const events = sse.body.split('\n\n').filter(Boolean).map((block) => ({ event: /event: (\w+)/.exec(block)?.[1], data: JSON.parse(/data: (.*)/.exec(block)?.[1] ?? 'null') }));
    expect(events[0]!.event).toBe('progress');
    expect(events.at(-1)).toMatchObject({ event: 'done', data: { state: 'indexed', id } });
  });

  it('deletes a document with its chunks', async () => {
    const res = await upload([{ name: 'tmp.md', content: '# Temporary\n\nThe zebra protocol is obsolete.' }]);
    const id = res.json().documents[0].id;
    await waitFor(id);
    expect((await search('zebra protocol')).results.length).toBe(1);
    expect((await as(s.app, owner)({ method: 'DELETE', url: `/api/workspaces/${ws.slug}/documents/${id}` })).statusCode).toBe(204);
    expect((await search('zebra protocol')).results.length).toBe(0);
  });

  it('never returns another workspace’s chunks', async () => {
    const other = await signup(s.app, 'other@example.com');
    const ows = await createWorkspace(s.app, other, 'Other Team');
    const res = await upload([{ name: 'theirs.md', content: '# Theirs\n\nThe lease renewal happens in the other team too.' }], other, ows.slug);
    await waitFor(res.json().documents[0].id, ['indexed'], ows.slug, other);
    const mine = await search('lease renewal');
    expect(mine.results.every((r) => r.source !== 'theirs.md')).toBe(true);
    const theirs = await search('lease renewal', ows.slug, other);
    expect(theirs.results.map((r) => r.source)).toEqual(['theirs.md']);
    expect((await as(s.app, other)({ method: 'POST', url: `/api/workspaces/${ws.slug}/search`, payload: { query: 'lease' } })).statusCode).toBe(404);
  });
});
