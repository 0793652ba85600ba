// Reading the `text,intent` CSV. Every problem with the file is a DocupodError (validation, 400) whose detail names
// the file and, where it applies, the line, because the person reading it is fixing a spreadsheet.

import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { DocupodError, Problems } from '../../../core/errors.js';
import type { IntentRow } from './classifier.js';

const REQUIRED = ['text', 'intent'] as const;

/** Parses CSV content with a header row containing `text` and `intent` (any order, extra columns ignored). */
export function parseIntentCsv(content: string, source = 'CSV'): IntentRow[] {
  let records: string[][];
  try {
    records = parse(content, { bom: true, skip_empty_lines: true }) as string[][];
  } catch (err) {
    throw new DocupodError(Problems.validation, `${source}: not valid CSV: ${(err as Error).message}`, {}, { cause: err });
  }
  const header = records[0];
  if (!header) {
    throw new DocupodError(Problems.validation, `${source}: the file is empty; expected a header row "text,intent"`);
  }
  const names = header.map((h) => h.trim().toLowerCase());
  const missing = REQUIRED.filter((c) => !names.includes(c));
  if (missing.length) {
    throw new DocupodError(
      Problems.validation,
      `${source}: missing column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')}; ` +
        `the header row must contain "text" and "intent", found "${header.join(',')}"`,
      { errors: missing.map((m) => ({ path: `header.${m}`, message: 'required column is missing' })) },
    );
  }
  const textAt = names.indexOf('text');
  const intentAt = names.indexOf('intent');
  const rows: IntentRow[] = [];
  const errors: Array<{ path: string; message: string }> = [];
  // Line numbers are 1-based and count the header; with skip_empty_lines they are approximate only after blank lines.
  records.slice(1).forEach((record, i) => {
    const line = i + 2;
    const text = (record[textAt] ?? '').trim();
    const intent = (record[intentAt] ?? '').trim();
    if (!text) errors.push({ path: `line ${line}.text`, message: 'empty text' });
    if (!intent) errors.push({ path: `line ${line}.intent`, message: 'empty intent' });
    if (text && intent) rows.push({ text, intent });
  });
  if (errors.length) {
    const shown = errors.slice(0, 5).map((e) => `${e.path}: ${e.message}`).join('; ');
    throw new DocupodError(
      Problems.validation,
      `${source}: ${errors.length} invalid value${errors.length > 1 ? 's' : ''} (${shown}${errors.length > 5 ? '; …' : ''})`,
      { errors: errors.slice(0, 100) },
    );
  }
  if (!rows.length) throw new DocupodError(Problems.validation, `${source}: no data rows after the header`);
  return rows;
}

export async function readIntentCsv(path: string): Promise<IntentRow[]> {
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DocupodError(Problems.notFound, `CSV file not found: ${path}`, {}, { cause: err });
    }
    throw err;
  }
  return parseIntentCsv(content, path);
}
