/** One retrieved chunk as both search queries return it (snake_case: straight from SQL). */
export interface Row {
  chunk_id: string;
  document_id: string;
  source: string;
  title: string | null;
  heading_path: string[];
  text: string;
  page: number | null;
  char_start: number;
  char_end: number;
  score: number;
}
