// Reciprocal rank fusion (Cormack et al. 2009): score(d) = Σ 1 / (k + rank_i(d)). Robust to the lists' score scales
// differing (BM25 vs cosine), which is why hybrid search uses it instead of mixing raw scores.

export function reciprocalRankFusion<T>(lists: T[][], key: (item: T) => string, k = 60): Array<{ item: T; score: number }> {
  const fused = new Map<string, { item: T; score: number }>();
  for (const list of lists) {
    list.forEach((item, rank) => {
      const id = key(item);
      const entry = fused.get(id) ?? { item, score: 0 };
      entry.score += 1 / (k + rank + 1);
      fused.set(id, entry);
    });
  }
  return [...fused.values()].sort((a, b) => b.score - a.score);
}

/** A glob (`*`, `?`) as a SQL LIKE pattern, escaping LIKE's own metacharacters. */
export function globToLike(glob: string): string {
  return glob.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%').replace(/\?/g, '_');
}
