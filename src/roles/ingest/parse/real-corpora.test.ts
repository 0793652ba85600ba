// Pages real manuals have that a parser must still index (issue 16, point 5): a table of contents and nothing else,
// and a huge text file with no line breaks that happens to look like Markdown.
import { describe, expect, it } from 'vitest';
import { chunkDocument } from '../../../core/chunking.js';
import { DEFAULT_LIMITS, parseDocument, type ParseLimits } from './index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const limits: ParseLimits = { ...DEFAULT_LIMITS, timeoutMs: 20_000 };
const text = (doc: { sections: Array<{ blocks: Array<{ text: string }> }> }) => doc.sections.flatMap((s) => s.blocks.map((b) => b.text)).join('\n');

describe('pages of real corpora', () => {
  it('indexes the visible text of a table-of-contents page (DocBook div.toc) and of a links-only <nav> page', async () => {
    const toc = `<!DOCTYPE html><html><head><title>Part II</title></head><body><div class="navheader"><a href="p1.html">Prev</a></div>
      <div class="toc"><p><b>Table of Contents</b></p><dl><dt><a href="ch05.html">5. Network setup</a></dt><dt><a href="ch06.html">6. Printing with CUPS</a></dt></dl></div></body></html>`;
    const doc = await parseDocument(enc(toc), 'part2.html', limits);
    expect(text(doc)).toContain('5. Network setup');
    expect(text(doc)).toContain('6. Printing with CUPS');
    const links = await parseDocument(enc('<html><body><nav><ul><li><a href="a">Install guide</a></li><li><a href="b">Upgrade notes</a></li></ul></nav></body></html>'), 'links.html', limits);
    expect(text(links)).toMatch(/Install guide[\s\S]*Upgrade notes/);
  });

  it('still drops navigation from a page that has content of its own', async () => {
    const page = '<html><body><div class="toc"><a href="x">Table entry</a></div><nav>Menu</nav><p>The body text.</p></body></html>';
    expect(text(await parseDocument(enc(page), 'page.html', limits))).toBe('The body text.');
  });

  it('chunks a huge file with no line breaks as plain text, even named .md and full of Markdown emphasis', async () => {
    // "**a* " repeated is where marked's inline rules backtrack without end; ~2 MB on one line.
    const huge = `# Title [x](y) ${'**a* word '.repeat(200_000)}`;
    const t0 = performance.now();
    const doc = await parseDocument(enc(huge), 'dump.md', limits);
    expect(doc.mime).toBe('text/plain');
    const chunks = chunkDocument(doc);
    expect(chunks.length).toBeGreaterThan(100);
    expect(performance.now() - t0).toBeLessThan(15_000);
    // Ordinary Markdown keeps its structure.
    expect((await parseDocument(enc('# Title\n\nSome *text*.\n'), 'ok.md', limits)).mime).toBe('text/markdown');
  }, 30_000);
});
