import { describe, expect, it } from 'vitest';
import { distinctSources, ndcgAt, normalizeText, percentile, scoreQuestion, sourceMatches, summarize, summarizeByKind } from '../src/cli/eval.js';

// The eval metrics (shared/eval/README.md) on rankings made by hand, so every number `docupod eval` and the
// MiniSearch reference print is computed the way the definitions say.

const q = { id: 'q1', relevant: ['ch02.en.html', 'ch01.en.html'], answer: 'Remove  AUTO-installed packages' };
const chunk = (source: string, text = 'nothing here') => ({ source, text });

describe('eval metrics', () => {
  it('ranks distinct source files in the order of their first chunk', () => {
    expect(distinctSources([chunk('a'), chunk('b'), chunk('a'), chunk('c')])).toEqual(['a', 'b', 'c']);
  });

  it('matches a source by relative path or base name, not by a suffix of a name', () => {
    expect(sourceMatches('ch01.en.html', 'ch01.en.html')).toBe(true);
    expect(sourceMatches('manual/ch01.en.html', 'ch01.en.html')).toBe(true);
    expect(sourceMatches('xch01.en.html', 'ch01.en.html')).toBe(false);
  });

  it('scores the first relevant file by its rank among distinct files, not among chunks', () => {
    // chunks: x, x, y, ch01 → files x, y, ch01: rank 3 (the chunk rank would be 4)
    const s = scoreQuestion(q, [chunk('x'), chunk('x'), chunk('y'), chunk('ch01.en.html')]);
    expect(s.fileRank).toBe(3);
    expect(s.recallAt5).toBe(true);
    expect(s.reciprocalRankAt10).toBeCloseTo(1 / 3);
  });

  it('counts a relevant file at distinct rank 6 for MRR@10 but not for recall@5, and nothing past 10', () => {
    const six = scoreQuestion(q, ['a', 'b', 'c', 'd', 'e', 'ch02.en.html'].map((f) => chunk(f)));
    expect(six).toMatchObject({ fileRank: 6, recallAt5: false });
    expect(six.reciprocalRankAt10).toBeCloseTo(1 / 6);
    const eleven = scoreQuestion(q, [...'abcdefghij'].map((f) => chunk(f)).concat(chunk('ch02.en.html')));
    expect(eleven).toMatchObject({ fileRank: 11, recallAt5: false, reciprocalRankAt10: 0 });
  });

  it('finds the answer phrase in a chunk ignoring case and runs of whitespace, only within the first 5 chunks', () => {
    const text = 'Use apt autoremove to remove auto-installed\n  packages which are no longer required.';
    expect(scoreQuestion(q, [chunk('a'), chunk('ch02.en.html', text)])).toMatchObject({ answerRank: 2, answerInTop5: true });
    const late = scoreQuestion(q, [...'abcde'].map((f) => chunk(f)).concat(chunk('ch02.en.html', text)));
    expect(late).toMatchObject({ answerRank: 6, answerInTop5: false, fileRank: 6 });
    // Split across two chunks is not a hit: the phrase must be in one chunk's text.
    expect(scoreQuestion(q, [chunk('a', 'remove auto-installed'), chunk('a', 'packages')]).answerRank).toBeNull();
  });

  it('scores a question with nothing retrieved as a miss everywhere', () => {
    expect(scoreQuestion(q, [])).toEqual({ id: 'q1', fileRank: null, answerRank: null, recallAt5: false, reciprocalRankAt10: 0, ndcgAt10: 0, answerInTop5: false });
  });

  it('averages over questions', () => {
    const scores = [
      scoreQuestion(q, [chunk('ch02.en.html', 'remove auto-installed packages')]), // rank 1, answer 1
      scoreQuestion(q, [chunk('x'), chunk('ch01.en.html')]), // rank 2, no answer
      scoreQuestion(q, [chunk('x')]), // miss
      scoreQuestion(q, [...'abcd'].map((f) => chunk(f)).concat(chunk('ch02.en.html'))), // rank 5
    ];
    // nDCG@10 with two relevant files (ideal 1 + 1/log2 3 = 1.6309): ch02 at 1 → 1/1.6309; ch01 at 2 → 0.6309/1.6309;
    // ch02 at 5 → 0.3869/1.6309.
    const ndcg = (0.6131 + 0.3869 + 0 + 0.2372) / 4;
    expect(summarize(scores)).toEqual({ n: 4, recallAt5: 0.75, mrrAt10: Math.round(((1 + 1 / 2 + 0 + 1 / 5) / 4) * 1e4) / 1e4, ndcgAt10: expect.closeTo(ndcg, 3), answerInTop5: 0.25 });
    expect(summarize([])).toEqual({ n: 0, recallAt5: 0, mrrAt10: 0, ndcgAt10: 0, answerInTop5: 0 });
  });

  it('computes nDCG@10 with binary relevance over distinct files, as BEIR does (hand-computed values)', () => {
    const one = ['ch01.en.html'];
    // One relevant file: ideal DCG 1, so nDCG is 1/log2(rank + 1).
    expect(ndcgAt(one, ['ch01.en.html', 'x'])).toBe(1);
    expect(ndcgAt(one, ['x', 'ch01.en.html'])).toBeCloseTo(0.63093, 5); // 1/log2 3
    expect(ndcgAt(one, ['a', 'b', 'ch01.en.html'])).toBeCloseTo(0.5, 10); // 1/log2 4
    expect(ndcgAt(one, [...'abcdefghi', 'ch01.en.html'])).toBeCloseTo(0.28906, 5); // rank 10: 1/log2 11
    expect(ndcgAt(one, [...'abcdefghij', 'ch01.en.html'])).toBe(0); // rank 11 is past the cut
    // Three relevant files, two retrieved at ranks 1 and 3:
    // DCG = 1 + 1/log2 4 = 1.5; IDCG = 1 + 1/log2 3 + 1/log2 4 = 2.13093; nDCG = 0.70392.
    const three = ['a.html', 'b.html', 'c.html'];
    expect(ndcgAt(three, ['b.html', 'x', 'a.html'])).toBeCloseTo(0.70392, 5);
    // A relevant file matched by two sources (path and base name) counts once, so nDCG never exceeds 1.
    expect(ndcgAt(one, ['ch01.en.html', 'dir/ch01.en.html'])).toBe(1);
    expect(ndcgAt(['a.html', 'b.html'], ['a.html', 'sub/a.html'])).toBeCloseTo(1 / 1.63093, 5);
    expect(ndcgAt(one, [])).toBe(0);
  });

  it('breaks the summary down by question kind, questions without one under "none"', () => {
    const items = [{ id: 'a', kind: 'fact' }, { id: 'b', kind: 'howto' }, { id: 'c', kind: 'fact' }, { id: 'd' }];
    const hit = { ...scoreQuestion({ ...q, id: 'a' }, [chunk('ch02.en.html')]), answerHit: true };
    const miss = (id: string) => ({ ...scoreQuestion({ ...q, id }, [chunk('x')]), answerHit: false });
    const by = summarizeByKind(items, [hit, miss('b'), miss('c'), miss('d')]);
    expect(Object.keys(by)).toEqual(['fact', 'howto', 'none']);
    expect(by.fact).toMatchObject({ n: 2, recallAt5: 0.5, mrrAt10: 0.5, answerHit: 0.5 });
    expect(by.fact!.ndcgAt10).toBeCloseTo(0.5 / 1.63093, 3);
    expect(by.howto).toMatchObject({ n: 1, recallAt5: 0, answerHit: 0 });
    expect(by.none).toMatchObject({ n: 1 });
  });

  it('takes nearest-rank percentiles', () => {
    const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(xs, 50)).toBe(5);
    expect(percentile(xs, 99)).toBe(10);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('normalises case and whitespace only', () => {
    expect(normalizeText('  A\tB\n\nc-D ')).toBe('a b c-d');
  });
});
