// PDF → document model with pdfjs (the legacy build, which is the one meant for Node). PDFs carry positioned
// glyph runs, not paragraphs: lines are rebuilt from the runs' baselines and paragraphs from the vertical gaps.
// Headings are not recovered (a PDF has no reliable structure), so every block sits under the empty heading path.
import type { ParsedDocument } from '../../../core/document-model.js';
import { DocumentBuilder } from './builder.js';
import { MIME } from './detect.js';
import { LimitEnv, tooLarge, unprocessable, type ParseLimits } from './limits.js';

interface Line {
  text: string;
  y: number;
  height: number;
}

// Loaded on first use: pdfjs is large, and text-only workloads should not pay for it.
let pdfjs: Promise<typeof import('pdfjs-dist/legacy/build/pdf.mjs')> | undefined;

export async function parsePdf(bytes: Uint8Array, filename: string, limits: ParseLimits): Promise<ParsedDocument> {
  pdfjs ??= import('pdfjs-dist/legacy/build/pdf.mjs');
  const { getDocument } = await pdfjs;
  // pdfjs takes ownership of (and may detach) the buffer it is given, so hand it a copy.
  const task = getDocument({
    data: bytes.slice(),
    isEvalSupported: false, // never compile code from a document (PostScript functions) — it is untrusted input
    disableFontFace: true,
    useSystemFonts: false,
    stopAtErrors: false,
    verbosity: 0,
  });
  let doc;
  try {
    doc = await task.promise;
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'PasswordException') {
      throw unprocessable(`"${filename}" is a password-protected PDF; remove the password and upload it again`, err);
    }
    throw unprocessable(`"${filename}" is not a readable PDF (${(err as Error).message})`, err);
  }
  try {
    if (doc.numPages > limits.maxPages) {
      throw tooLarge(
        `PDF has ${doc.numPages} pages; the limit is ${limits.maxPages} (${LimitEnv.maxPages}). ` +
          'Split the document or raise the limit.',
      );
    }
    let title: string | undefined;
    try {
      const meta = await doc.getMetadata();
      const t = (meta.info as { Title?: unknown } | undefined)?.Title;
      if (typeof t === 'string' && t.trim()) title = t;
    } catch {
      // Broken metadata never stops the text.
    }
    const b = new DocumentBuilder();
    for (let n = 1; n <= doc.numPages; n++) {
      const page = await doc.getPage(n);
      const content = await page.getTextContent();
      for (const para of paragraphs(linesOf(content.items))) b.block('paragraph', para, n);
      page.cleanup();
    }
    return b.build(MIME.pdf, title, doc.numPages);
  } finally {
    await doc.destroy();
  }
}

function linesOf(items: ReadonlyArray<unknown>): Line[] {
  const lines: Line[] = [];
  let cur: Line | null = null;
  for (const raw of items) {
    const item = raw as { str?: string; transform?: number[]; height?: number; hasEOL?: boolean };
    if (typeof item.str !== 'string') continue; // marked-content markers
    const y: number = item.transform?.[5] ?? cur?.y ?? 0;
    const height = Math.abs(item.height ?? 0) || Math.abs(item.transform?.[3] ?? 0) || 10;
    // A run whose baseline moved by more than half a line starts a new line even without an explicit EOL.
    if (cur && item.str && Math.abs(cur.y - y) > Math.max(cur.height, height) * 0.5) {
      lines.push(cur);
      cur = null;
    }
    if (item.str) {
      if (!cur) cur = { text: '', y, height };
      cur.text += item.str;
      cur.height = Math.max(cur.height, height);
    }
    if (item.hasEOL && cur) {
      lines.push(cur);
      cur = null;
    }
  }
  if (cur) lines.push(cur);
  return lines.filter((l) => l.text.trim());
}

/** Groups lines into paragraphs: a gap of well over one line height, or a jump upwards (new column), ends one. */
function paragraphs(lines: Line[]): string[] {
  const out: string[] = [];
  let buf = '';
  let prev: Line | null = null;
  for (const line of lines) {
    const gap = prev ? prev.y - line.y : 0;
    if (prev && (gap > Math.max(prev.height, line.height) * 1.7 || gap < -prev.height)) {
      out.push(buf);
      buf = '';
    }
    const text = line.text.trim();
    // Re-join words hyphenated at the end of a line ("infor-" + "mation"), but keep real hyphens ("well-" + "Known").
    if (buf && /\p{L}-$/u.test(buf) && /^\p{Ll}/u.test(text)) buf = buf.slice(0, -1) + text;
    else buf = buf ? `${buf} ${text}` : text;
    prev = line;
  }
  if (buf) out.push(buf);
  return out;
}
