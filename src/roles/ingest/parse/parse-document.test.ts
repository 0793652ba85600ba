// Parsers and type detection, in-thread (the pool's own behaviour is in pool.test.ts). Fixtures are generated here:
// no binaries in the repository.
import { describe, expect, it } from 'vitest';
import { makePdf } from '../../../../test/fixtures/ingest/pdf.js';
import { makeDocx, makeZip } from '../../../../test/fixtures/ingest/zip.js';
import { DocupodError } from '../../../core/errors.js';
import { DEFAULT_LIMITS, detectType, parseDocument, type ParsedDocument, type ParseLimits } from './index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const limits: ParseLimits = { ...DEFAULT_LIMITS, timeoutMs: 10_000 };

/** Sections as "path › kind: text" lines: compact to assert on. */
function outline(doc: ParsedDocument): string[] {
  return doc.sections.flatMap((s) => s.blocks.map((b) => `${s.headingPath.join(' > ')} | ${b.kind}: ${b.text}`));
}

async function failure(p: Promise<unknown>): Promise<DocupodError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DocupodError);
  return err as DocupodError;
}

describe('parsers', () => {
  it('reads a two-page PDF with its pages, paragraphs and title', async () => {
    const pdf = makePdf(
      [{ paragraphs: ['First paragraph on page one.', 'Second paragraph (with parentheses).'] }, { paragraphs: ['Page two text.'] }],
      { title: 'Quarterly report' },
    );
    const doc = await parseDocument(pdf, 'report.pdf', limits);
    expect(doc).toMatchObject({ mime: 'application/pdf', pages: 2, title: 'Quarterly report' });
    expect(doc.sections.flatMap((s) => s.blocks)).toEqual([
      { kind: 'paragraph', text: 'First paragraph on page one.', page: 1 },
      { kind: 'paragraph', text: 'Second paragraph (with parentheses).', page: 1 },
      { kind: 'paragraph', text: 'Page two text.', page: 2 },
    ]);
  });

  it('keeps DOCX headings as the heading path and tables as rows', async () => {
    const docx = makeDocx([
      { heading: 1, text: 'Handbook' },
      { paragraph: 'Welcome to the team.' },
      { heading: 2, text: 'Holidays' },
      { paragraph: 'You get 30 days.' },
      { table: [['Year', 'Days'], ['2025', '30']] },
      { heading: 1, text: 'Appendix' },
      { paragraph: 'Contacts.' },
    ]);
    const doc = await parseDocument(docx, 'handbook.docx', limits);
    expect(doc.mime).toBe('application/vnd.openxmlformats-officedocument.wordprocessingml.document');
    expect(outline(doc)).toEqual([
      'Handbook | paragraph: Welcome to the team.',
      'Handbook > Holidays | paragraph: You get 30 days.',
      'Handbook > Holidays | table: Year | Days\n2025 | 30',
      'Appendix | paragraph: Contacts.',
    ]);
  });

  it('reads HTML headings, lists, tables and code, and drops scripts, styles and navigation', async () => {
    const html = `<!doctype html><html><head><title>Guide</title><style>p{color:red}</style></head><body>
      <nav><a href="/">Home</a> <a href="/x">Menu entry</a></nav>
      <h1>Install</h1><p>Run the   installer.<script>alert('x')</script></p>
      <h2>On Debian</h2><ul><li>apt update</li><li>apt install <b>docupod</b><ul><li>as root</li></ul></li></ul>
      <table><tr><th>a</th><th>b</th><th>c</th></tr><tr><td>1</td><td>2</td><td>3</td></tr></table>
      <pre>line 1
  line 2</pre>
      <h3>Notes</h3><p>Tom &amp; Jerry</p><h2>On Fedora</h2><div>Use dnf.</div></body></html>`;
    const doc = await parseDocument(enc(html), 'guide.html', limits);
    expect(doc.title).toBe('Guide');
    expect(outline(doc)).toEqual([
      'Install | paragraph: Run the installer.',
      'Install > On Debian | list: - apt update\n- apt install docupod\n  - as root',
      'Install > On Debian | table: a | b | c\n1 | 2 | 3',
      'Install > On Debian | code: line 1\n  line 2',
      'Install > On Debian > Notes | paragraph: Tom & Jerry',
      'Install > On Fedora | paragraph: Use dnf.',
    ]);
    expect(JSON.stringify(doc)).not.toMatch(/Menu entry|alert|color:red/);
  });

  it('reads indented HTML lists (whitespace between <ul> and <li>) without inventing items', async () => {
    const html = `<html><body><ul>\n  <li><p>one</p>\n    <ul>\n      <li>two</li>\n    </ul>\n  </li>\n  <li>three <table><tr><td>x</td></tr></table></li>\n</ul></body></html>`;
    const doc = await parseDocument(enc(html), 'list.html', limits);
    expect(outline(doc)).toEqual([' | list: - one\n  - two\n- three x']);
  });

  it('reads Markdown headings, paragraphs, lists, tables and code without markup', async () => {
    const md = [
      '# Docupod', '', 'Chat with **your** [documents](https://example.org).', '',
      '## Setup', '', '1. Install', '2. Run `docupod serve`', '', '```sh', 'npm start', '```', '',
      '| key | value |', '|-----|-------|', '| a | 1 |', '', '### Deep', '', '> Quoted text.', '',
      '# Other', '', 'Last line.',
    ].join('\n');
    const doc = await parseDocument(enc(md), 'README.md', limits);
    expect(doc).toMatchObject({ mime: 'text/markdown', title: 'Docupod' });
    expect(outline(doc)).toEqual([
      'Docupod | paragraph: Chat with your documents.',
      'Docupod > Setup | list: 1. Install\n2. Run docupod serve',
      'Docupod > Setup | code: npm start',
      'Docupod > Setup | table: key | value\na | 1',
      'Docupod > Setup > Deep | paragraph: Quoted text.',
      'Other | paragraph: Last line.',
    ]);
  });

  it('renders CSV rows as "header: value" text grouped in table blocks', async () => {
    const rows = Array.from({ length: 45 }, (_, i) => `${i},"Name, ${i}",${i % 2 ? 'yes' : ''}`);
    const doc = await parseDocument(enc(['id,name,active', ...rows].join('\r\n')), 'people.csv', limits);
    expect(doc.mime).toBe('text/csv');
    const blocks = doc.sections.flatMap((s) => s.blocks);
    expect(blocks.map((b) => b.kind)).toEqual(['table', 'table', 'table']);
    const lines = blocks.flatMap((b) => b.text.split('\n'));
    expect(lines).toHaveLength(45);
    expect(lines[0]).toBe('id: 0; name: Name, 0');
    expect(lines[1]).toBe('id: 1; name: Name, 1; active: yes');
  });

  it('splits plain text into paragraphs at blank lines', async () => {
    const doc = await parseDocument(enc('First line\nwrapped here.\n\n  \nSecond paragraph.\r\n\r\nThird.'), 'notes.txt', limits);
    expect(outline(doc)).toEqual([' | paragraph: First line wrapped here.', ' | paragraph: Second paragraph.', ' | paragraph: Third.']);
  });

  it('cleans text Postgres cannot store (NUL) out of titles, headings and blocks, whichever parser read it', async () => {
    const utf16Markdown = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('# Set\u0000up\n\nRun the\u0000 installer.\n\n- step\u0000 one\n', 'utf16le')]);
    const md = await parseDocument(utf16Markdown, 'guide.md', limits);
    expect(md.title).toBe('Setup');
    expect(outline(md)).toEqual(['Setup | paragraph: Run the installer.', 'Setup | list: - step one']);
    const pdf = await parseDocument(makePdf([{ paragraphs: ['Body text.'] }], { title: 'Annual\u0000 report' }), 'r.pdf', limits);
    expect(pdf.title).toBe('Annual report');
    const csv = await parseDocument(enc(`name,city\n${'Ann,Oslo\n'.repeat(1200)}Bo,Ber\u0000gen\n`), 'people.csv', limits);
    expect(outline(csv).at(-1)).toMatch(/city: Bergen$/);
  });

  it('reads a non-UTF-8 (windows-1252) text file instead of refusing it', async () => {
    const doc = await parseDocument(Uint8Array.from([0x63, 0x61, 0x66, 0xe9]), 'latin.txt', limits);
    expect(doc.sections[0]?.blocks[0]?.text).toBe('café');
  });
});

describe('detectType', () => {
  it('trusts the content over a lying extension', () => {
    expect(detectType(makePdf([{ paragraphs: ['x'] }]), 'notes.txt').kind).toBe('pdf');
    expect(detectType(makeDocx([{ paragraph: 'x' }]), 'scan.pdf').kind).toBe('docx');
    expect(detectType(enc('<!DOCTYPE html><html><body><p>x</p></body></html>'), 'page.md').kind).toBe('html');
    expect(detectType(enc('<div><p>a</p><p>b</p></div>'), 'fragment.txt').kind).toBe('html');
    expect(detectType(enc('a;b;c\n1;2;3\n4;5;6\n'), 'export.dat')).toMatchObject({ kind: 'csv', delimiter: ';' });
    expect(detectType(enc('# Title\n\ntext'), 'file.bin').kind).toBe('markdown');
  });

  it('falls back on the extension when the content is ambiguous', () => {
    expect(detectType(enc('just words'), 'a.md').kind).toBe('markdown');
    expect(detectType(enc('just words'), 'a.txt').kind).toBe('text');
    expect(detectType(enc('single column\nvalue'), 'a.csv').kind).toBe('csv');
    expect(detectType(enc('just words'), 'noext').kind).toBe('text');
  });

  it('does not mistake prose with commas or a Markdown table for CSV', () => {
    expect(detectType(enc('Hello, world.\nGood morning, sir.\nYes, indeed.\n'), 'a.txt').kind).toBe('text');
    expect(detectType(enc('| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n'), 'table.md').kind).toBe('markdown');
  });

  it('refuses binary and unsupported containers with 415 and says what the file is', () => {
    for (const [bytes, what] of [
      [Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]), 'PNG image'],
      [makeZip([{ name: 'xl/workbook.xml', data: '<x/>' }]), 'Excel workbook'],
      [Uint8Array.from([1, 2, 0, 3, 4]), 'binary file'],
    ] as const) {
      let err: unknown;
      try {
        detectType(bytes, 'upload.txt');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DocupodError);
      expect((err as DocupodError).status).toBe(415);
      expect((err as DocupodError).message).toContain(what);
      expect((err as DocupodError).extra.retryable).toBe(false);
    }
  });
});

describe('limits', () => {
  it('refuses a file over maxBytes with 413 naming the variable', async () => {
    const err = await failure(parseDocument(enc('x'.repeat(2048)), 'big.txt', { ...limits, maxBytes: 1024 }));
    expect(err.status).toBe(413);
    expect(err.message).toMatch(/"big.txt" is 2\.0 KiB; the limit is 1\.0 KiB \(DOCUPOD_INGEST_MAX_BYTES\)/);
    expect(err.extra.retryable).toBe(false);
  });

  it('refuses a PDF with more pages than maxPages', async () => {
    const pdf = makePdf(Array.from({ length: 12 }, (_, i) => ({ paragraphs: [`page ${i + 1}`] })));
    const err = await failure(parseDocument(pdf, 'long.pdf', { ...limits, maxPages: 10 }));
    expect(err.status).toBe(413);
    expect(err.message).toContain('PDF has 12 pages; the limit is 10 (DOCUPOD_INGEST_MAX_PAGES)');
  });

  it('refuses a DOCX zip bomb by its declared sizes', async () => {
    const bomb = makeDocx([{ paragraph: 'hi' }], [{ name: 'word/media/bomb.bin', data: new Uint8Array(8 * 1024 * 1024) }]);
    expect(bomb.length).toBeLessThan(64 * 1024); // 8 MiB of zeros deflates to a few KiB
    const err = await failure(parseDocument(bomb, 'bomb.docx', { ...limits, maxDecompressedBytes: 1024 * 1024 }));
    expect(err.status).toBe(413);
    expect(err.message).toMatch(/would unpack to 8\.0 MiB; the limit is 1\.0 MiB \(DOCUPOD_INGEST_MAX_DECOMPRESSED_BYTES\)/);
  });

  it('refuses a DOCX zip bomb whose headers understate the sizes', async () => {
    const bomb = makeDocx([{ paragraph: 'hi' }], [{ name: 'word/media/bomb.bin', data: new Uint8Array(8 * 1024 * 1024), declaredSize: 10 }]);
    const err = await failure(parseDocument(bomb, 'liar.docx', { ...limits, maxDecompressedBytes: 1024 * 1024 }));
    expect([413, 422]).toContain(err.status);
    expect(err.extra.retryable).toBe(false);
  });

  it('reports a truncated PDF as unprocessable', async () => {
    const pdf = makePdf([{ paragraphs: ['x'] }]);
    const err = await failure(parseDocument(pdf.subarray(0, 60), 'cut.pdf', limits));
    expect(err.status).toBe(422);
    expect(err.message).toContain('"cut.pdf" is not a readable PDF');
  });
});
