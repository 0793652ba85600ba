import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../../test/fixtures/database.js';
import { createMetricsRegistry } from '../../observability/metrics.js';
import { documents } from '../../storage/schema-documents.js';
import { workspaces } from '../../storage/schema.js';
import { writeDocumentIndex } from '../ingest/index-writer.js';
import { identifierText } from '../../core/identifiers.js';
import { createRetrievalService, type RetrievalDeps } from './service.js';

// Ranking behaviour the eval numbers rest on, each checked with a control that flips or removes it, so a regression
// (identifiers no longer kept whole, heading weight or proximity gone) fails here and not only in `npm run bench`.

describe('identifierText', () => {
  it('keeps identifiers whole and splits paths and file names into their parts', () => {
    expect(identifierText('set max_wal_size = 1GB')).toBe('maxwalsize');
    expect(identifierText('run pg_dump or pg-dump')).toBe('pgdump pgdump');
    expect(identifierText('edit /etc/apt/sources.list now')).toBe('etcaptsourceslist etc apt sources list');
    expect(identifierText('see /etc/shadow')).toBe('etcshadow etc shadow');
  });

  it('leaves URLs, version numbers and plain words alone', () => {
    expect(identifierText('see https://www.debian.org/doc/manuals/ and version 2.100 of the plain text')).toBe('');
  });
});

let t: TestDatabase;
let workspaceId: string;

async function addDocument(source: string, sections: Array<{ heading?: string; text: string }>): Promise<void> {
  const id = randomUUID();
  const db = t.database.db;
  await db.insert(documents).values({ id, workspaceId, source, contentHash: randomUUID().replace(/-/g, '').padEnd(64, '0'), sizeBytes: 1, blobKey: id, state: 'indexed' });
  let pos = 0;
  await writeDocumentIndex(db, {
    workspaceId,
    documentId: id,
    title: null,
    language: 'english',
    chunks: sections.map((s) => {
      const c = { text: s.text, headingPath: s.heading ? [s.heading] : [], charStart: pos, charEnd: pos + s.text.length, tokenCount: s.text.split(/\s+/).length };
      pos += s.text.length + 2;
      return c;
    }),
  });
}

function search(query: string, bm25?: RetrievalDeps['bm25']) {
  const service = createRetrievalService({ db: t.database.db, vectorEnabled: false, language: 'english', metrics: createMetricsRegistry({ defaultMetrics: false }), version: 'test', ready: async () => true, bm25 });
  return service.search({ workspaceId, query, k: 10, highlight: false, mode: 'lexical' }).then((r) => r.results.map((x) => x.source));
}

// Filler that matches none of the queries, to give documents comparable lengths.
const filler = (n: number) => Array.from({ length: n }, (_, i) => ['green', 'river', 'stone', 'cloud', 'paper', 'window', 'garden', 'music'][i % 8]).join(' ');

beforeAll(async () => {
  t = await freshDatabase();
  workspaceId = randomUUID();
  await t.database.db.insert(workspaces).values({ id: workspaceId, slug: 'ranking', name: 'ranking', description: '' });
  // Identifiers: one mention of the setting vs the same words, more often, as prose.
  await addDocument('setting.md', [{ text: `Raise max_wal_size to 4GB for bulk loads. ${filler(30)}` }]);
  await addDocument('prose.md', [{ text: `The max size of a wal segment and the max size of the wal archive differ. ${filler(20)}` }]);
  // As in real documentation, "max" and "size" are common words; the identifier is rare.
  for (const [i, words] of ['max file size', 'size of the max heap', 'upload size max', 'max open files'].entries())
    await addDocument(`other-${i}.md`, [{ text: `${words} ${filler(20 + i)}` }]);
  // Paths: Postgres keeps /etc/shadow whole, so "shadow" alone found nothing before parts were indexed.
  await addDocument('accounts.md', [{ text: `/etc/shadow holds secure user account information. ${filler(25)}` }]);
  // Headings: the same body words, once under a matching heading, twice elsewhere.
  await addDocument('heading.md', [{ heading: 'Umask defaults', text: `The umask shell builtin restricts new permissions. ${filler(30)}` }]);
  await addDocument('body.md', [{ heading: 'Shell notes', text: `umask appears here. The umask value. Shell builtin permissions. ${filler(27)}` }]);
  // Proximity: "sticky bit" adjacent in a longer chunk vs the two words apart in a shorter one.
  await addDocument('adjacent.md', [{ text: `The sticky bit on a directory prevents removal of other users' files. ${filler(40)}` }]);
  await addDocument('apart.md', [{ text: `A sticky note in the lab said: flip the bit. ${filler(10)}` }]);
});
afterAll(async () => t?.close());

describe('lexical ranking', () => {
  it('ranks an identifier written whole above the same words as prose, and prose above it for the words', async () => {
    // Proximity off: both forms put max/wal/size next to each other, so it would decide on its own.
    expect((await search('max_wal_size', { proximityWeight: 0 }))[0]).toBe('setting.md');
    expect((await search('max_wal_size'))[0]).toBe('setting.md');
    // Control: without the whole identifier, the query is just its words, and the prose has more of them.
    expect((await search('max wal size', { proximityWeight: 0 }))[0]).toBe('prose.md');
  });

  it('finds a path by one of its parts', async () => {
    expect(await search('shadow')).toEqual(['accounts.md']);
    expect((await search('/etc/shadow'))[0]).toBe('accounts.md');
  });

  it('ranks a match in a heading above more matches in the body', async () => {
    expect((await search('umask'))[0]).toBe('heading.md');
    // Control: with headings weighted below the body, the body matches win.
    expect((await search('umask', { headingBoost: 0.5 }))[0]).toBe('body.md');
  });

  it('ranks query words that stand next to each other above the same words apart', async () => {
    expect((await search('sticky bit'))[0]).toBe('adjacent.md');
    // Control: without the proximity bonus, plain BM25 prefers the shorter chunk.
    expect((await search('sticky bit', { proximityWeight: 0 }))[0]).toBe('apart.md');
  });
});

describe('top-k pruning', () => {
  it('returns the same chunks and scores as scoring every posting', async () => {
    // A workspace where one word is in every chunk (like "debian" in the Debian Reference), some are common and
    // some rare, so the pruned path skips postings, narrows its split, and must still agree exactly.
    const ws = randomUUID();
    const db = t.database.db;
    await db.insert(workspaces).values({ id: ws, slug: 'pruning', name: 'pruning', description: '' });
    const words = ['kernel', 'module', 'package', 'network', 'printer', 'locale', 'mirror', 'backup', 'firewall', 'sudo'];
    let seed = 3;
    const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    for (let d = 0; d < 4; d++) {
      const id = randomUUID();
      await db.insert(documents).values({ id, workspaceId: ws, source: `doc-${d}.md`, contentHash: randomUUID().replace(/-/g, '').padEnd(64, '0'), sizeBytes: 1, blobKey: id, state: 'indexed' });
      const chunks = Array.from({ length: 60 }, () => {
        const n = 3 + Math.floor(rand() * 12);
        // Word i appears with probability ~1/(i+1): "kernel" in most chunks, "sudo" in few.
        const text = ['debian', ...Array.from({ length: n }, () => words[Math.floor(words.length * rand() ** 2.5)]!), filler(Math.floor(rand() * 20))].join(' ');
        return { text, headingPath: rand() < 0.2 ? ['Kernel notes'] : [], charStart: 0, charEnd: text.length, tokenCount: n };
      });
      await writeDocumentIndex(db, { workspaceId: ws, documentId: id, title: null, language: 'english', chunks });
    }
    const run = (query: string, prune: boolean) =>
      createRetrievalService({ db, vectorEnabled: false, language: 'english', metrics: createMetricsRegistry({ defaultMetrics: false }), version: 'test', ready: async () => true, bm25: { prune }, lexicalCacheBytes: 0 })
        .search({ workspaceId: ws, query, k: 10, highlight: false, mode: 'lexical' })
        .then((r) => r.results.map((x) => [x.chunkId, x.score]));
    for (const query of ['debian sudo', 'debian kernel module', 'kernel module package', 'debian firewall backup mirror', 'kernel', 'locale debian', 'printer sudo kernel debian'])
      expect(await run(query, true), query).toEqual(await run(query, false));
  });
});
