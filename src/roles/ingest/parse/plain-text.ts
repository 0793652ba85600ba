// Plain text: paragraphs are separated by blank lines; line breaks inside a paragraph are treated as hard wrapping.
import type { ParsedDocument } from '../../../core/document-model.js';
import { DocumentBuilder } from './builder.js';
import { MIME } from './detect.js';

export function parsePlainText(text: string): ParsedDocument {
  const b = new DocumentBuilder();
  for (const para of text.replace(/\r\n?/g, '\n').split(/\n[ \t\f\v]*\n/)) b.block('paragraph', para);
  return b.build(MIME.text);
}
