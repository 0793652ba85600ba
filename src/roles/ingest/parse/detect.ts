// Type detection. The content decides; the file name only breaks ties between text formats, because uploads arrive
// with wrong extensions all the time (".txt" exports of web pages, PDFs saved as ".bin", CSVs named ".dat").
import { parse as parseCsv } from 'csv-parse/sync';
import { decodeText, looksBinary } from './text-decode.js';
import { unsupported } from './limits.js';
import { readZipEntries } from './zip.js';

export type DocumentKind = 'pdf' | 'docx' | 'html' | 'markdown' | 'text' | 'csv';

export const MIME: Record<DocumentKind, string> = {
  pdf: 'application/pdf',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  html: 'text/html',
  markdown: 'text/markdown',
  text: 'text/plain',
  csv: 'text/csv',
};

export interface DetectedType {
  kind: DocumentKind;
  mime: string;
  /** For CSV: the delimiter that made the rows consistent. */
  delimiter?: string;
}

const EXTENSIONS: Record<string, DocumentKind> = {
  pdf: 'pdf', docx: 'docx', html: 'html', htm: 'html', xhtml: 'html', md: 'markdown', markdown: 'markdown',
  mdx: 'markdown', txt: 'text', text: 'text', log: 'text', csv: 'csv', tsv: 'csv',
};

/** Binary formats people upload by mistake, named so the error says what the file actually is. */
const KNOWN_BINARIES: Array<[number[], string]> = [
  [[0x89, 0x50, 0x4e, 0x47], 'a PNG image'],
  [[0xff, 0xd8, 0xff], 'a JPEG image'],
  [[0x47, 0x49, 0x46, 0x38], 'a GIF image'],
  [[0x1f, 0x8b], 'a gzip archive'],
  [[0xd0, 0xcf, 0x11, 0xe0], 'a legacy Office file (.doc/.xls/.ppt)'],
  [[0x7b, 0x5c, 0x72, 0x74, 0x66], 'an RTF file'],
];

function extensionOf(filename: string): string {
  const m = /\.([a-z0-9]+)$/i.exec(filename);
  return m ? m[1]!.toLowerCase() : '';
}

function startsWith(bytes: Uint8Array, sig: number[]): boolean {
  return sig.every((b, i) => bytes[i] === b);
}

const SUPPORTED = 'PDF, DOCX, HTML, Markdown, plain text or CSV';

export function detectType(bytes: Uint8Array, filename: string): DetectedType {
  const ext = extensionOf(filename);
  const hit = (kind: DocumentKind, delimiter?: string): DetectedType =>
    delimiter === undefined ? { kind, mime: MIME[kind] } : { kind, mime: MIME[kind], delimiter };

  // PDF readers accept the header anywhere in the first 1024 bytes (some generators prepend junk).
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 1024));
  if (head.includes('%PDF-')) return hit('pdf');

  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04]) || startsWith(bytes, [0x50, 0x4b, 0x05, 0x06])) {
    const entries = readZipEntries(bytes);
    if (entries?.some((e) => e.name === 'word/document.xml')) return hit('docx');
    const what = entries?.some((e) => e.name.startsWith('xl/'))
      ? 'an Excel workbook'
      : entries?.some((e) => e.name.startsWith('ppt/'))
        ? 'a PowerPoint presentation'
        : entries?.some((e) => e.name === 'mimetype')
          ? 'an OpenDocument file'
          : 'a zip archive';
    throw unsupported(`"${filename}" is ${what}, not a supported document; upload ${SUPPORTED}`);
  }
  for (const [sig, what] of KNOWN_BINARIES) {
    if (startsWith(bytes, sig)) throw unsupported(`"${filename}" is ${what}; upload ${SUPPORTED}`);
  }
  if (looksBinary(bytes)) {
    throw unsupported(`"${filename}" is a binary file of an unknown type; upload ${SUPPORTED}`);
  }

  // Text formats: judge a prefix, which is enough and keeps detection cheap on large files.
  const text = decodeText(bytes.subarray(0, 64 * 1024));
  if (isHtml(text, ext)) return hit('html');
  const extKind = EXTENSIONS[ext];
  // A ".csv" name lowers the bar (two consistent rows); a text-format name raises it, since a few lines of prose with
  // one comma each are consistent too.
  const minRows = extKind === 'csv' ? 2 : extKind === 'text' || extKind === 'markdown' ? 5 : 3;
  const delimiter = csvDelimiter(text, minRows, ext === 'tsv' ? '\t' : undefined);
  if (delimiter !== undefined && (extKind === 'csv' || !hasMarkdownSyntax(text))) return hit('csv', delimiter);
  if (extKind === 'csv') return hit('csv', ext === 'tsv' ? '\t' : ','); // a one-column or ragged CSV is still a CSV
  if (extKind === 'markdown' || extKind === 'text') return hit(extKind);
  return hit(hasMarkdownSyntax(text) ? 'markdown' : 'text');
}

function isHtml(text: string, ext: string): boolean {
  const start = text.replace(/^\uFEFF/, '').trimStart();
  // Strong signals decide whatever the name says.
  if (/^(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*<!doctype html/i.test(start)) return true;
  if (/^(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*<html[\s>]/i.test(start)) return true;
  if (/<(head|body)[\s>]/i.test(text) && /<\/(head|body)>/i.test(text)) return true;
  // A fragment (no <html>) that opens with markup and is mostly tags: HTML unless named Markdown, since Markdown
  // may legitimately begin with an HTML block.
  if (ext === 'md' || ext === 'markdown' || ext === 'mdx') return false;
  if (!start.startsWith('<')) return false;
  const blockTags = text.match(/<\/(p|div|h[1-6]|li|table|tr|td|section|article|span|a)>/gi);
  return (blockTags?.length ?? 0) >= 2;
}

function hasMarkdownSyntax(text: string): boolean {
  return (
    /^#{1,6}\s+\S/m.test(text) ||
    /^(```|~~~)/m.test(text) ||
    /^\s*\|?[\s:]*-{3,}[\s:]*\|/m.test(text) || // table separator row
    /\[[^\]]+\]\([^)]+\)/.test(text) ||
    /^\S.*\n(=+|-+)\s*$/m.test(text) // setext heading
  );
}

/**
 * The delimiter under which every row has the same number of fields (at least two), or undefined. Real CSV parsing
 * (quotes, escaped delimiters) decides, not a character count, so quoted commas do not spoil consistency.
 */
function csvDelimiter(text: string, minRows: number, only?: string): string | undefined {
  // Drop a possibly cut last line: the prefix may end mid-row.
  const sample = text.length >= 64 * 1024 ? text.slice(0, text.lastIndexOf('\n')) : text;
  for (const delimiter of only ? [only] : [',', '\t', ';', '|']) {
    if (!sample.includes(delimiter)) continue;
    let rows: string[][];
    try {
      rows = parseCsv(sample, { delimiter, skip_empty_lines: true, relax_quotes: false, to: 200 }) as string[][];
    } catch {
      continue;
    }
    if (rows.length < minRows) continue;
    const width = rows[0]!.length;
    if (width < 2 || !rows.every((r) => r.length === width)) continue;
    // A header row of long cells, or cells that read as sentences, is prose with commas, not a table.
    if (rows[0]!.some((cell) => cell.length > 120)) continue;
    const cells = rows.flat();
    const sentences = cells.filter((c) => /\S+\s+\S+/.test(c) && /[.!?]["')\]]?$/.test(c.trim())).length;
    if (sentences > cells.length * 0.25) continue;
    return delimiter;
  }
  return undefined;
}
