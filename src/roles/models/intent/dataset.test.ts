import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocupodError, Problems } from '../../../core/errors.js';
import { parseIntentCsv, readIntentCsv } from './dataset.js';
import { runTrainIntent } from './train-intent.js';

/** Runs fn and returns the DocupodError it throws (fails the test if it throws anything else or nothing). */
async function docupodError(fn: () => unknown): Promise<DocupodError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DocupodError);
    return err as DocupodError;
  }
  throw new Error('expected a DocupodError');
}

describe('intent CSV', () => {
  let dir: string;
  beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), 'docupod-intent-csv-'))));
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads quoted fields, any column order and extra columns', () => {
    const rows = parseIntentCsv('\uFEFFid,Intent,text\n1,greeting,"hello, there"\n2,billing,"a ""quoted"" word"\n\n');
    expect(rows).toEqual([
      { text: 'hello, there', intent: 'greeting' },
      { text: 'a "quoted" word', intent: 'billing' },
    ]);
  });

  it('names the missing column of a malformed CSV', async () => {
    const path = join(dir, 'no-intent.csv');
    await writeFile(path, 'text,label\nhello,greeting\n');
    const err = await docupodError(() => runTrainIntent(path, join(dir, 'out')));
    expect(err.problem).toBe(Problems.validation);
    expect(err.status).toBe(400);
    expect(err.message).toBe(
      `${path}: missing column "intent"; the header row must contain "text" and "intent", found "text,label"`,
    );
    expect(err.extra.errors).toEqual([{ path: 'header.intent', message: 'required column is missing' }]);
  });

  it('reports rows with an empty value by line', async () => {
    const err = await docupodError(() => parseIntentCsv('text,intent\nhi,greeting\n,billing\nbye,\n', 'x.csv'));
    expect(err.message).toBe('x.csv: 2 invalid values (line 3.text: empty text; line 4.intent: empty intent)');
  });

  it('wraps CSV syntax errors', async () => {
    const err = await docupodError(() => parseIntentCsv('text,intent\n"unclosed,greeting\n', 'x.csv'));
    expect(err.problem).toBe(Problems.validation);
    expect(err.message).toMatch(/^x\.csv: not valid CSV: /);
    const ragged = await docupodError(() => parseIntentCsv('text,intent\nhi,greeting,extra\n', 'x.csv'));
    expect(ragged.message).toMatch(/^x\.csv: not valid CSV: .*/);
  });

  it('rejects an empty file and a header without rows', async () => {
    expect((await docupodError(() => parseIntentCsv('', 'x.csv'))).message).toMatch(/the file is empty/);
    expect((await docupodError(() => parseIntentCsv('text,intent\n', 'x.csv'))).message).toMatch(/no data rows/);
  });

  it('answers not-found for a missing file', async () => {
    const err = await docupodError(() => readIntentCsv(join(dir, 'nope.csv')));
    expect(err.problem).toBe(Problems.notFound);
    expect(err.message).toContain('nope.csv');
  });
});
