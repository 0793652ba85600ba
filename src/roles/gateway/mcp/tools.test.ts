import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../observability/logger.js';
import { createMetricsRegistry } from '../../../observability/metrics.js';
import type { IngestClient } from '../../ingest/contract.js';
import type { AuthService, Principal } from '../auth/service.js';
import { mcpMetrics } from './metrics.js';
import { chunkDocument, documentText } from '../../../core/chunking.js';
import type { ParsedDocument } from '../../../core/document-model.js';
import { buildMcpServer, snippet, stitch, type McpDeps } from './tools.js';

describe('stitch', () => {
  it('lays overlapping chunks end to end into the document’s text once, with a heading line per section', () => {
    const body = Array.from({ length: 60 }, (_, i) => `Sentence number ${i} says something about backups.`).join(' ');
    const text = `${body}\n\n${body.replace(/backups/g, 'deploys')}`;
    const chunks = [
      { start: 0, end: 1200, path: ['Guide', 'Backups'] },
      { start: 1100, end: body.length, path: ['Guide', 'Backups'] }, // overlaps the first by 100 characters
      { start: body.length + 2, end: text.length, path: ['Guide', 'Deploys'] },
    ].map((c, index) => ({
      chunkId: '00000000-0000-4000-8000-00000000000' + index,
      documentId: '00000000-0000-4000-8000-000000000009',
      index,
      text: text.slice(c.start, c.end),
      headingPath: c.path,
      page: index === 2 ? 3 : null,
      charStart: c.start,
      charEnd: c.end,
    }));
    expect(stitch(chunks)).toBe(`## Guide › Backups\n\n${body}\n\n## Guide › Deploys (page 3)\n\n${body.replace(/backups/g, 'deploys')}`);
  });

  it('matches the chunker’s own offsets', () => {
    const doc: ParsedDocument = {
      mime: 'text/plain',
      sections: [{ headingPath: [], blocks: Array.from({ length: 40 }, (_, i) => ({ kind: 'paragraph' as const, text: `Block ${i} holds words ${'and more words '.repeat(8)}end.` })) }],
    };
    const chunks = chunkDocument(doc, { chunkTokens: 64, overlapTokens: 16 });
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks[1]!.charStart).toBeLessThan(chunks[0]!.charEnd); // the chunker does overlap them
    const stitched = stitch(chunks.map((c) => ({ chunkId: '', documentId: '', index: c.index, text: c.text, headingPath: [], page: null, charStart: c.charStart, charEnd: c.charEnd })));
    expect(stitched).toBe(documentText(doc).text);
  });
});

describe('snippet', () => {
  it('keeps short text whole and cuts long text around the first query term, at word boundaries', () => {
    expect(snippet('  short   text ', 'x')).toBe('short text');
    const long = `${'filler words here '.repeat(40)}the backups are kept for 35 days ${'more words after '.repeat(40)}`;
    const s = snippet(long, 'how long are backups kept');
    expect(s).toContain('backups are kept for 35 days');
    expect(s.startsWith('…') && s.endsWith('…')).toBe(true);
    expect(s.length).toBeLessThanOrEqual(322);
    const inner = s.slice(1, -1);
    const at = long.replace(/\s+/g, ' ').indexOf(inner);
    expect(at).toBeGreaterThan(0);
    expect(long.replace(/\s+/g, ' ')[at - 1]).toBe(' '); // cut before a whole word
  });
});

describe('resources/list', () => {
  // Three workspaces of 3, 0 and 2 indexed documents, listed two at a time: the pages cross workspace boundaries and
  // skip the empty one, and every document comes exactly once.
  const spaces = [
    { id: 'a', slug: 'alpha', docs: 3 },
    { id: 'b', slug: 'beta', docs: 0 },
    { id: 'c', slug: 'gamma', docs: 2 },
  ];
  const deps = {
    auth: { memberships: async () => spaces.map((w) => ({ workspace: { id: w.id, slug: w.slug }, role: 'viewer' })) } as unknown as AuthService,
    ingest: {
      list: async ({ workspaceId, offset, limit, state }: { workspaceId: string; offset: number; limit: number; state?: string }) => {
        expect(state).toBe('indexed');
        const w = spaces.find((x) => x.id === workspaceId)!;
        const all = Array.from({ length: w.docs }, (_, i) => ({ id: `${w.slug}-${i}`, source: `${w.slug}/${i}.md`, title: null, pages: null }));
        return { documents: all.slice(offset, offset + limit), total: all.length };
      },
    } as unknown as IngestClient,
    metrics: mcpMetrics(createMetricsRegistry({ defaultMetrics: false })),
    write: false,
    version: 'test',
    resourcePageSize: 2,
  } as unknown as McpDeps;

  it('pages through every workspace the caller reads, by cursor', async () => {
    const server = buildMcpServer(deps, { principal: { userId: 'u' } as Principal, signal: new AbortController().signal, requestId: 'r', log: silentLogger() });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await server.connect(a);
    const client = new Client({ name: 't', version: '1' });
    await client.connect(b);
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listResources(cursor ? { cursor } : {});
      pages.push(page.resources.map((r) => r.uri));
      cursor = page.nextCursor;
    } while (cursor && pages.length < 10);
    expect(pages).toEqual([
      ['docupod://alpha/alpha-0', 'docupod://alpha/alpha-1'],
      ['docupod://alpha/alpha-2', 'docupod://gamma/gamma-0'],
      ['docupod://gamma/gamma-1'],
    ]);
    await client.close();
  });
});
