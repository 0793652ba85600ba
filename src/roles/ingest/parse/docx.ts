// DOCX → HTML with mammoth (which maps Word's heading styles to h1..h6), then the HTML parser, so one piece of code
// decides what a heading, a table and a list are. The archive is checked for zip bombs first: mammoth inflates
// entries in memory without any limit.
import mammoth from 'mammoth';
import type { ParsedDocument } from '../../../core/document-model.js';
import { MIME } from './detect.js';
import { parseHtml } from './html.js';
import { unprocessable, type ParseLimits } from './limits.js';
import { assertZipWithinLimits } from './zip.js';

export async function parseDocx(bytes: Uint8Array, filename: string, limits: ParseLimits): Promise<ParsedDocument> {
  assertZipWithinLimits(bytes, filename, limits);
  let html: string;
  try {
    const result = await mammoth.convertToHtml(
      { buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) },
      // Images would arrive as base64 data URIs: large, and no text to index.
      { convertImage: mammoth.images.imgElement(() => Promise.resolve({ src: '' })) },
    );
    html = result.value;
  } catch (err) {
    throw unprocessable(`"${filename}" is not a readable Word document (${(err as Error).message})`, err);
  }
  return parseHtml(html, MIME.docx);
}
