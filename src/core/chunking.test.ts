import { describe, expect, it } from 'vitest';
import { chunkDocument, documentText, estimateTokens, renderChunkForIndex } from './chunking.js';
import type { DocumentBlock, ParsedDocument } from './document-model.js';

const sentence = (i: number) => `Sentence number ${i} talks about retrieval, chunking and citations in docupod.`;
const para = (from: number, n: number) => Array.from({ length: n }, (_, i) => sentence(from + i)).join(' ');
const doc = (sections: Array<[string[], DocumentBlock[]]>): ParsedDocument => ({
  mime: 'text/markdown',
  sections: sections.map(([headingPath, blocks]) => ({ headingPath, blocks })),
});

const big = doc([
  [['Guide'], [{ kind: 'paragraph', text: para(0, 3) }]],
  [['Guide', 'Install'], [{ kind: 'paragraph', text: para(100, 40) }, { kind: 'code', text: 'npm i\nnpm start' }, { kind: 'paragraph', text: para(200, 25) }]],
  [['Guide', 'Usage'], [{ kind: 'list', text: Array.from({ length: 60 }, (_, i) => `- step ${i} of the usage`).join('\n') }]],
  [['Reference'], [{ kind: 'paragraph', text: `${'x'.repeat(3000)} tail` }]],
]);

describe('estimateTokens', () => {
  it('counts about one token per short word and punctuation mark', () => {
    expect(estimateTokens('Hello, world!')).toBe(4);
    expect(estimateTokens('internationalization')).toBe(4);
    expect(estimateTokens('日本語')).toBe(3);
    expect(estimateTokens('')).toBe(0);
  });

  it('is additive across whitespace and never exceeds the length', () => {
    expect(estimateTokens('alpha beta.')).toBe(estimateTokens('alpha') + estimateTokens('beta.'));
    for (const s of ['x'.repeat(50), '...', 'a b c', '語'.repeat(9)]) expect(estimateTokens(s)).toBeLessThanOrEqual(s.length);
  });
});

describe('chunkDocument', () => {
  for (const [chunkTokens, overlapTokens] of [[256, 32], [64, 16], [32, 0]] as const) {
    it(`keeps every chunk within ${chunkTokens} tokens and its offsets exact (overlap ${overlapTokens})`, () => {
      const { text } = documentText(big);
      const chunks = chunkDocument(big, { chunkTokens, overlapTokens });
      expect(chunks.length).toBeGreaterThan(3);
      chunks.forEach((c, i) => {
        expect(c.index).toBe(i);
        expect(c.tokenCount).toBeLessThanOrEqual(chunkTokens);
        expect(c.tokenCount).toBe(estimateTokens(c.text));
        expect(text.slice(c.charStart, c.charEnd)).toBe(c.text);
        expect(c.text).toBe(c.text.trim());
      });
      // Nothing is lost: every character outside block separators is in some chunk.
      const covered = new Uint8Array(text.length);
      for (const c of chunks) covered.fill(1, c.charStart, c.charEnd);
      for (let i = 0; i < text.length; i++) if (!/\s/.test(text[i]!)) expect(covered[i]).toBe(1);
    });
  }

  it('overlaps consecutive chunks of one section and never across sections', () => {
    const chunks = chunkDocument(big, { chunkTokens: 64, overlapTokens: 16 });
    let overlapping = 0;
    for (let i = 1; i < chunks.length; i++) {
      const [a, b] = [chunks[i - 1]!, chunks[i]!];
      if (b.charStart < a.charEnd) {
        overlapping++;
        expect(b.headingPath).toEqual(a.headingPath);
        expect(estimateTokens(a.text.slice(b.charStart - a.charStart))).toBeLessThanOrEqual(16);
        expect(b.text.startsWith(a.text.slice(b.charStart - a.charStart))).toBe(true);
      }
    }
    expect(overlapping).toBeGreaterThan(5);
  });

  it('keeps heading paths and splits big sections by paragraphs, then sentences', () => {
    const chunks = chunkDocument(big, { chunkTokens: 64, overlapTokens: 8 });
    const install = chunks.filter((c) => c.headingPath.join('>') === 'Guide>Install');
    expect(install.length).toBeGreaterThan(3);
    // Chunks start at a sentence or at the overlap's word boundary, never mid-word.
    for (const c of install) expect(/^\S/.test(c.text) && /\s/.test(documentText(big).text[c.charStart - 1] ?? ' ')).toBe(true);
    expect(chunks.some((c) => c.headingPath.join('>') === 'Guide>Usage' && c.text.startsWith('- step'))).toBe(true);
    expect(chunks.at(-1)?.headingPath).toEqual(['Reference']);
  });

  it('merges a tiny section with its neighbour but not two large ones', () => {
    const d = doc([
      [['Intro'], [{ kind: 'paragraph', text: 'Short intro.' }]],
      [['Intro', 'Details'], [{ kind: 'paragraph', text: para(0, 4) }]],
      [['Other'], [{ kind: 'paragraph', text: para(10, 4) }]],
    ]);
    const chunks = chunkDocument(d, { chunkTokens: 256, overlapTokens: 32 });
    expect(chunks).toHaveLength(2);
    expect(chunks[0]!.text.startsWith('Short intro.\n\nSentence number 0')).toBe(true);
    expect(chunks[0]!.headingPath).toEqual(['Intro']); // common prefix of the merged sections
    expect(chunks[1]!.headingPath).toEqual(['Other']);
  });

  it('keeps the page of the first character', () => {
    const pdf: ParsedDocument = {
      mime: 'application/pdf',
      pages: 3,
      sections: [{ headingPath: [], blocks: [1, 2, 3].map((page) => ({ kind: 'paragraph' as const, text: para(page * 10, 8), page })) }],
    };
    const chunks = chunkDocument(pdf, { chunkTokens: 64, overlapTokens: 0 });
    expect(chunks[0]!.page).toBe(1);
    expect(chunks.at(-1)!.page).toBe(3);
    const { blocks } = documentText(pdf);
    for (const c of chunks) expect(c.page).toBe(blocks.filter((b) => b.start <= c.charStart).at(-1)!.page);
  });

  it('splits one enormous word into pieces within the limit', () => {
    const chunks = chunkDocument(doc([[[], [{ kind: 'code', text: 'A'.repeat(10_000) }]]]), { chunkTokens: 50, overlapTokens: 10 });
    expect(chunks.every((c) => c.tokenCount <= 50)).toBe(true);
    expect(chunks.map((c) => c.text).join('').replaceAll('A', '').length).toBe(0);
  });

  it('rejects options that cannot work', () => {
    expect(() => chunkDocument(big, { chunkTokens: 100, overlapTokens: 60 })).toThrow(RangeError);
    expect(() => chunkDocument(big, { chunkTokens: 0 })).toThrow(RangeError);
  });

  it('returns no chunks for an empty document', () => {
    expect(chunkDocument(doc([[['Empty'], [{ kind: 'paragraph', text: '   ' }]]]))).toEqual([]);
  });
});

describe('renderChunkForIndex', () => {
  it('puts the heading path before the text', () => {
    expect(renderChunkForIndex({ headingPath: ['Chapter', 'Section'], text: 'Body.' })).toBe('Chapter > Section\n\nBody.');
    expect(renderChunkForIndex({ headingPath: [], text: 'Body.' })).toBe('Body.');
    expect(renderChunkForIndex({ headingPath: ['Section'], text: 'Body.' }, 'Manual')).toBe('Manual > Section\n\nBody.');
    expect(renderChunkForIndex({ headingPath: ['Manual'], text: 'Body.' }, 'Manual')).toBe('Manual\n\nBody.');
  });
});
