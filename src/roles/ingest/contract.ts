import { z } from 'zod';
import { defineContract, type ClientOf } from '../../http/contract.js';
import { statusMethod } from '../../core/role-status.js';
import { DOCUMENT_STATES } from '../../storage/schema-documents.js';

// The ingest role's interface, shared by its in-process and HTTP forms. Uploaded bytes never cross it: the gateway
// writes them to the shared blob store and submits the key, so a split deployment moves files once.

const Id = z.uuid();

export const DocumentProgress = z.object({
  step: z.string().optional(),
  bytes: z.number().int().optional(),
  pages: z.number().int().optional(),
  chunksDone: z.number().int().optional(),
  chunksTotal: z.number().int().optional(),
  etaSeconds: z.number().optional(),
});
export type DocumentProgress = z.infer<typeof DocumentProgress>;

export const DocumentInfo = z.object({
  id: Id,
  workspaceId: Id,
  source: z.string(),
  title: z.string().nullable(),
  mime: z.string().nullable(),
  sizeBytes: z.number().int(),
  contentHash: z.string(),
  state: z.enum(DOCUMENT_STATES),
  error: z.string().nullable(),
  pages: z.number().int().nullable(),
  chunkCount: z.number().int(),
  replacesId: Id.nullable(),
  progress: DocumentProgress,
  createdAt: z.string(),
  updatedAt: z.string(),
  indexedAt: z.string().nullable(),
});
export type DocumentInfo = z.infer<typeof DocumentInfo>;

export const SubmittedFile = z.object({
  source: z.string().min(1).max(1024),
  blobKey: z.string().min(1),
  sizeBytes: z.number().int().min(0),
  contentHash: z.string().regex(/^[0-9a-f]{64}$/),
});

export const SubmitResult = z.object({
  id: Id,
  source: z.string(),
  state: z.enum(DOCUMENT_STATES),
  /** True when the workspace already holds these exact bytes: nothing new is stored or indexed. */
  duplicate: z.boolean(),
  /** The document this upload will replace once indexed (same source, new content). */
  replacesId: Id.nullable(),
});
export type SubmitResult = z.infer<typeof SubmitResult>;

/** Which embedder made the workspace's vectors, and a re-embedding's progress (absent: nothing recorded yet). */
export const EmbeddingStatus = z.object({
  /** Embedder of the vectors search uses now ('none': no vectors, lexical only). */
  embedder: z.string(),
  dims: z.number().int().nullable(),
  /** reembedding: a job is embedding every chunk with `target`; vector search is off in this workspace until it swaps them in. */
  state: z.enum(['ready', 'reembedding']),
  target: z.string().nullable(),
  chunksDone: z.number().int(),
  chunksTotal: z.number().int(),
  error: z.string().nullable(),
});

const Ref = z.object({ workspaceId: Id, documentId: Id });

/** One indexed chunk as readers see it: where it sits in its document (heading path, page, character offsets). */
export const ChunkInfo = z.object({
  chunkId: Id,
  documentId: Id,
  index: z.number().int(),
  text: z.string(),
  headingPath: z.array(z.string()),
  page: z.number().int().nullable(),
  charStart: z.number().int(),
  charEnd: z.number().int(),
});
export type ChunkInfo = z.infer<typeof ChunkInfo>;

/** A page of a document's chunks in reading order (empty until the document is indexed). */
export const DocumentChunks = z.object({ document: DocumentInfo, chunks: z.array(ChunkInfo), total: z.number().int(), offset: z.number().int() });
export type DocumentChunks = z.infer<typeof DocumentChunks>;

export const IngestContract = defineContract('ingest', {
  status: statusMethod,
  submit: {
    input: z.object({ workspaceId: Id, userId: Id.optional(), files: z.array(SubmittedFile).min(1).max(1000) }),
    output: z.object({ documents: z.array(SubmitResult) }),
  },
  list: {
    input: z.object({ workspaceId: Id, state: z.enum(DOCUMENT_STATES).optional(), limit: z.number().int().min(1).max(1000).default(100), offset: z.number().int().min(0).default(0) }),
    output: z.object({ documents: z.array(DocumentInfo), total: z.number().int() }),
  },
  get: { input: Ref, output: DocumentInfo },
  delete: { input: Ref, output: z.object({ deleted: z.literal(true) }) },
  reindex: { input: Ref, output: DocumentInfo },
  /** A document's text as its chunks, in order, paged by chunk (the text a citation quotes from). */
  chunks: {
    input: Ref.extend({ offset: z.number().int().min(0).default(0), limit: z.number().int().min(1).max(200).default(20) }),
    output: DocumentChunks,
  },
  /** One chunk by id, with its document (a search result or citation names chunks). */
  chunk: { input: z.object({ workspaceId: Id, chunkId: Id }), output: ChunkInfo.extend({ document: DocumentInfo }) },
  totals: {
    input: z.object({ workspaceId: Id }),
    output: z.object({ documents: z.number().int(), chunks: z.number().int(), bytes: z.number().int(), byState: z.record(z.string(), z.number().int()), embedding: EmbeddingStatus.optional() }),
  },
});
export type IngestClient = ClientOf<typeof IngestContract>;
