// Text → bag of terms. The same function runs at training and prediction time, so a saved model carries its
// FeaturizerOptions and never depends on the defaults of the code that loads it.

export interface FeaturizerOptions {
  /** Word n-gram range, inclusive: [1, 2] = unigrams and bigrams. */
  wordNgrams: [number, number];
  /** Character n-gram range inside word boundaries (like sklearn's `char_wb`), or null for none. */
  charNgrams: [number, number] | null;
}

export const defaultFeaturizerOptions: FeaturizerOptions = { wordNgrams: [1, 2], charNgrams: [2, 4] };

// Letters and digits in any script; apostrophes and punctuation split words ("can't" → "can", "t").
const WORD = /[\p{L}\p{N}]+/gu;

/** Lower-cased word tokens. NFKC first so full-width letters and ligatures match their plain forms. */
export function tokenize(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(WORD) ?? [];
}

/**
 * Term counts of one text. Keys are namespaced so a word never collides with a character n-gram:
 * `w:reset`, `w:reset password`, `c: re`.
 */
export function extractTerms(text: string, opts: FeaturizerOptions): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (term: string) => counts.set(term, (counts.get(term) ?? 0) + 1);
  const tokens = tokenize(text);
  const [wMin, wMax] = opts.wordNgrams;
  for (let n = Math.max(1, wMin); n <= wMax; n++) {
    for (let i = 0; i + n <= tokens.length; i++) add('w:' + tokens.slice(i, i + n).join(' '));
  }
  if (opts.charNgrams) {
    const [cMin, cMax] = opts.charNgrams;
    for (const token of tokens) {
      // Padding marks word starts and ends, which carries most of the signal for short utterances and typos.
      const padded = ` ${token} `;
      for (let n = Math.max(1, cMin); n <= cMax; n++) {
        for (let i = 0; i + n <= padded.length; i++) add('c:' + padded.slice(i, i + n));
      }
    }
  }
  return counts;
}
