import { chunkDocument, type ChunkOptions } from '../../core/chunking.js';
import type { ParsedDocument } from '../../core/document-model.js';
import { identifierText } from '../../core/identifiers.js';
import type { IndexChunk } from './index-writer.js';

/**
 * The chunker's output in the shape the index writer stores (one place to adapt if either side changes), with each
 * chunk's identifier words computed here: this runs in the parser's worker thread when the pool chunks (see
 * ParserPoolOptions.chunk), which keeps that CPU work off the thread that runs the database.
 */
export function chunkForIndex(doc: ParsedDocument, options: ChunkOptions): IndexChunk[] {
  return chunkDocument(doc, options).map((c) => ({
    text: c.text,
    headingPath: c.headingPath,
    page: c.page,
    charStart: c.charStart,
    charEnd: c.charEnd,
    tokenCount: c.tokenCount,
    identifiers: identifierText(c.text),
  }));
}

/** The text a chunk is embedded as: its title and heading path, then its text (ingestion and re-embedding alike). */
export function embeddingText(title: string | null | undefined, c: Pick<IndexChunk, 'headingPath' | 'text'>): string {
  const head = [title, ...c.headingPath].filter(Boolean).join(' > ');
  return head ? `${head}\n\n${c.text}` : c.text;
}
