// Structure-aware chunking (pure: no I/O). A document's blocks are laid end to end, separated by a blank line, into
// one normalised text; every chunk is a slice of that text, so `text.slice(charStart, charEnd) === chunk.text` and a
// citation can quote and highlight the exact span. Chunks follow the document's sections: a chunk never spans two
// sections unless one of them is tiny (a heading with one short line would otherwise become a useless chunk).
// Inside a section, chunks are packed from whole blocks, then lines, sentences and words, in that order of
// preference, and consecutive chunks of a section overlap by a few words so a sentence cut at a boundary is still
// found whole in one of them.
import type { DocumentBlock, ParsedDocument } from './document-model.js';

export interface ChunkOptions {
  /** Upper bound for a chunk's size in estimated tokens (estimateTokens). Default 256. */
  chunkTokens?: number;
  /** Tokens of the previous chunk's tail repeated at the start of the next one, within a section. Default 32. */
  overlapTokens?: number;
  /** A section with fewer tokens than this may share a chunk with its neighbour. Default chunkTokens / 8. */
  minSectionTokens?: number;
}

export interface Chunk {
  index: number;
  text: string;
  headingPath: string[];
  /** Page of the chunk's first character, for paged formats. */
  page?: number;
  /** Offsets into documentText(doc).text (UTF-16 code units, end exclusive). */
  charStart: number;
  charEnd: number;
  tokenCount: number;
}

export interface BlockSpan {
  sectionIndex: number;
  blockIndex: number;
  start: number;
  end: number;
  page?: number;
}

export const DEFAULT_CHUNK_TOKENS = 256;
export const DEFAULT_OVERLAP_TOKENS = 32;

/** Separator between blocks in the document text; also what makes block boundaries visible to a reader. */
const BLOCK_SEPARATOR = '\n\n';

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/gu;

/**
 * Estimated token count, close to what BPE tokenizers (GPT, Llama, BERT word pieces) produce for European languages
 * without shipping a vocabulary: each run of letters/digits counts one token per started 6 characters (a common word
 * is one token, a long word two or three), each punctuation or symbol character counts one, and each CJK character
 * counts one (those scripts have no spaces and tokenize per character or so). Averages about 4 characters per token
 * on English prose. Two properties the chunker relies on: it never exceeds text.length, and it is additive across
 * whitespace (estimateTokens("a b") === estimateTokens("a") + estimateTokens("b")).
 */
export function estimateTokens(text: string): number {
  let tokens = 0;
  for (const m of text.matchAll(TOKEN_RUN)) tokens += runTokens(m[0]);
  return tokens;
}

/** A run of letters/digits, or one punctuation or symbol character: the unit estimateTokens counts. */
const TOKEN_RUN = /[\p{L}\p{M}\p{N}_]+|[^\s\p{L}\p{M}\p{N}_]/gu;
/** Below U+1100 (Hangul Jamo) no character is CJK: most runs skip the script test. */
const MAYBE_CJK = /[\u1100-\uffff]/;

function runTokens(run: string): number {
  if (run.length === 1) return 1;
  const cjk = MAYBE_CJK.test(run) ? (run.match(CJK)?.length ?? 0) : 0;
  const rest = run.length - cjk;
  return cjk + (rest > 0 ? Math.ceil(rest / 6) : 0);
}

/**
 * estimateTokens(text.slice(s, e)) for any range in O(log n): the text's runs are found once, with running totals.
 * A range cuts at most two runs (at its ends); a piece of a letter run is itself one run, counted directly. The
 * chunker asks for the tokens of growing ranges thousands of times per document, which re-scanning made quadratic.
 */
class TokenCounter {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  /** cum[i]: tokens of runs 0..i-1. */
  private readonly cum: number[] = [0];

  constructor(private readonly text: string) {
    let total = 0;
    for (const m of text.matchAll(TOKEN_RUN)) {
      this.starts.push(m.index);
      this.ends.push(m.index + m[0].length);
      total += runTokens(m[0]);
      this.cum.push(total);
    }
  }

  /** Index of the first run whose end is > pos. */
  private firstEndingAfter(pos: number): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid]! > pos) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Index of the first run whose start is >= pos. */
  private firstStartingAt(pos: number): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! >= pos) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  count(s: number, e: number): number {
    if (e <= s) return 0;
    const i = this.firstEndingAfter(s);
    const j = this.firstStartingAt(e); // runs i..j-1 intersect [s, e)
    if (i >= j) return 0;
    const piece = (k: number) => runTokens(this.text.slice(Math.max(s, this.starts[k]!), Math.min(e, this.ends[k]!)));
    if (j - i === 1) return piece(i);
    let total = this.cum[j - 1]! - this.cum[i + 1]!; // runs strictly between the two end runs
    total += piece(i) + piece(j - 1);
    return total;
  }
}

/** The canonical form of a block's text: NFC, "\n" line ends, no trailing spaces, no surrounding blank lines. */
export function normalizeBlockText(text: string): string {
  return text
    .normalize('NFC')
    .replace(/\r\n?/g, '\n')
    .replace(/[ \t\f\v\u00a0]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .replace(/^\s*\n|\s+$/g, '')
    .trimStart();
}

/**
 * The document's text as chunk offsets see it: every non-empty block, normalised, joined by a blank line. Heading
 * texts are not part of it (they travel as headingPath); store this string to resolve and quote citations.
 */
export function documentText(doc: ParsedDocument): { text: string; blocks: BlockSpan[] } {
  const parts: string[] = [];
  const blocks: BlockSpan[] = [];
  let pos = 0;
  doc.sections.forEach((section, sectionIndex) => {
    section.blocks.forEach((block: DocumentBlock, blockIndex) => {
      const t = normalizeBlockText(block.text);
      if (!t) return;
      if (parts.length > 0) {
        parts.push(BLOCK_SEPARATOR);
        pos += BLOCK_SEPARATOR.length;
      }
      const span: BlockSpan = { sectionIndex, blockIndex, start: pos, end: pos + t.length };
      if (block.page !== undefined) span.page = block.page;
      blocks.push(span);
      parts.push(t);
      pos += t.length;
    });
  });
  return { text: parts.join(''), blocks };
}

/** The text embedded and indexed for a chunk: its heading path as context, then the chunk itself. */
export function renderChunkForIndex(chunk: Pick<Chunk, 'headingPath' | 'text'>, title?: string): string {
  const path = title && chunk.headingPath[0] !== title ? [title, ...chunk.headingPath] : chunk.headingPath;
  return path.length > 0 ? `${path.join(' > ')}\n\n${chunk.text}` : chunk.text;
}

interface Unit {
  start: number;
  end: number;
  page?: number;
}

const sentenceSegmenter = new Intl.Segmenter(undefined, { granularity: 'sentence' });

/** Trimmed sub-ranges of [start, end) cut by `pieces` (each piece an offset range relative to `start`). */
function trimmedRanges(text: string, start: number, pieces: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [a, b] of pieces) {
    let s = start + a;
    let e = start + b;
    while (s < e && /\s/.test(text[s]!)) s++;
    while (e > s && /\s/.test(text[e - 1]!)) e--;
    if (e > s) out.push([s, e]);
  }
  return out;
}

/** Splits [start, end) into ranges of at most `max` tokens: by lines, then sentences, then words, then characters. */
function splitRange(text: string, counter: TokenCounter, start: number, end: number, max: number, level = 0): Array<[number, number]> {
  if (counter.count(start, end) <= max) return [[start, end]];
  const slice = text.slice(start, end);
  let pieces: Array<[number, number]>;
  if (level === 0) {
    pieces = [];
    let from = 0;
    for (const m of slice.matchAll(/\n/g)) {
      pieces.push([from, m.index]);
      from = m.index + 1;
    }
    pieces.push([from, slice.length]);
  } else if (level === 1) {
    pieces = [...sentenceSegmenter.segment(slice)].map((s) => [s.index, s.index + s.segment.length] as [number, number]);
  } else if (level === 2) {
    pieces = [...slice.matchAll(/\S+/g)].map((m) => [m.index, m.index + m[0].length] as [number, number]);
  } else {
    // A single "word" longer than a chunk (base64, a minified line): fixed windows. estimateTokens never exceeds
    // the length, so `max` code units are at most `max` tokens; never cut a surrogate pair in two.
    pieces = [];
    for (let a = 0; a < slice.length; ) {
      let b = Math.min(slice.length, a + max);
      if (b < slice.length && /[\uDC00-\uDFFF]/.test(slice[b]!)) b--;
      pieces.push([a, b]);
      a = b;
    }
    return pieces.map(([a, b]) => [start + a, start + b]);
  }
  const ranges = trimmedRanges(text, start, pieces);
  if (ranges.length <= 1) return splitRange(text, counter, start, end, max, level + 1);
  return ranges.flatMap(([s, e]) => splitRange(text, counter, s, e, max, level + 1));
}

function commonPrefix(paths: string[][]): string[] {
  const first = paths[0] ?? [];
  let n = first.length;
  for (const p of paths) {
    let i = 0;
    while (i < n && i < p.length && p[i] === first[i]) i++;
    n = i;
  }
  return first.slice(0, n);
}

interface Pending {
  start: number;
  end: number;
  /** Start of the section currently being added: overlap never reaches before it. */
  sectionStart: number;
  /** Sections contributing to the chunk, with their token share, to pick a heading path. */
  parts: Array<{ path: string[]; tokens: number }>;
  allTiny: boolean;
}

export function chunkDocument(doc: ParsedDocument, options: ChunkOptions = {}): Chunk[] {
  const chunkTokens = options.chunkTokens ?? DEFAULT_CHUNK_TOKENS;
  const overlapTokens = options.overlapTokens ?? DEFAULT_OVERLAP_TOKENS;
  const minSectionTokens = options.minSectionTokens ?? Math.floor(chunkTokens / 8);
  if (!Number.isInteger(chunkTokens) || chunkTokens < 8) throw new RangeError(`chunkTokens must be an integer ≥ 8, got ${chunkTokens}`);
  if (!Number.isInteger(overlapTokens) || overlapTokens < 0 || overlapTokens > chunkTokens / 2) {
    throw new RangeError(`overlapTokens must be an integer from 0 to chunkTokens / 2, got ${overlapTokens}`);
  }
  // Units leave room for the overlap, so "overlap + next unit" always fits in a chunk.
  const unitMax = chunkTokens - overlapTokens;

  const { text, blocks } = documentText(doc);
  const counter = new TokenCounter(text);
  const bySection = new Map<number, Unit[]>();
  for (const span of blocks) {
    const units = bySection.get(span.sectionIndex) ?? [];
    for (const [s, e] of splitRange(text, counter, span.start, span.end, unitMax)) {
      units.push(span.page === undefined ? { start: s, end: e } : { start: s, end: e, page: span.page });
    }
    bySection.set(span.sectionIndex, units);
  }
  const allUnits = [...bySection.values()].flat();
  const tokensOf = (s: number, e: number) => counter.count(s, e);
  const pageAt = (pos: number): number | undefined => {
    // Units are in text order; the last one starting at or before pos holds it.
    let lo = 0;
    let hi = allUnits.length - 1;
    let found: Unit | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (allUnits[mid]!.start <= pos) {
        found = allUnits[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found?.page;
  };

  const chunks: Chunk[] = [];
  const emit = (p: Pending) => {
    const paths = p.parts.map((x) => x.path);
    let headingPath = commonPrefix(paths);
    if (headingPath.length === 0 && p.parts.length > 1) {
      headingPath = [...p.parts].sort((a, b) => b.tokens - a.tokens)[0]!.path;
    } else if (p.parts.length === 1) headingPath = p.parts[0]!.path;
    const chunkText = text.slice(p.start, p.end);
    const chunk: Chunk = {
      index: chunks.length,
      text: chunkText,
      headingPath: [...headingPath],
      charStart: p.start,
      charEnd: p.end,
      tokenCount: counter.count(p.start, p.end),
    };
    const page = pageAt(p.start);
    if (page !== undefined) chunk.page = page;
    chunks.push(chunk);
  };
  const addPart = (p: Pending, path: string[], tokens: number) => {
    const last = p.parts[p.parts.length - 1];
    if (last && last.path === path) last.tokens += tokens;
    else p.parts.push({ path, tokens });
  };

  /** Start of the overlap: the earliest word start in the pending chunk's tail that keeps both limits. */
  const overlapStart = (p: Pending, next: Unit): number => {
    if (overlapTokens === 0) return next.start;
    const from = Math.max(p.start + 1, p.sectionStart);
    const tail = text.slice(from, p.end);
    const starts = [...tail.matchAll(/\S+/g)].map((m) => from + m.index);
    let best = next.start;
    let tokens = 0;
    for (let i = starts.length - 1; i >= 0; i--) {
      const s = starts[i]!;
      const wordEnd = i + 1 < starts.length ? starts[i + 1]! : p.end;
      tokens += tokensOf(s, wordEnd);
      if (tokens > overlapTokens) break;
      if (tokensOf(s, next.end) > chunkTokens) break;
      best = s;
    }
    return best;
  };

  let cur: Pending | null = null;
  doc.sections.forEach((section, sectionIndex) => {
    const units = bySection.get(sectionIndex);
    if (!units || units.length === 0) return;
    const first = units[0]!;
    const last = units[units.length - 1]!;
    const tiny = tokensOf(first.start, last.end) < minSectionTokens;
    const path = section.headingPath;
    if (cur) {
      // Join the pending chunk only if one side is tiny and the result stays within the limit: the pending chunk
      // holds nothing but tiny sections (then our first unit must fit), or this whole section fits after it.
      const fits = cur.allTiny
        ? tokensOf(cur.start, first.end) <= chunkTokens
        : tiny && tokensOf(cur.start, last.end) <= chunkTokens;
      if (!fits) {
        emit(cur);
        cur = null;
      }
    }
    // Overlap stays inside one section: repeating the end of another section would mislabel it.
    if (cur) cur.sectionStart = first.start;
    for (const unit of units) {
      if (!cur) {
        cur = { start: unit.start, end: unit.end, sectionStart: first.start, parts: [], allTiny: tiny };
        addPart(cur, path, tokensOf(unit.start, unit.end));
        continue;
      }
      if (tokensOf(cur.start, unit.end) <= chunkTokens) {
        addPart(cur, path, tokensOf(cur.end, unit.end));
        cur.end = unit.end;
        cur.allTiny &&= tiny;
        continue;
      }
      emit(cur);
      const start = overlapStart(cur, unit);
      cur = { start, end: unit.end, sectionStart: first.start, parts: [], allTiny: tiny };
      addPart(cur, path, tokensOf(start, unit.end));
    }
  });
  if (cur) emit(cur);
  return chunks;
}
