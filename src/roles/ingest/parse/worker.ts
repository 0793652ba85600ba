// The worker-thread side of ParserPool: one message in, one message out. Errors are flattened to plain data because
// structured cloning would turn a DocupodError into a bare Error and lose its problem type and extras.
import { parentPort } from 'node:worker_threads';
import { isDocupodError } from '../../../core/errors.js';
import type { ParseLimits } from './limits.js';
import { parseDocument } from './parse-document.js';
import type { ChunkOptions } from '../../../core/chunking.js';
import type { ParsedDocument } from '../../../core/document-model.js';
import { chunkForIndex } from '../chunks.js';
import type { IndexChunk } from '../index-writer.js';

export interface ParseRequest {
  id: number;
  bytes: Uint8Array;
  filename: string;
  limits: ParseLimits;
  /** Chunk here too (see ParserPoolOptions.chunk); the answer then carries the chunks instead of the sections. */
  chunk?: ChunkOptions;
}

/** A parsed document; when the pool chunks, `chunks` holds the chunks and `sections` is empty (not copied back). */
export type ChunkedDocument = ParsedDocument & { chunks?: IndexChunk[] };

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'result'; id: number; doc: ChunkedDocument }
  | {
      type: 'error';
      id: number;
      /** Key of Problems when the error was a DocupodError; absent for unexpected errors. */
      problem?: string;
      status?: number;
      message: string;
      extra?: Record<string, unknown>;
    };

if (!parentPort) throw new Error('worker.ts must run in a worker thread (see pool.ts)');
const port = parentPort;

port.on('message', (req: ParseRequest) => {
  parseDocument(req.bytes, req.filename, req.limits)
    // Chunked here, the sections need not be copied back: only the chunks are.
    .then((doc): ChunkedDocument => (req.chunk ? { ...doc, sections: [], chunks: chunkForIndex(doc, req.chunk) } : doc))
    .then(
      (doc) => port.postMessage({ type: 'result', id: req.id, doc } satisfies WorkerMessage),
      (err: unknown) => {
        const msg: WorkerMessage = isDocupodError(err)
          ? { type: 'error', id: req.id, problem: err.problem.type, status: err.status, message: err.message, extra: err.extra }
          : { type: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) };
        port.postMessage(msg);
      },
    );
});
// Tell the pool the modules are loaded: its timeout clock starts only then, so a cold start is not billed to a file.
port.postMessage({ type: 'ready' } satisfies WorkerMessage);
