// Text Postgres can store. A text or jsonb value may not hold NUL (U+0000): Postgres refuses it (22021 for text,
// 22P05 for jsonb). A lone UTF-16 surrogate (U+D800–U+DFFF without its pair) is not Unicode: the drivers encode it as
// U+FFFD in text columns, so the row silently differs from what was sent, and JSON.stringify escapes it as \udXXX,
// which jsonb refuses (22P02). PGlite and Postgres 15 behave the same on all four. Input from users is refused with
// the field named (see http/storable-input.ts); text from parsed documents is cleaned instead (toStorableText).

export interface TextProblem {
  /** Where the value is, as the problem+json `errors[].path` names it: `body.name`, `querystring.q`, … */
  path: string;
  message: string;
}

/** Why Postgres cannot store `s` as given, or undefined when it can. */
export function unstorableTextReason(s: string): string | undefined {
  const nul = s.indexOf('\u0000');
  if (nul >= 0) return `contains a NUL character (U+0000) at position ${nul}, which cannot be stored; remove it`;
  if (!s.isWellFormed())
    return `contains an unpaired UTF-16 surrogate (U+D800–U+DFFF) at position ${firstLoneSurrogate(s)}, which is not valid Unicode; send well-formed UTF-8 text`;
  return undefined;
}

function firstLoneSurrogate(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      else return i;
    } else if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}

/** `s` with every NUL removed and every lone surrogate replaced by U+FFFD: what parsed document text is stored as. */
export function toStorableText(s: string): string {
  const cleaned = s.includes('\u0000') ? s.replaceAll('\u0000', '') : s;
  return cleaned.isWellFormed() ? cleaned : cleaned.toWellFormed();
}

const MAX_PROBLEMS = 10;

/**
 * Every string in `value` (object keys too, at any depth) that Postgres cannot store, at most ten, each with its
 * path under `root`. Walks breadth-first with a queue, not recursion (a request body may nest deeper than the call
 * stack allows), and builds a path only for a value it descends into or reports, so an array of numbers costs one loop.
 */
export function findUnstorableText(value: unknown, root: string): TextProblem[] {
  const problems: TextProblem[] = [];
  const report = (path: string, reason: string | undefined) => {
    if (reason && problems.length < MAX_PROBLEMS) problems.push({ path, message: reason });
  };
  if (typeof value === 'string') report(root, unstorableTextReason(value));
  const queue: Array<{ value: object; path: string }> = [];
  if (isWalkable(value)) queue.push({ value, path: root });
  for (let next = 0; next < queue.length && problems.length < MAX_PROBLEMS; next++) {
    const { value: v, path } = queue[next]!;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        if (typeof item === 'string') report(`${path}.${i}`, unstorableTextReason(item));
        else if (isWalkable(item)) queue.push({ value: item, path: `${path}.${i}` });
      }
      continue;
    }
    const keys = Object.keys(v);
    for (const key of keys) {
      const keyReason = unstorableTextReason(key);
      const keyPath = `${path}.${keyReason ? toStorableText(key) : key}`;
      if (keyReason) report(keyPath, `the key ${keyReason}`);
      const item: unknown = (v as Record<string, unknown>)[key];
      if (typeof item === 'string') report(keyPath, unstorableTextReason(item));
      else if (isWalkable(item)) queue.push({ value: item, path: keyPath });
    }
  }
  return problems;
}

const isWalkable = (v: unknown): v is object => v !== null && typeof v === 'object' && !ArrayBuffer.isView(v);

/** At most `max` UTF-16 units of `s`: one fewer when the cut would split a surrogate pair (and leave half of it). */
export function truncateText(s: string, max: number): string {
  if (s.length <= max) return s;
  const last = s.charCodeAt(max - 1);
  return s.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}
