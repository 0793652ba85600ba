// Small language helpers shared by the extractive answerer and the agent: tokenising with stop words and a light
// suffix stemmer (no dictionary, so it works on any corpus), and sentence splitting that keeps character offsets.

const STOP = new Set(
  ('a an and are as at be been being but by can could did do does doing done for from had has have having he her here hers him his how i if in into is it its itself ' +
    'just me more most my no nor not of off on once only or other our ours out over own same she should so some such than that the their theirs them then there these they ' +
    'this those through to too under until up very was we were what when where which while who whom why will with would you your yours about above after again against all ' +
    'also any because before below between both during each few further s t don now let lets tell explain describe please need want use used using way ways get gets one ' +
    'thing things much many may might must shall whats wheres hows whos kind')
    .split(/\s+/),
);

/** Lowercase word stems without stop words; `keepStop` keeps them (for phrase matching). */
export function terms(text: string, keepStop = false): string[] {
  const out: string[] = [];
  // "how long", "how often"…: the question word, not a topic.
  let t = keepStop ? text : text.replace(/\bhow (long|often|many|much|far|old|big|large|fast|soon)\b/gi, ' ');
  // Key names and the like ("Ctrl-Z", "Alt-SysRq-B"): a one-letter part would be dropped as noise, so it stays joined.
  t = t.replace(/\b(\p{L}{2,})-(\p{L})\b(?!-?\p{L})/gu, '$1$2');
  for (const m of t.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const w = m[0];
    if (!keepStop && (STOP.has(w) || (w.length < 2 && !/\d/.test(w)))) continue;
    out.push(stem(w));
  }
  return out;
}

const IRREGULAR: Record<string, string> = { kept: 'keep', ran: 'run', made: 'make', built: 'build', sent: 'send', written: 'writ', wrote: 'writ', chosen: 'choos', found: 'find', held: 'hold', left: 'leav', lost: 'los', read: 'read', set: 'set', shown: 'show', taken: 'tak', took: 'tak', given: 'giv', gave: 'giv', began: 'begin', begun: 'begin' };

/** A deliberately light English suffix stemmer: enough to match night/nightly, dump/dumps, restore/restoring. */
export function stem(w: string): string {
  if (IRREGULAR[w]) return IRREGULAR[w];
  if (w.length <= 3 || /\d/.test(w)) return w;
  const rules: Array<[RegExp, string]> = [
    [/ies$/, 'y'],
    [/sses$/, 'ss'],
    [/([^s])s$/, '$1'],
    [/ingly$/, ''],
    [/edly$/, ''],
    [/ing$/, ''],
    [/ed$/, ''],
    [/ly$/, ''],
    [/ment$/, ''],
    [/ation$/, 'ate'],
    [/er$/, ''],
    [/e$/, ''],
  ];
  for (const [re, rep] of rules) {
    if (re.test(w)) {
      const s = w.replace(re, rep);
      if (s.length >= 3) return s;
    }
  }
  return w;
}

export interface Sentence {
  text: string;
  start: number;
  end: number;
}

/**
 * Sentences of a text with their offsets: split after . ! ? followed by space and a capital/digit/quote, and at line
 * breaks that end a list item or a heading. Abbreviations such as "e.g." and "i.e." do not end a sentence.
 */
export function sentences(text: string): Sentence[] {
  const out: Sentence[] = [];
  const push = (start: number, end: number) => {
    while (start < end && /\s/.test(text[start]!)) start++;
    while (end > start && /\s/.test(text[end - 1]!)) end--;
    if (end - start >= 3) out.push({ text: text.slice(start, end), start, end });
  };
  let start = 0;
  const re = /([.!?])(["')\]]*)\s+(?=["'([]?[\p{Lu}\p{N}])|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)|\n(?=#)/gu;
  for (const m of text.matchAll(re)) {
    const end = m.index + (m[1] ? m[1].length + (m[2]?.length ?? 0) : 0);
    const before = text.slice(Math.max(start, m.index - 5), m.index + 1).toLowerCase();
    if (m[1] === '.' && /(?:\be\.g|\bi\.e|\betc|\bvs|\bcf|\bno|\bfig|\bmr|\bdr|\bst)\.$/.test(before)) continue;
    push(start, end);
    start = m.index + m[0].length;
  }
  push(start, text.length);
  return out.flatMap((s) => tableRows(s));
}

/** A table laid out one row a line ("a | b | c") reads as one row a sentence, not as one run-on sentence. */
function tableRows(s: Sentence): Sentence[] {
  if (!s.text.includes('\n') || !/ \| /.test(s.text)) return [s];
  const out: Sentence[] = [];
  let at = 0;
  for (const line of s.text.split('\n')) {
    const lead = line.length - line.trimStart().length;
    const t = line.trim();
    if (t.length >= 3) out.push({ text: t, start: s.start + at + lead, end: s.start + at + lead + t.length });
    at += line.length + 1;
  }
  // Lines of prose wrapped inside a table cell would be cut apart: keep the sentence whole unless most lines are rows.
  return out.filter((x) => / \| /.test(x.text)).length * 2 >= out.length ? out : [s];
}

/** Collapses whitespace runs to one space. */
export function squash(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
