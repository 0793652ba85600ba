// The worker pool, with real worker threads. From the .ts sources the worker starts through dev/ts-worker-entry.mjs
// (see dev/ts-hooks.mjs), so these tests run the code under test, not a previous build.
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { makePdf } from '../../../../test/fixtures/ingest/pdf.js';
import { makeDocx } from '../../../../test/fixtures/ingest/zip.js';
import { DocupodError } from '../../../core/errors.js';
import { DEFAULT_LIMITS, ParserPool, type ParseLimits } from './index.js';
import { workerExecArgv } from './worker-exec-argv.js';

const enc = (s: string) => new TextEncoder().encode(s);
const limits: ParseLimits = { ...DEFAULT_LIMITS, timeoutMs: 20_000 };
const pools: ParserPool[] = [];
const pool = (size: number, l: ParseLimits = limits) => {
  const p = new ParserPool({ size, limits: l });
  pools.push(p);
  return p;
};
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

async function failure(p: Promise<unknown>): Promise<DocupodError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DocupodError);
  return err as DocupodError;
}

/** Markdown that takes marked several seconds to lex: a real slow file, not a test hook inside the worker. */
function slowMarkdown(): Uint8Array {
  const part = (i: number) => `## Heading ${i}\n\nSome *emphasis* and **strong** with a [link](http://x/${i}).\n\n- a\n- b\n  - c`;
  return enc(Array.from({ length: 40_000 }, (_, i) => part(i)).join('\n\n'));
}

describe('ParserPool', () => {
  it('parses every format in worker threads, several at once', async () => {
    const p = pool(2);
    const [pdf, docx, md, csv] = await Promise.all([
      p.parse(makePdf([{ paragraphs: ['one'] }, { paragraphs: ['two'] }]), 'a.pdf'),
      p.parse(makeDocx([{ heading: 1, text: 'Title' }, { paragraph: 'Body' }]), 'b.docx'),
      p.parse(enc('# H\n\ntext'), 'c.md'),
      p.parse(enc('a,b\n1,2\n'), 'd.csv'),
    ]);
    expect(pdf).toMatchObject({ mime: 'application/pdf', pages: 2 });
    expect(docx.sections[0]).toEqual({ headingPath: ['Title'], blocks: [{ kind: 'paragraph', text: 'Body' }] });
    expect(md.sections[0]?.headingPath).toEqual(['H']);
    expect(csv.sections[0]?.blocks[0]?.text).toBe('a: 1; b: 2');
    expect(p.stats).toMatchObject({ workers: 2, busy: 0, queued: 0, started: 2, timeouts: 0 });
  });

  it('keeps the DocupodError type, status and extras across the thread boundary', async () => {
    const p = pool(1, { ...limits, maxPages: 1 });
    const err = await failure(p.parse(makePdf([{ paragraphs: ['a'] }, { paragraphs: ['b'] }]), 'two.pdf'));
    expect(err.status).toBe(413);
    expect(err.problem.type).toBe('/problems/payload-too-large');
    expect(err.message).toBe('PDF has 2 pages; the limit is 1 (DOCUPOD_INGEST_MAX_PAGES). Split the document or raise the limit.');
    expect(err.extra).toEqual({ retryable: false });
  });

  it('terminates a worker that overruns the time limit and keeps serving', async () => {
    const p = pool(1, { ...limits, maxBytes: 1e9, timeoutMs: 300 });
    const started = Date.now();
    const err = await failure(p.parse(slowMarkdown(), 'huge.md'));
    expect(Date.now() - started).toBeLessThan(5_000); // the parse alone takes several seconds
    expect(err.status).toBe(422);
    expect(err.message).toContain('Parsing "huge.md" took longer than 300ms');
    expect(err.message).toContain('DOCUPOD_INGEST_PARSE_TIMEOUT');
    expect(err.extra.retryable).toBe(false);
    expect(p.stats).toMatchObject({ timeouts: 1, workers: 0 });

    const doc = await p.parse(enc('still here'), 'after.txt');
    expect(doc.sections[0]?.blocks[0]?.text).toBe('still here');
    expect(p.stats).toMatchObject({ started: 2, workers: 1 });
  });

  it('refuses a DOCX zip bomb without parsing it', async () => {
    const p = pool(1, { ...limits, maxDecompressedBytes: 2 * 1024 * 1024 });
    const bomb = makeDocx([{ paragraph: 'x' }], [{ name: 'word/document2.xml', data: new Uint8Array(16 * 1024 * 1024), declaredSize: 1 }]);
    const err = await failure(p.parse(bomb, 'bomb.docx'));
    expect([413, 422]).toContain(err.status);
    expect(err.extra.retryable).toBe(false);
  });

  it('refuses an oversize file before it reaches a worker', async () => {
    const p = pool(1, { ...limits, maxBytes: 100 });
    const err = await failure(p.parse(enc('x'.repeat(101)), 'big.txt'));
    expect(err.status).toBe(413);
    expect(p.stats.started).toBe(0);
  });

  it('queues work beyond its size and rejects the queue on close', async () => {
    const p = new ParserPool({ size: 1, limits: { ...limits, maxBytes: 1e9 } });
    const slow = p.parse(slowMarkdown(), 'slow.md').catch((e: unknown) => e);
    const queued = p.parse(enc('later'), 'later.txt').catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    expect(p.stats.queued + p.stats.busy).toBe(2);
    await p.close();
    expect(((await slow) as DocupodError).status).toBe(503);
    expect(((await queued) as DocupodError).status).toBe(503);
    await expect(p.parse(enc('x'), 'x.txt')).rejects.toMatchObject({ status: 503 });
  });

  const debianReference = '/usr/share/debian-reference/ch01.en.html';
  it.skipIf(!existsSync(debianReference))('parses a real DocBook page (Debian Reference, chapter 1)', async () => {
    const doc = await pool(1).parse(readFileSync(debianReference), 'ch01.en.html');
    expect(doc.mime).toBe('text/html');
    expect(doc.title).toMatch(/GNU\/Linux tutorials/);
    const paths = doc.sections.map((s) => s.headingPath);
    expect(paths.some((hp) => hp.length === 3 && hp[1]?.startsWith('1.1.'))).toBe(true);
    // Navigation bars and the table of contents are dropped: every section sits under the chapter heading.
    expect(paths.every((hp) => hp[0]?.startsWith('Chapter 1.'))).toBe(true);
    const kinds = new Set(doc.sections.flatMap((s) => s.blocks.map((b) => b.kind)));
    expect(kinds).toEqual(new Set(['paragraph', 'code', 'table', 'list']));
  });
});

describe('ParserPool under the process flags', () => {
  it('forwards to workers only options a Worker accepts', () => {
    expect(
      workerExecArgv(['--max-semi-space-size=2', '--input-type=module', '--import', './hooks.mjs', '--enable-source-maps', '--stack-size=900', '--conditions=dev', '--experimental-vm-modules', '-r', 'x.cjs']),
    ).toEqual(['--import', './hooks.mjs', '--enable-source-maps', '--conditions=dev', '--experimental-vm-modules', '-r', 'x.cjs']);
  });

  it('parses when the process runs with a V8 flag, as `npm start` does', async () => {
    // The filtered flags of a process started like `node --max-semi-space-size=2 …` start a worker that parses.
    const p = new ParserPool({ size: 1, limits, execArgv: workerExecArgv(['--max-semi-space-size=2', ...process.execArgv]) });
    pools.push(p);
    const doc = await p.parse(enc('# Title\n\nbody'), 'a.md');
    expect(doc.sections[0]?.headingPath).toEqual(['Title']);
  });

  it('a worker Node refuses to start fails every waiting file at once, not retryable, and keeps nothing queued', async () => {
    const p = new ParserPool({ size: 2, limits, execArgv: ['--max-semi-space-size=2'] });
    pools.push(p);
    const errs = await Promise.all([failure(p.parse(enc('a'), 'a.md')), failure(p.parse(enc('b'), 'b.md'))]);
    for (const err of errs) {
      expect(err.extra).toEqual({ retryable: false });
      expect(err.message).toMatch(/^the parser worker could not start: .*--max-semi-space-size=2.*not with the file/);
    }
    expect(p.stats).toMatchObject({ queued: 0, workers: 0, busy: 0 });
  });
});
