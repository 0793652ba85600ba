import { describe, expect, it } from 'vitest';
import { findUnstorableText, toStorableText, truncateText, unstorableTextReason } from './storable-text.js';

describe('unstorableTextReason', () => {
  it('accepts ordinary text, emoji pairs and combining marks', () => {
    for (const s of ['', 'plain', 'Zürich – 東京', '😀👩‍👩‍👧', 'e\u0301', '\t\n\r\u0001\u007f']) expect(unstorableTextReason(s)).toBeUndefined();
  });

  it('names NUL and where it is', () => {
    expect(unstorableTextReason('ab\u0000c')).toMatch(/NUL character \(U\+0000\) at position 2/);
  });

  it('names a lone high or low surrogate and where it is', () => {
    expect(unstorableTextReason('x\ud800y')).toMatch(/unpaired UTF-16 surrogate .* at position 1/);
    expect(unstorableTextReason('😀\udc00')).toMatch(/at position 2/);
    expect(unstorableTextReason('\udbff')).toMatch(/at position 0/);
  });
});

describe('toStorableText', () => {
  it('drops NUL and replaces lone surrogates with U+FFFD, keeping pairs', () => {
    expect(toStorableText('a\u0000b\ud800c😀\udc00')).toBe('ab\ufffdc😀\ufffd');
    expect(unstorableTextReason(toStorableText('\u0000\udfff\ud800'))).toBeUndefined();
  });

  it('returns clean text unchanged', () => {
    const s = 'nothing to do 😀';
    expect(toStorableText(s)).toBe(s);
  });
});

describe('truncateText', () => {
  it('never leaves half a surrogate pair at the cut', () => {
    expect(truncateText(`${'a'.repeat(79)}😀 more`, 80)).toBe('a'.repeat(79));
    expect(truncateText(`${'a'.repeat(78)}😀 more`, 80)).toBe(`${'a'.repeat(78)}😀`);
    expect(truncateText('short', 80)).toBe('short');
  });
});

describe('findUnstorableText', () => {
  it('reports values and keys at any depth with their paths', () => {
    const problems = findUnstorableText({ name: 'ok', tags: ['fine', 'bad\u0000'], nested: { ['k\ud800']: 1, deeper: { text: '\udc00' } } }, 'body');
    expect(problems.map((p) => p.path)).toEqual(['body.tags.1', 'body.nested.k\ufffd', 'body.nested.deeper.text']);
    expect(problems[1]!.message).toMatch(/^the key contains an unpaired UTF-16 surrogate/);
  });

  it('checks a bare string and ignores numbers, booleans, null and typed arrays', () => {
    expect(findUnstorableText('\u0000', 'querystring')).toEqual([{ path: 'querystring', message: expect.stringMatching(/NUL/) }]);
    expect(findUnstorableText({ a: 1, b: true, c: null, d: new Uint8Array([0]), e: undefined }, 'body')).toEqual([]);
  });

  it('walks nesting far deeper than the call stack allows', () => {
    const depth = 200_000;
    const deep = JSON.parse(`${'['.repeat(depth)}"\\u0000"${']'.repeat(depth)}`) as unknown;
    const problems = findUnstorableText(deep, 'body');
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path.split('.')).toHaveLength(depth + 1);
  });

  it('stops at ten problems', () => {
    expect(findUnstorableText(Array.from({ length: 50 }, () => '\u0000'), 'body')).toHaveLength(10);
  });
});
