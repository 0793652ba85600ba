// Public surface of document parsing. Callers in the ingest role use ParserPool; parseDocument is what the worker
// runs and is exported for tools that parse trusted input in-thread.
export { detectType, MIME, type DetectedType, type DocumentKind } from './detect.js';
export { parseDocument } from './parse-document.js';
export { ParserPool, type ParserPoolOptions, type ParserPoolStats } from './pool.js';
export { DEFAULT_LIMITS, LimitEnv, type ParseLimits } from './limits.js';
export type { ParsedDocument, DocumentSection, DocumentBlock, BlockKind } from '../../../core/document-model.js';
