import { createHash, randomUUID } from 'node:crypto';
import multipart from '@fastify/multipart';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DocupodError, Problems } from '../../../core/errors.js';
import type { BlobStore } from '../../../adapters/blob/blob-store.js';
import { hijackHeaders } from '../../../http/server.js';
import { assertStorableText } from '../../../http/storable-input.js';
import { DOCUMENT_STATES } from '../../../storage/schema-documents.js';
import { ChunkInfo, DocumentChunks, DocumentInfo, IngestContract, SubmitResult, type IngestClient } from '../../ingest/contract.js';
import type { AuthService } from '../auth/index.js';
import { guardWorkspaceRoutes, principalOf, requireWorkspace } from '../auth/index.js';

export interface DocumentRoutesOptions {
  auth: AuthService;
  ingest: IngestClient;
  blobs: BlobStore;
  /** Per-file upload limit in bytes (413 beyond). */
  uploadLimit: number;
  /** How often the SSE stream looks for progress; rows are the source of truth, so any pod can serve the stream. */
  pollMs?: number;
}

const WsParams = z.object({ ws: z.string().min(1) });
const DocParams = WsParams.extend({ id: z.uuid() });
const TERMINAL = new Set(['indexed', 'failed', 'cancelled']);

/** Upload, list, inspect, delete and re-index documents; progress as Server-Sent Events. */
export const documentRoutes: FastifyPluginAsync<DocumentRoutesOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  guardWorkspaceRoutes(app, opts.auth);
  // preservePath: a part's file name keeps its directories (`guide/intro.md`, as the CLI sends a directory's files);
  // it is only the document's source label, never a path on disk (blobs are stored under random keys).
  await app.register(multipart, { preservePath: true, limits: { fileSize: opts.uploadLimit, files: 1000, fields: 20 } });

  app.post(
    '/api/workspaces/:ws/documents',
    {
      // The body is multipart/form-data (one or more `file` parts); it is read as a stream, not validated by zod.
      schema: {
        tags: ['documents'],
        summary: 'Upload one or more files (multipart/form-data); each is parsed, chunked and indexed in the background',
        params: WsParams,
        consumes: ['multipart/form-data'],
        response: { 202: z.object({ documents: z.array(SubmitResult) }) },
      },
    },
    async (request, reply) => {
      const access = await requireWorkspace(request, 'editor');
      if (!request.isMultipart())
        throw new DocupodError(Problems.unsupportedMediaType, 'send the files as multipart/form-data, one part per file (e.g. curl -F file=@guide.pdf)');
      const stored: Array<{ source: string; blobKey: string; sizeBytes: number; contentHash: string }> = [];
      try {
        for await (const part of request.files()) {
          // The file name becomes the document's `source`: the hook that checks JSON bodies never sees multipart.
          assertStorableText(part.filename, 'body.file.filename');
          const hash = createHash('sha256');
          const buffers: Buffer[] = [];
          for await (const b of part.file) {
            hash.update(b);
            buffers.push(b as Buffer);
          }
          if (part.file.truncated)
            throw new DocupodError(Problems.payloadTooLarge, `${part.filename} is larger than the upload limit of ${opts.uploadLimit} bytes (DOCUPOD_UPLOAD_LIMIT); nothing from this request was stored`);
          const source = (part.filename || part.fieldname || 'upload').replace(/\\/g, '/').slice(-1024);
          const bytes = Buffer.concat(buffers);
          const blobKey = `${access.workspace.id}/${randomUUID()}`;
          await opts.blobs.put(blobKey, bytes, access.workspace.id);
          stored.push({ source, blobKey, sizeBytes: bytes.byteLength, contentHash: hash.digest('hex') });
        }
      } catch (err) {
        // All or nothing: an oversize or broken part leaves no stray originals behind.
        await Promise.all(stored.map((s) => opts.blobs.delete(s.blobKey).catch(() => {})));
        if (err instanceof DocupodError) throw err;
        const code = (err as { code?: string }).code;
        if (code === 'FST_REQ_FILE_TOO_LARGE')
          throw new DocupodError(Problems.payloadTooLarge, `a file is larger than the upload limit of ${opts.uploadLimit} bytes (DOCUPOD_UPLOAD_LIMIT); nothing from this request was stored`);
        if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT') throw new DocupodError(Problems.payloadTooLarge, 'too many parts in one upload (limit 1000 files)');
        throw new DocupodError(Problems.badRequest, `the multipart body could not be read: ${(err as Error).message}`, {}, { cause: err });
      }
      if (stored.length === 0) throw new DocupodError(Problems.badRequest, 'no file in the upload: send at least one file part (e.g. curl -F file=@guide.pdf)');
      const result = await opts.ingest.submit({ workspaceId: access.workspace.id, userId: principalOf(request).userId, files: stored });
      return reply.code(202).send(result);
    },
  );

  app.get(
    '/api/workspaces/:ws/documents',
    {
      schema: {
        tags: ['documents'],
        summary: 'List documents, newest first',
        params: WsParams,
        querystring: z.object({
          state: z.enum(DOCUMENT_STATES).optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
          offset: z.coerce.number().int().min(0).default(0),
        }),
        response: { 200: z.object({ documents: z.array(DocumentInfo), total: z.number().int() }) },
      },
    },
    async (request) => {
      const access = await requireWorkspace(request, 'viewer');
      return opts.ingest.list({ workspaceId: access.workspace.id, ...request.query });
    },
  );

  app.get(
    '/api/workspaces/:ws/documents/:id',
    { schema: { tags: ['documents'], summary: 'One document with its state and progress', params: DocParams, response: { 200: DocumentInfo } } },
    async (request) => {
      const access = await requireWorkspace(request, 'viewer');
      return opts.ingest.get({ workspaceId: access.workspace.id, documentId: request.params.id });
    },
  );

  app.get(
    '/api/workspaces/:ws/documents/:id/chunks',
    {
      schema: {
        tags: ['documents'],
        summary: 'The document’s indexed text as chunks in reading order (heading path, page, character offsets), paged',
        params: DocParams,
        querystring: z.object({ offset: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(200).default(20) }),
        response: { 200: DocumentChunks },
      },
    },
    async (request) => {
      const access = await requireWorkspace(request, 'viewer');
      return opts.ingest.chunks({ workspaceId: access.workspace.id, documentId: request.params.id, ...request.query });
    },
  );

  app.get(
    '/api/workspaces/:ws/chunks/:chunkId',
    {
      schema: {
        tags: ['documents'],
        summary: 'One chunk by id (as search results and citations name them), with its document',
        params: WsParams.extend({ chunkId: z.uuid() }),
        response: { 200: ChunkInfo.extend({ document: DocumentInfo }) },
      },
    },
    async (request) => {
      const access = await requireWorkspace(request, 'viewer');
      return opts.ingest.chunk({ workspaceId: access.workspace.id, chunkId: request.params.chunkId });
    },
  );

  app.delete(
    '/api/workspaces/:ws/documents/:id',
    { schema: { tags: ['documents'], summary: 'Delete a document, its chunks and its stored original', params: DocParams, response: { 204: z.null() } } },
    async (request, reply) => {
      const access = await requireWorkspace(request, 'editor');
      await opts.ingest.delete({ workspaceId: access.workspace.id, documentId: request.params.id });
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/workspaces/:ws/documents/:id/reindex',
    { schema: { tags: ['documents'], summary: 'Parse, chunk and index the stored original again', params: DocParams, response: { 202: DocumentInfo } } },
    async (request, reply) => {
      const access = await requireWorkspace(request, 'editor');
      return reply.code(202).send(await opts.ingest.reindex({ workspaceId: access.workspace.id, documentId: request.params.id }));
    },
  );

  app.get(
    '/api/workspaces/:ws/stats',
    {
      schema: {
        tags: ['documents'],
        summary: 'Workspace totals: documents by state, indexed chunks, stored bytes, the embedder of its vectors and any re-embedding',
        params: WsParams,
        response: { 200: IngestContract.methods.totals.output },
      },
    },
    async (request) => {
      const access = await requireWorkspace(request, 'viewer');
      return opts.ingest.totals({ workspaceId: access.workspace.id });
    },
  );

  app.get(
    '/api/workspaces/:ws/documents/:id/events',
    {
      schema: {
        tags: ['documents'],
        summary: 'Server-Sent Events: `progress` whenever state or progress changes, then `done` at indexed/failed/cancelled',
        params: DocParams,
      },
    },
    async (request, reply) => {
      const access = await requireWorkspace(request, 'viewer');
      const ref = { workspaceId: access.workspace.id, documentId: request.params.id };
      let last = await opts.ingest.get(ref); // 404 as problem+json before the stream starts
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { ...hijackHeaders(reply), 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no', 'x-request-id': String(request.id) });
      let closed = false;
      request.raw.on('close', () => (closed = true));
      const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      send('progress', last);
      let sinceBeat = 0;
      const pollMs = opts.pollMs ?? 500;
      try {
        while (!closed && !TERMINAL.has(last.state)) {
          await new Promise((r) => setTimeout(r, pollMs));
          const now = await opts.ingest.get(ref).catch((err: unknown) => {
            if (err instanceof DocupodError && err.status === 404) return undefined;
            throw err;
          });
          if (!now) {
            send('done', { ...last, state: 'cancelled', error: 'the document was deleted' });
            break;
          }
          if (now.updatedAt !== last.updatedAt || now.state !== last.state) {
            send('progress', now);
            last = now;
            sinceBeat = 0;
          } else if ((sinceBeat += pollMs) >= 15_000) {
            res.write(': keep-alive\n\n'); // keeps proxies from closing an idle stream
            sinceBeat = 0;
          }
        }
        if (!closed && TERMINAL.has(last.state)) send('done', last);
      } catch (err) {
        if (!closed) send('error', { detail: err instanceof DocupodError ? err.message : 'internal error' });
      } finally {
        res.end();
      }
    },
  );
};
