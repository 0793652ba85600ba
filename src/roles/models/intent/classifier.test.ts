import { describe, expect, it } from 'vitest';
import { buildModel, evaluate, predict, trainIntentClassifier, type IntentRow } from './classifier.js';
import { extractTerms, tokenize } from './featurize.js';
import { stratifiedSplit } from './split.js';
import { DocupodError } from '../../../core/errors.js';

describe('featurizer', () => {
  it('lower-cases and splits on anything but letters and digits', () => {
    expect(tokenize("Can't log-in to ÉCRAN 2FA!")).toEqual(['can', 't', 'log', 'in', 'to', 'écran', '2fa']);
  });

  it('counts word unigrams, bigrams and padded character n-grams', () => {
    const terms = extractTerms('Hi hi', { wordNgrams: [1, 2], charNgrams: [2, 3] });
    expect(terms.get('w:hi')).toBe(2);
    expect(terms.get('w:hi hi')).toBe(1);
    expect(terms.get('c: h')).toBe(2);
    expect(terms.get('c:hi ')).toBe(2);
    expect(terms.has('c:hi')).toBe(true);
  });
});

describe('predict', () => {
  // Two labels, two terms, weights chosen by hand.
  const toy = buildModel({
    name: 'toy',
    version: '1',
    labels: ['neg', 'pos'],
    featurizer: { wordNgrams: [1, 1], charNgrams: null },
    sublinearTf: true,
    vocabulary: ['w:bad', 'w:good'],
    idf: [2, 1],
    weights: [
      [1.5, -1], // neg
      [-1, 3], // pos
    ],
    bias: [0.1, -0.1],
  });

  it('matches probabilities computed by hand', () => {
    // "good" twice, "bad" once, "movie" unknown. tf = 1 + ln(count); × idf; L2-normalised.
    const bad = 1 * 2;
    const good = (1 + Math.log(2)) * 1;
    const norm = Math.sqrt(bad * bad + good * good);
    const scoreNeg = 0.1 + 1.5 * (bad / norm) - 1 * (good / norm);
    const scorePos = -0.1 - 1 * (bad / norm) + 3 * (good / norm);
    const pPos = Math.exp(scorePos) / (Math.exp(scoreNeg) + Math.exp(scorePos));

    const [p] = predict(toy, ['Good good BAD movie']);
    expect(p!.intent).toBe('pos');
    expect(p!.confidence).toBeCloseTo(pPos, 12);
    expect(p!.probabilities[0]).toBeCloseTo(1 - pPos, 12);
    expect(p!.probabilities[1]).toBeCloseTo(pPos, 12);
  });

  it('falls back to the biases for text with no known term', () => {
    const [p] = predict(toy, ['something else entirely']);
    const pNeg = Math.exp(0.1) / (Math.exp(0.1) + Math.exp(-0.1));
    expect(p).toEqual({ intent: 'neg', confidence: expect.closeTo(pNeg, 12), probabilities: [expect.closeTo(pNeg, 12), expect.closeTo(1 - pNeg, 12)] });
  });

  it('rejects a model whose parts disagree in size', () => {
    expect(() => buildModel({ ...toyParts(), idf: [1] })).toThrow(DocupodError);
    expect(() => buildModel({ ...toyParts(), weights: [[1, 2]] })).toThrow(/weights has 1 rows for 2 labels/);
  });
});

function toyParts() {
  return {
    name: 'toy',
    version: '1',
    labels: ['a', 'b'],
    featurizer: { wordNgrams: [1, 1] as [number, number], charNgrams: null },
    sublinearTf: true,
    vocabulary: ['w:x', 'w:y'],
    idf: [1, 1],
    weights: [
      [1, 0],
      [0, 1],
    ],
    bias: [0, 0],
  };
}

const rows: IntentRow[] = [
  ...['hello there', 'hi', 'hey you', 'good morning', 'hello friend', 'hiya', 'hey hello'].map((text) => ({ text, intent: 'greeting' })),
  ...['reset my password', 'forgot password', 'password expired', 'cannot log in', 'locked out, reset it', 'new password please', 'login fails'].map(
    (text) => ({ text, intent: 'reset_password' }),
  ),
  ...['invoice please', 'refund me', 'charged twice', 'billing address', 'my invoice is wrong', 'price of the plan', 'cancel subscription'].map(
    (text) => ({ text, intent: 'billing' }),
  ),
];

describe('trainIntentClassifier', () => {
  it('learns a small separable set', () => {
    const model = trainIntentClassifier(rows, { l2: 1e-3 });
    expect(model.labels).toEqual(['billing', 'greeting', 'reset_password']);
    expect(model.training?.converged).toBe(true);
    expect(evaluate(model, rows).accuracy).toBe(1);
    expect(predict(model, ['hello!', 'I forgot my password', 'where is my invoice']).map((p) => p.intent)).toEqual([
      'greeting',
      'reset_password',
      'billing',
    ]);
  });

  it('is deterministic: the same rows and options give the same weights', () => {
    const a = trainIntentClassifier(rows);
    const b = trainIntentClassifier(rows);
    expect(b.vocabulary).toEqual(a.vocabulary);
    expect(b.theta).toEqual(a.theta);
  });

  it('refuses a data set with a single intent', () => {
    expect(() => trainIntentClassifier(rows.filter((r) => r.intent === 'billing'))).toThrow(/at least 2 intents/);
  });
});

describe('evaluate', () => {
  it('reports accuracy, per-class precision/recall/F1 and a confusion matrix', () => {
    const model = buildModel(toyParts());
    // "x" → a, "y" → b
    const result = evaluate(model, [
      { text: 'x', intent: 'a' },
      { text: 'x', intent: 'a' },
      { text: 'y', intent: 'a' },
      { text: 'y', intent: 'b' },
    ]);
    expect(result.accuracy).toBe(0.75);
    expect(result.perClass.a).toEqual({ precision: 1, recall: 2 / 3, f1: 0.8, support: 3 });
    expect(result.perClass.b).toEqual({ precision: 0.5, recall: 1, f1: 2 / 3, support: 1 });
    expect(result.confusion).toEqual({ a: { a: 2, b: 1 }, b: { b: 1 } });
  });
});

describe('stratifiedSplit', () => {
  const many = Array.from({ length: 50 }, (_, i) => ({ text: `t${i}`, intent: i % 5 === 0 ? 'rare' : 'common' }));

  it('holds out the same share of every intent', () => {
    const { train, test } = stratifiedSplit(many, 0.2, 1);
    expect(test.filter((r) => r.intent === 'rare')).toHaveLength(2);
    expect(test.filter((r) => r.intent === 'common')).toHaveLength(8);
    expect(train).toHaveLength(40);
    expect(new Set([...train, ...test].map((r) => r.text)).size).toBe(50);
  });

  it('depends only on the seed', () => {
    expect(stratifiedSplit(many, 0.3, 9)).toEqual(stratifiedSplit(many, 0.3, 9));
    expect(stratifiedSplit(many, 0.3, 9).test).not.toEqual(stratifiedSplit(many, 0.3, 10).test);
  });

  it('keeps at least one training row per intent', () => {
    const { train } = stratifiedSplit([{ text: 'a', intent: 'x' }, { text: 'b', intent: 'y' }, { text: 'c', intent: 'y' }], 0.9, 1);
    expect(new Set(train.map((r) => r.intent))).toEqual(new Set(['x', 'y']));
  });
});
