// The one shape every parser produces and the chunker consumes. Plain types (no zod): it crosses a worker-thread
// boundary by structured clone and is never validated at an HTTP edge, so a schema would only cost time.

export type BlockKind = 'paragraph' | 'table' | 'code' | 'list';

export interface DocumentBlock {
  kind: BlockKind;
  /**
   * Normalised text: paragraphs are single-spaced lines; tables are rows "a | b | c" (CSV rows "h: v; h: v") joined
   * by "\n"; lists are "- item" lines (nested items indented by two spaces); code keeps its line breaks.
   */
  text: string;
  /** 1-based page number, for formats that have pages (PDF). */
  page?: number;
}

export interface DocumentSection {
  /** Heading texts from the outermost to the innermost, e.g. ["Install", "On Debian"]; [] before the first heading. */
  headingPath: string[];
  blocks: DocumentBlock[];
}

export interface ParsedDocument {
  title?: string;
  /** The detected type (by content, not by the file name), e.g. "application/pdf". */
  mime: string;
  sections: DocumentSection[];
  /** Page count, for formats that have pages. */
  pages?: number;
}
