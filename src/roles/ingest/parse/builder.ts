// Accumulates blocks under the current heading path, so every parser only reports "heading at level n" and "block".
import type { BlockKind, DocumentBlock, DocumentSection, ParsedDocument } from '../../../core/document-model.js';

/** Collapses runs of whitespace: paragraph text from HTML, PDF and hard-wrapped plain text reads as one line. */
export function squash(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Keeps line structure (code, tables, lists) but drops trailing spaces and leading/trailing blank lines. */
export function tidyLines(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .join('\n')
    .replace(/^\n+|\n+$/g, '');
}

export class DocumentBuilder {
  private readonly sections: DocumentSection[] = [];
  private readonly headings: Array<{ level: number; text: string }> = [];
  private current: DocumentSection | null = null;
  firstHeading: string | undefined;

  heading(level: number, rawText: string): void {
    const text = squash(rawText);
    if (!text) return;
    this.firstHeading ??= text;
    // A heading closes every open heading at its level or deeper; skipped levels (h1 then h3) simply nest.
    while (this.headings.length > 0 && this.headings[this.headings.length - 1]!.level >= level) this.headings.pop();
    this.headings.push({ level, text });
    this.current = null;
  }

  block(kind: BlockKind, rawText: string, page?: number): void {
    const text = kind === 'paragraph' ? squash(rawText) : tidyLines(rawText);
    if (!text.trim()) return;
    if (!this.current) {
      this.current = { headingPath: this.headings.map((h) => h.text), blocks: [] };
      this.sections.push(this.current);
    }
    const block: DocumentBlock = page === undefined ? { kind, text } : { kind, text, page };
    this.current.blocks.push(block);
  }

  build(mime: string, title?: string, pages?: number): ParsedDocument {
    const doc: ParsedDocument = { mime, sections: this.sections };
    const t = title !== undefined ? squash(title) : undefined;
    if (t) doc.title = t;
    if (pages !== undefined) doc.pages = pages;
    return doc;
  }
}
