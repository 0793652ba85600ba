import { z } from 'zod';
import { defineContract, type ClientOf } from '../../http/contract.js';
import { statusMethod } from '../../core/role-status.js';

// The retrieval role's interface (the seeds' "vector DB" service), shared by its in-process and HTTP forms.

export const SearchMode = z.enum(['lexical', 'vector', 'hybrid']);
export type SearchMode = z.infer<typeof SearchMode>;

export const SearchRequest = z.object({
  query: z.string().trim().min(1, 'query must not be empty').max(2000),
  k: z.number().int().min(1).max(100).default(10),
  /** Default: hybrid when an embedder is configured and the database has pgvector, lexical otherwise. */
  mode: SearchMode.optional(),
  /** Only these documents. */
  documentIds: z.array(z.uuid()).max(1000).optional(),
  /** Only documents whose source matches one of these glob patterns (`*` any run of characters, `?` one). */
  sources: z.array(z.string().min(1).max(512)).max(50).optional(),
  /** Add a highlighted snippet (`<mark>` around matched terms) to each result. */
  highlight: z.boolean().default(false),
});
export type SearchRequest = z.infer<typeof SearchRequest>;

export const SearchResult = z.object({
  chunkId: z.uuid(),
  documentId: z.uuid(),
  source: z.string(),
  title: z.string().nullable(),
  heading: z.string(),
  headingPath: z.array(z.string()),
  text: z.string(),
  page: z.number().int().nullable(),
  charStart: z.number().int(),
  charEnd: z.number().int(),
  score: z.number(),
  highlight: z.string().optional(),
});
export type SearchResult = z.infer<typeof SearchResult>;

export const SearchResponse = z.object({
  results: z.array(SearchResult),
  mode: SearchMode,
  tookMs: z.number(),
  /** Why the search ran differently from what was asked, e.g. vector search paused while the workspace re-embeds. */
  notes: z.array(z.string()).optional(),
});
export type SearchResponse = z.infer<typeof SearchResponse>;

export const RetrievalContract = defineContract('retrieval', {
  status: statusMethod,
  search: { input: SearchRequest.extend({ workspaceId: z.uuid() }), output: SearchResponse },
});
export type RetrievalClient = ClientOf<typeof RetrievalContract>;
