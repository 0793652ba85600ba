import { describe, expect, it } from 'vitest';
import { globToLike, reciprocalRankFusion } from './rank-fusion.js';

describe('reciprocalRankFusion', () => {
  it('ranks an item found high in both lists above items found in one', () => {
    const fused = reciprocalRankFusion([['a', 'b', 'c'], ['b', 'd', 'a']], (x) => x, 60);
    expect(fused.map((f) => f.item)).toEqual(['b', 'a', 'd', 'c']);
    expect(fused[0]!.score).toBeCloseTo(1 / 62 + 1 / 61, 12);
  });
});

describe('globToLike', () => {
  it('translates wildcards and escapes LIKE metacharacters', () => {
    expect(globToLike('docs/*_v?.md')).toBe('docs/%\\_v_.md');
    expect(globToLike('100%')).toBe('100\\%');
  });
});
