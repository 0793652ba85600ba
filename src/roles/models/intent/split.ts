// Seeded, stratified train/test split. bench/models/sklearn_app.py ports this exact algorithm (PRNG, label order,
// shuffle, rounding) so both classifiers are scored on the same held-out rows; change them together.

/** mulberry32: a small 32-bit PRNG, good enough for shuffling and identical in any language with 32-bit ints. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Split<T> {
  train: T[];
  test: T[];
}

/**
 * For each label (in sorted order), shuffles its rows (Fisher–Yates, one PRNG for the whole split) and puts
 * floor(n·testFraction + 0.5) of them in the test set, keeping at least one row of every label for training.
 */
export function stratifiedSplit<T extends { intent: string }>(rows: readonly T[], testFraction: number, seed: number): Split<T> {
  if (!(testFraction >= 0 && testFraction < 1)) throw new RangeError(`testFraction must be in [0, 1), got ${testFraction}`);
  const byLabel = new Map<string, T[]>();
  for (const row of rows) {
    const group = byLabel.get(row.intent);
    if (group) group.push(row);
    else byLabel.set(row.intent, [row]);
  }
  const labels = [...byLabel.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const random = mulberry32(seed);
  const train: T[] = [];
  const test: T[] = [];
  for (const label of labels) {
    const group = [...byLabel.get(label)!];
    for (let i = group.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [group[i], group[j]] = [group[j]!, group[i]!];
    }
    const nTest = Math.min(Math.floor(group.length * testFraction + 0.5), group.length - 1);
    test.push(...group.slice(0, nTest));
    train.push(...group.slice(nTest));
  }
  return { train, test };
}
