import { describe, expect, it } from 'vitest';
import { formatAnswer, selectSentences } from '../../adapters/llm/extractive.js';
import type { SearchResult } from '../retrieval/contract.js';
import { resolveCitations } from './agent.js';

// Quotes are the sentences the answer used, wherever its [n] marker stands (issue 16, point 2). The dev-corpus
// version of these checks is test/answers-dev.test.ts.

const APT = 'Preferences are kept in a file as the following.\nPackage: *\nPin: release a=testing\n\nWhen you wish to install a package from unstable, you pin it with a priority above 500. The pin is read by apt.';
const VAC = 'VACUUM FULL rewrites the whole table. It takes an exclusive lock, so nothing else can read the table meanwhile. Plain VACUUM does not.';
const result = (text: string, i: number, charStart = 1000): SearchResult => ({
  chunkId: `00000000-0000-4000-8000-00000000000${i}`,
  documentId: `00000000-0000-4000-9000-00000000000${i}`,
  source: `doc${i}.md`,
  title: null,
  heading: '',
  headingPath: [],
  text,
  page: null,
  charStart,
  charEnd: charStart + text.length,
  score: 1,
});
const used = [{ n: 1, r: result(APT, 1) }, { n: 2, r: result(VAC, 2) }];
const inChunk = (c: { quote: string; quoteStart: number; quoteEnd: number }, r: SearchResult) => {
  expect(r.text.slice(c.quoteStart - r.charStart, c.quoteEnd - r.charStart).replace(/\s+/g, ' ')).toBe(c.quote);
};

describe('citations', () => {
  it('quotes the sentence before a marker that stands after the full stop (the extractive form)', () => {
    const answer = 'When you wish to install a package from unstable, you pin it with a priority above 500. [1] It takes an exclusive lock, so nothing else can read the table meanwhile. [2]';
    const [a, b] = resolveCitations(answer, used);
    expect(a!.quote).toBe('When you wish to install a package from unstable, you pin it with a priority above 500.');
    expect(b!.quote).toBe('It takes an exclusive lock, so nothing else can read the table meanwhile.');
    inChunk(a!, used[0]!.r);
    inChunk(b!, used[1]!.r);
  });

  it('quotes the same sentence when the marker stands before the full stop, and for [1][2] groups', () => {
    const [a] = resolveCitations('When you wish to install a package from unstable, you pin it with a priority above 500 [1].', used);
    expect(a!.quote).toMatch(/^When you wish to install/);
    const both = resolveCitations('The pin is read by apt. [1][2]', used);
    expect(both.map((c) => c.n)).toEqual([1, 2]);
    expect(both[0]!.quote).toBe('The pin is read by apt.');
  });

  it('quotes consecutive sentences that share one marker as one span', () => {
    const [b] = resolveCitations('VACUUM FULL rewrites the whole table. It takes an exclusive lock, so nothing else can read the table meanwhile. [2]', used);
    expect(b!.quote).toBe('VACUUM FULL rewrites the whole table. It takes an exclusive lock, so nothing else can read the table meanwhile.');
    inChunk(b!, used[1]!.r);
  });

  it("finds a model's paraphrase by its key words, and leaves an uncited sentence before it out", () => {
    const answer = 'Here is what I found. Running VACUUM FULL locks the table exclusively, blocking reads [2]. You raise the pin priority above 500 to install from unstable [1].';
    const [a, b] = resolveCitations(answer, used);
    expect(b!.quote).toBe('It takes an exclusive lock, so nothing else can read the table meanwhile.');
    expect(a!.quote).toMatch(/^When you wish to install a package from unstable/);
  });

  it("round-trips the extractive answerer's own answers", () => {
    const sources = used.map((u) => ({ n: u.n, text: u.r.text, source: u.r.source }));
    const picks = selectSentences('Which lock does VACUUM FULL take, and how do I install a package from unstable?', sources);
    const answer = formatAnswer(picks);
    for (const c of resolveCitations(answer, used)) {
      expect(answer).toContain(c.quote);
      inChunk(c, used.find((u) => u.n === c.n)!.r);
    }
  });
});
