import { randomBytes } from 'node:crypto';
import { Document, HeadingLevel, Packer, Paragraph } from 'docx';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { makePdf } from './fixtures/ingest/pdf.js';
import { makeZip } from './fixtures/ingest/zip.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// Broken and hostile files through the public API, on the whole product. Every one must end in a clear error (at
// upload) or a `failed` document whose reason says what to do, and the server must keep serving and keep every
// document it already had. Real files made with real libraries (pdf-lib, docx) come first: they are the "other
// documents" each bad file must not disturb, and they prove text, headings and page numbers reach search results.

async function multipart(files: Array<{ name: string; content: string | Uint8Array }>) {
  const form = new FormData();
  for (const f of files) form.append('file', new Blob([f.content]), f.name);
  const req = new Request('http://x/', { method: 'POST', body: form });
  return { payload: Buffer.from(await req.arrayBuffer()), headers: { 'content-type': req.headers.get('content-type')! } };
}

const UPLOAD_LIMIT = 1024 * 1024;
const MAX_DECOMPRESSED = 8 * 1024 * 1024;

let s: TestServer;
let owner: Session;
let ws: { id: string; slug: string };
/** The good documents, with what they looked like once indexed: no bad file may change them. */
const keepers: Array<{ id: string; chunkCount: number; query: string; source: string }> = [];

type Doc = { id: string; state: string; error: string | null; chunkCount: number; source: string; title: string | null; pages: number | null };

async function upload(files: Array<{ name: string; content: string | Uint8Array }>) {
  return as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/documents`, ...(await multipart(files)) });
}

async function uploadOne(name: string, content: string | Uint8Array): Promise<Doc> {
  const res = await upload([{ name, content }]);
  expect(res.statusCode, res.body).toBe(202);
  return waitFor(res.json().documents[0].id);
}

async function waitFor(id: string): Promise<Doc> {
  for (let i = 0; i < 600; i++) {
    const doc = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents/${id}` })).json() as Doc;
    if (doc.state === 'indexed' || doc.state === 'failed') return doc;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`document ${id} never finished`);
}

type Hit = { documentId: string; source: string; text: string; heading: string; headingPath: string[]; page: number | null };
async function search(query: string): Promise<Hit[]> {
  const res = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/search`, payload: { query, k: 10 } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().results;
}

/** The server answers, and every good document is still indexed, unchanged and findable. */
async function expectOthersIntact() {
  expect((await s.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  for (const k of keepers) {
    const doc = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents/${k.id}` })).json() as Doc;
    expect(doc).toMatchObject({ state: 'indexed', chunkCount: k.chunkCount });
    expect((await search(k.query)).map((h) => h.documentId)).toContain(k.id);
  }
}

const PAGE_TOPICS = ['heliostat mirror alignment', 'quasar spectrum calibration', 'cryostat cooling schedule'];

async function realPdf(): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  pdf.setTitle('Observatory procedures');
  PAGE_TOPICS.forEach((topic, i) => {
    const page = pdf.addPage([612, 792]);
    const lines = [`Section ${i + 1}: ${topic}.`, ...Array.from({ length: 10 }, (_, j) => `Step ${j + 1} of the ${topic} procedure is written down on this page for the night crew.`)];
    lines.forEach((line, j) => page.drawText(line, { x: 50, y: 720 - j * 30, size: 11, font }));
  });
  return pdf.save();
}

async function realDocx(): Promise<Uint8Array> {
  const doc = new Document({
    sections: [
      {
        children: [
          new Paragraph({ text: 'Operations Guide', heading: HeadingLevel.HEADING_1 }),
          new Paragraph({ text: 'Backups', heading: HeadingLevel.HEADING_2 }),
          new Paragraph('The nightly xylophone snapshot is copied to the vault before dawn and kept for thirty days.'),
          new Paragraph({ text: 'Monitoring', heading: HeadingLevel.HEADING_2 }),
          new Paragraph('Pager alerts fire when the marmalade queue grows beyond ten thousand entries.'),
        ],
      },
    ],
  });
  return new Uint8Array(await Packer.toBuffer(doc));
}

/** A PDF with a Standard security handler whose user password is not empty: readers must ask for a password. */
function encryptedPdf(): Uint8Array {
  const plain = Buffer.from(makePdf([{ paragraphs: ['Top secret budget figures.'] }])).toString('latin1');
  const hex = (n: number) => randomBytes(n).toString('hex');
  // A direct /Encrypt dictionary in the trailer (RC4, revision 2) with random O and U entries: no empty password
  // matches U, exactly as for a document protected with a real password.
  const encrypt = `/Encrypt << /Filter /Standard /V 1 /R 2 /Length 40 /P -44 /O <${hex(32)}> /U <${hex(32)}> >> /ID [<${hex(16)}> <${hex(16)}>]`;
  return new Uint8Array(Buffer.from(plain.replace('trailer\n<< ', `trailer\n<< ${encrypt} `), 'latin1'));
}

/** A DOCX whose document.xml inflates far beyond the limit; `lie` writes a tiny uncompressed size in the headers. */
function docxBomb(lie: boolean): Uint8Array {
  const W = 'http://schemas.openxmlformats.org/wordprocessingml/2006/main';
  const huge = `<?xml version="1.0"?><w:document xmlns:w="${W}"><w:body><w:p><w:r><w:t>${'A'.repeat(MAX_DECOMPRESSED * 4)}</w:t></w:r></w:p></w:body></w:document>`;
  return makeZip([
    { name: '[Content_Types].xml', data: '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>' },
    { name: 'word/document.xml', data: huge, ...(lie ? { declaredSize: 1024 } : {}) },
  ]);
}

beforeAll(async () => {
  s = await startTestServer({
    env: {
      DOCUPOD_UPLOAD_LIMIT: String(UPLOAD_LIMIT),
      DOCUPOD_INGEST_MAX_DECOMPRESSED_BYTES: String(MAX_DECOMPRESSED),
      DOCUPOD_CHUNK_TOKENS: '64',
      DOCUPOD_CHUNK_OVERLAP: '8',
    },
  });
  owner = await signup(s.app, 'owner@example.com');
  ws = await createWorkspace(s.app, owner, 'Bad input');
}, 120_000);
afterAll(async () => s?.close());

describe('real documents made with real libraries', () => {
  it('finds the text of a pdf-lib PDF with the page each passage is on', async () => {
    const doc = await uploadOne('observatory.pdf', await realPdf());
    expect(doc, doc.error ?? '').toMatchObject({ state: 'indexed', pages: 3, title: 'Observatory procedures' });
    for (const [i, topic] of PAGE_TOPICS.entries()) {
      const hits = (await search(topic)).filter((h) => h.documentId === doc.id);
      // A chunk carries the page of its first character, so some chunk of this topic starts on its page...
      expect(hits.some((h) => h.page === i + 1 && h.text.includes(`${topic} procedure`)), JSON.stringify(hits)).toBe(true);
      // ...and no chunk claims a page later than text it contains.
      for (const h of hits) for (const [j, other] of PAGE_TOPICS.entries()) if (h.text.includes(other)) expect(h.page).toBeLessThanOrEqual(j + 1);
    }
    keepers.push({ id: doc.id, chunkCount: doc.chunkCount, query: 'quasar spectrum calibration', source: 'observatory.pdf' });
  });

  it('finds the text of a docx-package DOCX under its heading path', async () => {
    const doc = await uploadOne('ops.docx', await realDocx());
    expect(doc, doc.error ?? '').toMatchObject({ state: 'indexed' });
    const [backup] = await search('xylophone snapshot vault');
    expect(backup).toMatchObject({ documentId: doc.id, heading: 'Backups' });
    expect(backup!.headingPath).toEqual(['Operations Guide', 'Backups']);
    expect(backup!.text).toContain('kept for thirty days');
    const [pager] = await search('marmalade queue');
    expect(pager).toMatchObject({ documentId: doc.id, heading: 'Monitoring' });
    keepers.push({ id: doc.id, chunkCount: doc.chunkCount, query: 'xylophone snapshot', source: 'ops.docx' });
  });

  it('indexes plain Markdown alongside', async () => {
    const doc = await uploadOne('runbook.md', '# Runbook\n\n## Failover\n\nPromote the standby with the zeppelin command, then repoint the clients.\n');
    expect(doc.state).toBe('indexed');
    keepers.push({ id: doc.id, chunkCount: doc.chunkCount, query: 'zeppelin standby', source: 'runbook.md' });
    await expectOthersIntact();
  });
});

describe('bad input', () => {
  it('fails a truncated PDF as unreadable', async () => {
    const whole = await realPdf();
    const doc = await uploadOne('cut.pdf', whole.slice(0, Math.floor(whole.length / 2)));
    expect(doc.state).toBe('failed');
    expect(doc.error).toMatch(/"cut\.pdf" is not a readable PDF/);
    expect(doc.chunkCount).toBe(0);
    await expectOthersIntact();
  });

  it('fails an encrypted PDF and asks for the password to be removed', async () => {
    const doc = await uploadOne('secret.pdf', encryptedPdf());
    expect(doc.state).toBe('failed');
    expect(doc.error).toMatch(/password-protected PDF; remove the password and upload it again/);
    expect(await search('budget figures')).toEqual([]);
    await expectOthersIntact();
  });

  it('refuses a DOCX zip bomb, whether its headers tell the truth or lie about the size', async () => {
    for (const lie of [false, true]) {
      const bomb = docxBomb(lie);
      expect(bomb.byteLength).toBeLessThan(UPLOAD_LIMIT); // small on the wire, 32 MiB inflated
      const doc = await uploadOne(`bomb-${lie ? 'lying' : 'honest'}.docx`, bomb);
      expect(doc.state).toBe('failed');
      expect(doc.error).toMatch(/unpack(s)? to .*the limit is 8\.0 MiB \(DOCUPOD_INGEST_MAX_DECOMPRESSED_BYTES\)/);
    }
    await expectOthersIntact();
  });

  it('fails random bytes named .pdf, saying they are not a document', async () => {
    const doc = await uploadOne('scan.pdf', new Uint8Array(randomBytes(16 * 1024)));
    expect(doc.state).toBe('failed');
    expect(doc.error).toMatch(/"scan\.pdf" is a binary file of an unknown type; upload PDF, DOCX, HTML, Markdown, plain text or CSV/);
    await expectOthersIntact();
  });

  it('reads text that is not valid UTF-8 as Windows-1252 instead of losing it', async () => {
    // "Grüße aus Köln: the café rota" in Windows-1252, plus a byte pair that is invalid UTF-8 (0xC3 0x28).
    const bytes = Buffer.concat([
      Buffer.from('Gr\xfc\xdfe aus K\xf6ln: the caf\xe9 rota changes on Mondays. ', 'latin1'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from(' Bring the tambourine.\n', 'latin1'),
    ]);
    const doc = await uploadOne('legacy.txt', new Uint8Array(bytes));
    expect(doc.state).toBe('indexed');
    const [hit] = await search('café rota tambourine');
    expect(hit?.documentId).toBe(doc.id);
    expect(hit!.text).toContain('Grüße aus Köln: the café rota');
    await expectOthersIntact();
  });

  it('fails an empty file with a reason instead of indexing nothing', async () => {
    const doc = await uploadOne('empty.md', '');
    expect(doc.state).toBe('failed');
    expect(doc.error).toBe('"empty.md" has nothing to index: the file is empty (0 bytes); upload it again with its content');
    await expectOthersIntact();
  });

  it('rejects a file over the upload limit with 413 and stores nothing from that request', async () => {
    const before = (await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents` })).json().total;
    const res = await upload([
      { name: 'fine.md', content: '# Fine\n\nThis small file rides along with a big one.' },
      { name: 'huge.txt', content: 'x'.repeat(UPLOAD_LIMIT + 200 * 1024) },
    ]);
    expect(res.statusCode).toBe(413);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ status: 413 });
    expect(res.json().detail).toMatch(/larger than the upload limit of 1048576 bytes \(DOCUPOD_UPLOAD_LIMIT\)/);
    expect((await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}/documents` })).json().total).toBe(before);
    await expectOthersIntact();
  });

  it('still ingests a good file after all of that', async () => {
    const doc = await uploadOne('after.md', '# After\n\nThe periscope log is rotated weekly.');
    expect(doc.state).toBe('indexed');
    expect((await search('periscope log'))[0]?.documentId).toBe(doc.id);
    await expectOthersIntact();
  });
});
