// TF-IDF as in scikit-learn's TfidfVectorizer(sublinear_tf=True, smooth_idf=True, norm='l2'):
//   tf  = 1 + ln(count)
//   idf = ln((1 + n) / (1 + df)) + 1
//   x   = tf · idf / ‖tf · idf‖₂

export interface SparseVector {
  /** Feature indices, ascending. */
  indices: Int32Array;
  values: Float64Array;
}

export interface Vocabulary {
  /** Terms in feature order. */
  terms: string[];
  idf: Float64Array;
}

/** Builds the vocabulary (sorted, so it does not depend on row order) and smoothed idf from training documents. */
export function fitVocabulary(docs: ReadonlyArray<Map<string, number>>, minDf = 1): Vocabulary {
  const df = new Map<string, number>();
  for (const doc of docs) for (const term of doc.keys()) df.set(term, (df.get(term) ?? 0) + 1);
  const terms = [...df.entries()]
    .filter(([, n]) => n >= minDf)
    .map(([term]) => term)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const n = docs.length;
  const idf = new Float64Array(terms.length);
  terms.forEach((term, j) => (idf[j] = Math.log((1 + n) / (1 + df.get(term)!)) + 1));
  return { terms, idf };
}

/** One document's L2-normalised TF-IDF vector. Terms missing from the vocabulary are ignored. */
export function vectorize(
  counts: Map<string, number>,
  index: ReadonlyMap<string, number>,
  idf: Float64Array,
  sublinearTf: boolean,
): SparseVector {
  const pairs: Array<[number, number]> = [];
  let norm2 = 0;
  for (const [term, count] of counts) {
    const j = index.get(term);
    if (j === undefined) continue;
    const v = (sublinearTf ? 1 + Math.log(count) : count) * idf[j]!;
    pairs.push([j, v]);
    norm2 += v * v;
  }
  pairs.sort((a, b) => a[0] - b[0]);
  const norm = Math.sqrt(norm2) || 1;
  const indices = new Int32Array(pairs.length);
  const values = new Float64Array(pairs.length);
  pairs.forEach(([j, v], i) => {
    indices[i] = j;
    values[i] = v / norm;
  });
  return { indices, values };
}
