// Detect, check limits, dispatch to the parser. Runs inside a worker thread (see pool.ts); it is also safe to call
// in-thread for trusted input, but then nothing enforces the wall-time limit.
import type { ParsedDocument } from '../../../core/document-model.js';
import { isDocupodError } from '../../../core/errors.js';
import { toStorableText } from '../../../core/storable-text.js';
import { parseCsv } from './csv.js';
import { detectType } from './detect.js';
import { parseDocx } from './docx.js';
import { parseHtml } from './html.js';
import { checkFileSize, unprocessable, type ParseLimits } from './limits.js';
import { parseMarkdown } from './markdown.js';
import { parsePdf } from './pdf.js';
import { parsePlainText } from './plain-text.js';
import { decodeText } from './text-decode.js';

export async function parseDocument(bytes: Uint8Array, filename: string, limits: ParseLimits): Promise<ParsedDocument> {
  return storableDocument(await parseByType(bytes, filename, limits));
}

/**
 * The document with its text made storable (core/storable-text.ts): a NUL (a PDF's title or glyphs, UTF-16 text, a
 * stray byte past the binary sniff's prefix) or a lone surrogate would otherwise fail the index write, and the file
 * with it. Cleaned once here, every parser included, rather than in each.
 */
function storableDocument(doc: ParsedDocument): ParsedDocument {
  const sections = doc.sections.map((s) => ({
    headingPath: s.headingPath.map(toStorableText),
    blocks: s.blocks.map((b) => ({ ...b, text: toStorableText(b.text) })).filter((b) => b.text.trim()),
  }));
  const out: ParsedDocument = { ...doc, sections: sections.filter((s) => s.blocks.length > 0) };
  if (doc.title !== undefined) out.title = toStorableText(doc.title);
  return out;
}

/** Longest line (characters) of a file parsed as Markdown; longer lines make it plain text (see parseByType). */
export const MAX_MARKDOWN_LINE = 20_000;

function longestLine(text: string): number {
  let longest = 0;
  let start = 0;
  for (let i = text.indexOf('\n'); ; i = text.indexOf('\n', start)) {
    const end = i < 0 ? text.length : i;
    longest = Math.max(longest, end - start);
    if (i < 0) return longest;
    start = i + 1;
  }
}

async function parseByType(bytes: Uint8Array, filename: string, limits: ParseLimits): Promise<ParsedDocument> {
  checkFileSize(bytes.byteLength, filename, limits);
  const type = detectType(bytes, filename);
  try {
    switch (type.kind) {
      case 'pdf':
        return await parsePdf(bytes, filename, limits);
      case 'docx':
        return await parseDocx(bytes, filename, limits);
      case 'html':
        return parseHtml(decodeText(bytes));
      case 'markdown': {
        const text = decodeText(bytes);
        // Markdown is line-oriented: a file of enormous lines (minified or generated text) has no structure to keep,
        // and marked's inline rules can backtrack for minutes on one such line ("**a* **a* …"). Plain text instead.
        return longestLine(text) > MAX_MARKDOWN_LINE ? parsePlainText(text) : parseMarkdown(text);
      }
      case 'csv':
        return parseCsv(decodeText(bytes), type.delimiter ?? ',', filename);
      case 'text':
        return parsePlainText(decodeText(bytes));
    }
  } catch (err) {
    if (isDocupodError(err)) throw err;
    // A library bug or a pathological file: still the file's problem from the user's point of view.
    throw unprocessable(`"${filename}" could not be parsed as ${type.mime}: ${(err as Error).message}`, err);
  }
}
