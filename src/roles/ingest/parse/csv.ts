// CSV → document model. Each row becomes "header: value; header: value" so that a chunk read on its own (by the
// retriever or the LLM) still says which value is which; rows are grouped into table blocks of bounded size so the
// chunker has natural boundaries.
import { parse } from 'csv-parse/sync';
import type { ParsedDocument } from '../../../core/document-model.js';
import { DocumentBuilder } from './builder.js';
import { MIME } from './detect.js';
import { unprocessable } from './limits.js';

const ROWS_PER_BLOCK = 20;
const CHARS_PER_BLOCK = 2000;

export function parseCsv(text: string, delimiter: string, filename: string): ParsedDocument {
  let rows: string[][];
  try {
    rows = parse(text, { delimiter, bom: true, skip_empty_lines: true, relax_column_count: true, trim: true }) as string[][];
  } catch (err) {
    const line = (err as { lines?: number }).lines;
    throw unprocessable(`"${filename}" is not valid CSV${line ? ` (line ${line})` : ''}: ${(err as Error).message}`, err);
  }
  const b = new DocumentBuilder();
  const header = rows[0] ?? [];
  // A header must name columns: if the first row looks like data (numbers or empty), number the columns instead.
  const named = header.length > 0 && header.every((h) => h !== '' && !/^[-+]?[\d.,]+$/.test(h));
  const names = (n: number) => (named && header[n] ? header[n] : `column ${n + 1}`);
  let group: string[] = [];
  let size = 0;
  const flush = () => {
    if (group.length) b.block('table', group.join('\n'));
    group = [];
    size = 0;
  };
  for (const row of named ? rows.slice(1) : rows) {
    const line = row
      .map((v, i) => (v === '' ? '' : `${names(i)}: ${v.replace(/\s+/g, ' ')}`))
      .filter(Boolean)
      .join('; ');
    if (!line) continue;
    if (group.length >= ROWS_PER_BLOCK || (size > 0 && size + line.length > CHARS_PER_BLOCK)) flush();
    group.push(line);
    size += line.length + 1;
  }
  flush();
  return b.build(MIME.csv, filename.replace(/^.*[\\/]/, '').replace(/\.[^.]+$/, '') || undefined);
}
