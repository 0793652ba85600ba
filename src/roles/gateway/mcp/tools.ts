import { createHash, randomUUID } from 'node:crypto';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { context, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { ErrorCode, ListResourcesRequestSchema, McpError, type CallToolResult, type Resource } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { BlobStore } from '../../../adapters/blob/blob-store.js';
import { DocupodError, Problems, fail } from '../../../core/errors.js';
import type { Logger } from '../../../observability/logger.js';
import type { AnswerResult, ChatClient } from '../../chat/contract.js';
import type { ChunkInfo, IngestClient } from '../../ingest/contract.js';
import { DOCUMENT_STATES } from '../../../storage/schema-documents.js';
import { SearchMode, SearchRequest, type RetrievalClient } from '../../retrieval/contract.js';
import { roleAtLeast, type AuthService, type Principal, type WorkspaceAccess } from '../auth/service.js';
import { eventError } from '../chat/sse.js';
import { toWorkspace } from '../workspaces/schemas.js';
import type { McpMetrics } from './metrics.js';

// The MCP tools: a thin face over the services the HTTP API calls (auth's workspace check, the retrieval, ingest and
// chat clients). No SQL and no rules of their own here: what a caller may see is decided by AuthService.workspaceAccess,
// exactly as requireWorkspace decides it for /api/workspaces/{ws}/…, and the same not-found hides other workspaces.

export interface McpCaller {
  principal: Principal;
  /** `?workspace=` on /mcp (or `docupod mcp --workspace`): used when a tool call names none. */
  defaultWorkspace?: string;
  /** Aborted when the HTTP request goes away: an answer being generated is cancelled with it. */
  signal: AbortSignal;
  requestId: string;
  log: Logger;
  /** The HTTP request's span: each tool call is a child span of it. */
  span?: Span;
  /** Tells the access log which workspace the call read (as requireWorkspace does for /api routes). */
  onWorkspace?: (workspaceId: string) => void;
}

export interface McpDeps {
  auth: AuthService;
  retrieval: RetrievalClient;
  ingest: IngestClient;
  chat: ChatClient;
  /** Where add_document stores the text, as the upload route stores a file (the ingest role reads it from there). */
  blobs: BlobStore;
  /** DOCUPOD_UPLOAD_LIMIT in bytes: add_document's text obeys the same limit as an uploaded file. */
  uploadLimit: number;
  /** DOCUPOD_MCP_WRITE: whether the write tools exist at all. */
  write: boolean;
  /** Documents per resources/list page (default 50; tests make it small to see the paging). */
  resourcePageSize?: number;
  metrics: McpMetrics;
  version: string;
}

export const TOOL_NAMES = ['list_workspaces', 'search', 'get_document', 'get_chunk', 'list_documents', 'ask'] as const;
/** Registered only with DOCUPOD_MCP_WRITE=true; each call also needs the editor role, like the upload and delete routes. */
export const WRITE_TOOL_NAMES = ['add_document', 'delete_document'] as const;
export type ToolName = (typeof TOOL_NAMES)[number] | (typeof WRITE_TOOL_NAMES)[number];

const Workspace = z
  .string()
  .min(1)
  .max(200)
  .optional()
  .describe('Workspace slug or id (from list_workspaces). Optional when the server has a default workspace or you can reach only one.');
const DocumentId = z.uuid().describe('Document id, as search results, citations and list_documents give it');

const SNIPPET_CHARS = 320;
/** MCP's "resource not found" code (the SDK has no constant for it). */
const RESOURCE_NOT_FOUND = -32002;
/**
 * A JSON-RPC error for a handler to throw. Not McpError: its message already carries "MCP error <code>: ", which the
 * SDK would send on the wire and the client would prefix again.
 */
const rpcError = (code: number, message: string) => Object.assign(new Error(message), { code });
/** Chunks read per call when a resource read gathers a whole document. */
const READ_PAGE = 200;
const tracer = trace.getTracer('docupod');

/** A short passage of `text` around the first query term it contains (whole words, ellipses where cut). */
export function snippet(text: string, query: string, max = SNIPPET_CHARS): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const lower = flat.toLowerCase();
  const terms = query.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((t) => t.length >= 3);
  const hits = terms.map((t) => lower.indexOf(t)).filter((i) => i >= 0);
  const at = hits.length > 0 ? Math.min(...hits) : 0;
  let start = Math.max(0, at - Math.floor(max / 4));
  if (start > 0) start = flat.indexOf(' ', start) + 1 || start;
  let end = Math.min(flat.length, start + max);
  if (end < flat.length) end = flat.lastIndexOf(' ', end) > start ? flat.lastIndexOf(' ', end) : end;
  return `${start > 0 ? '…' : ''}${flat.slice(start, end)}${end < flat.length ? '…' : ''}`;
}

/** Chunks laid end to end by their offsets: the overlap a chunk repeats from the previous one is dropped. */
export function stitch(chunks: ChunkInfo[]): string {
  let out = '';
  let end = -1;
  let heading = '';
  for (const c of chunks) {
    const path = c.headingPath.join(' › ');
    if (path && path !== heading) out += `${out ? '\n\n' : ''}## ${path}${c.page ? ` (page ${c.page})` : ''}\n\n`;
    heading = path;
    const from = end > c.charStart ? Math.min(end - c.charStart, c.text.length) : 0;
    if (end >= 0 && c.charStart > end && !out.endsWith('\n\n')) out += '\n\n';
    out += c.text.slice(from);
    end = Math.max(end, c.charEnd);
  }
  return out;
}

/**
 * An McpServer for one request of one caller (stateless transport: see routes.ts). Each tool checks the workspace
 * itself, with the caller's principal, before calling a service.
 */
export function buildMcpServer(deps: McpDeps, caller: McpCaller): McpServer {
  const server = new McpServer(
    { name: 'docupod', version: deps.version },
    {
      instructions:
        'docupod is a knowledge base of the user’s documents, grouped in workspaces. Use search to find passages, get_document or ' +
        'get_chunk to read around them, and ask for a grounded answer with citations. Quote sources by their `source` name.',
    },
  );

  /** The workspace a tool call names (or the default), as this caller may see it; one not-found for all the rest. */
  const workspace = async (ref: string | undefined): Promise<WorkspaceAccess> => {
    const wanted = ref ?? caller.defaultWorkspace;
    if (wanted === undefined) {
      const all = await deps.auth.memberships(caller.principal);
      if (all.length === 1) {
        caller.onWorkspace?.(all[0]!.workspace.id);
        return all[0]!;
      }
      throw fail.badRequest(
        all.length === 0
          ? 'you can reach no workspace yet: create one and add documents first'
          : `name a workspace: you can reach ${all.length} (call list_workspaces)`,
      );
    }
    const access = await deps.auth.workspaceAccess(caller.principal, wanted);
    // The same words as the HTTP API's 404, whether the workspace does not exist or is not yours to see.
    if (!access) throw fail.notFound(`workspace ${wanted}`);
    caller.onWorkspace?.(access.workspace.id);
    return access;
  };

  /** The workspace, as `workspace` resolves it, when the caller may change its documents (the upload and delete routes' rule). */
  const writable = async (ref: string | undefined): Promise<WorkspaceAccess> => {
    const access = await workspace(ref);
    // requireWorkspace's words for the same refusal on the HTTP API.
    if (!roleAtLeast(access.role, 'editor')) throw fail.forbidden(`this needs the editor role in workspace ${access.workspace.slug}; you are ${access.role}`);
    return access;
  };

  /** Runs a tool with its metrics; errors become MCP tool errors with the problem's words, never a stack. */
  const run =
    <A>(name: ToolName, fn: (args: A) => Promise<CallToolResult>) =>
    async (args: A): Promise<CallToolResult> => {
      const end = deps.metrics.duration.startTimer({ tool: name });
      const span = tracer.startSpan(`mcp ${name}`, { attributes: { 'docupod.mcp.tool': name } }, caller.span ? trace.setSpan(context.active(), caller.span) : undefined);
      try {
        return await fn(args);
      } catch (err) {
        deps.metrics.errors.inc({ tool: name });
        span.setStatus({ code: SpanStatusCode.ERROR });
        if (err instanceof DocupodError && (err.problem.expected || err.status < 500)) {
          caller.log.warn({ tool: name, problem: err.problem.type, detail: err.message }, 'mcp tool failed');
          return { isError: true, content: [{ type: 'text', text: `${err.problem.title}: ${err.message}` }] };
        }
        caller.log.error({ err, tool: name }, 'mcp tool failed');
        return { isError: true, content: [{ type: 'text', text: `internal error (request ${caller.requestId})` }] };
      } finally {
        end();
        span.end();
      }
    };

  server.registerTool(
    'list_workspaces',
    {
      title: 'List workspaces',
      description: 'The workspaces you can read (slug, name, your role). Call this first when you do not know which workspace holds the documents.',
      inputSchema: {},
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    run('list_workspaces', async () => {
      const list = (await deps.auth.memberships(caller.principal)).map((m) => toWorkspace(m.workspace, m.role));
      const text = list.length === 0 ? 'No workspaces.' : list.map((w) => `- ${w.slug}: ${w.name} (${w.role})${w.description ? ` — ${w.description}` : ''}`).join('\n');
      return { content: [{ type: 'text', text }], structuredContent: { workspaces: list } };
    }),
  );

  const SearchInput = {
    query: SearchRequest.shape.query.describe('What to look for: keywords or a natural-language question'),
    workspace: Workspace,
    k: z.number().int().min(1).max(50).default(8).describe('How many passages to return (1–50)'),
    mode: SearchMode.optional().describe('lexical (BM25 keywords), vector (meaning) or hybrid (both fused); default: hybrid when the server has an embedder, else lexical'),
    sources: SearchRequest.shape.sources.describe('Only documents whose source (file name or path) matches one of these globs, e.g. ["guides/*.md"]'),
  };
  server.registerTool(
    'search',
    {
      title: 'Search documents',
      description:
        'Find the passages of a workspace’s documents that best match a query, ranked. Returns short snippets with source, heading, page, ' +
        'chunkId and documentId, not whole documents: read more with get_chunk (one passage) or get_document (the text around it). ' +
        'Use ask instead when you want a written answer with citations.',
      inputSchema: SearchInput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    run('search', async (args: { query: string; workspace?: string; k: number; mode?: SearchMode; sources?: string[] }) => {
      const access = await workspace(args.workspace);
      const res = await deps.retrieval.search({
        workspaceId: access.workspace.id,
        query: args.query,
        k: args.k,
        ...(args.mode ? { mode: args.mode } : {}),
        ...(args.sources ? { sources: args.sources } : {}),
      });
      const results = res.results.map((r, i) => ({
        rank: i + 1,
        chunkId: r.chunkId,
        documentId: r.documentId,
        source: r.source,
        title: r.title,
        heading: r.heading,
        headingPath: r.headingPath,
        page: r.page,
        score: r.score,
        snippet: snippet(r.text, args.query),
      }));
      const text =
        results.length === 0
          ? `No passage of workspace ${access.workspace.slug} matches (${res.mode} search).`
          : results
              .map((r) => `${r.rank}. ${[r.source, ...r.headingPath.filter((h) => h !== r.title)].join(' › ')}${r.page ? ` (page ${r.page})` : ''}\n   chunkId ${r.chunkId}, documentId ${r.documentId}\n   ${r.snippet}`)
              .join('\n');
      return {
        content: [{ type: 'text', text }],
        structuredContent: { workspace: access.workspace.slug, mode: res.mode, tookMs: res.tookMs, results, ...(res.notes ? { notes: res.notes } : {}) },
      };
    }),
  );

  server.registerTool(
    'get_document',
    {
      title: 'Read a document',
      description:
        'The text of one document in reading order, with its heading path (section titles) and pages, a page of chunks at a time. ' +
        'Pass `offset` from the previous call’s nextOffset to read on. Use after search to read the context around a passage.',
      inputSchema: {
        documentId: DocumentId,
        workspace: Workspace,
        offset: z.number().int().min(0).max(1_000_000).default(0).describe('First chunk to return (0 = the start)'),
        limit: z.number().int().min(1).max(50).default(10).describe('Chunks to return (about 1,000 characters each)'),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    run('get_document', async (args: { documentId: string; workspace?: string; offset: number; limit: number }) => {
      const access = await workspace(args.workspace);
      const page = await deps.ingest.chunks({ workspaceId: access.workspace.id, documentId: args.documentId, offset: args.offset, limit: args.limit });
      const d = page.document;
      const next = args.offset + page.chunks.length < page.total ? args.offset + page.chunks.length : null;
      const head = `${d.title ?? d.source} (source ${d.source}, ${d.state}${d.pages ? `, ${d.pages} pages` : ''}); chunks ${args.offset + 1}–${args.offset + page.chunks.length} of ${page.total}`;
      const body = page.chunks.length > 0 ? stitch(page.chunks) : d.state === 'indexed' ? '(no more text)' : `(not readable yet: the document is ${d.state}${d.error ? `: ${d.error}` : ''})`;
      const more = next === null ? '' : `\n\n[more: call get_document with offset ${next}]`;
      return {
        content: [{ type: 'text', text: `${head}\n\n${body}${more}` }],
        structuredContent: {
          document: { id: d.id, source: d.source, title: d.title, state: d.state, pages: d.pages, chunkCount: page.total },
          offset: args.offset,
          nextOffset: next,
          chunks: page.chunks.map((c) => ({ chunkId: c.chunkId, index: c.index, headingPath: c.headingPath, page: c.page, text: c.text })),
        },
      };
    }),
  );

  server.registerTool(
    'get_chunk',
    {
      title: 'Read one passage',
      description: 'One passage (chunk) by the chunkId that search or ask returned, in full, with its document, heading path and page.',
      inputSchema: { chunkId: z.uuid().describe('chunkId from search results or citations'), workspace: Workspace },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    run('get_chunk', async (args: { chunkId: string; workspace?: string }) => {
      const access = await workspace(args.workspace);
      const c = await deps.ingest.chunk({ workspaceId: access.workspace.id, chunkId: args.chunkId });
      const where = [c.document.source, ...c.headingPath].join(' › ');
      return {
        content: [{ type: 'text', text: `${where}${c.page ? ` (page ${c.page})` : ''}\ndocumentId ${c.documentId}, chunk ${c.index + 1} of ${c.document.chunkCount}\n\n${c.text}` }],
        structuredContent: {
          chunkId: c.chunkId,
          documentId: c.documentId,
          source: c.document.source,
          title: c.document.title,
          index: c.index,
          headingPath: c.headingPath,
          page: c.page,
          text: c.text,
        },
      };
    }),
  );

  server.registerTool(
    'list_documents',
    {
      title: 'List documents',
      description: 'The documents of a workspace, newest first, with their state (indexed, parsing, failed…), paged. Use to see what a workspace holds.',
      inputSchema: {
        workspace: Workspace,
        state: z.enum(DOCUMENT_STATES).optional().describe('Only documents in this state'),
        limit: z.number().int().min(1).max(200).default(50),
        offset: z.number().int().min(0).max(1_000_000).default(0),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    run('list_documents', async (args: { workspace?: string; state?: (typeof DOCUMENT_STATES)[number]; limit: number; offset: number }) => {
      const access = await workspace(args.workspace);
      const r = await deps.ingest.list({ workspaceId: access.workspace.id, limit: args.limit, offset: args.offset, ...(args.state ? { state: args.state } : {}) });
      const documents = r.documents.map((d) => ({ id: d.id, source: d.source, title: d.title, state: d.state, pages: d.pages, chunks: d.chunkCount, updatedAt: d.updatedAt }));
      const next = args.offset + documents.length < r.total ? args.offset + documents.length : null;
      const lines = documents.map((d) => `- ${d.source}${d.title && d.title !== d.source ? ` — ${d.title}` : ''} [${d.state}] id ${d.id}`);
      const text = `${r.total} document(s) in ${access.workspace.slug}${documents.length < r.total ? `, showing ${args.offset + 1}–${args.offset + documents.length}` : ''}\n${lines.join('\n')}${next === null ? '' : `\n[more: offset ${next}]`}`;
      return { content: [{ type: 'text', text }], structuredContent: { workspace: access.workspace.slug, total: r.total, offset: args.offset, nextOffset: next, documents } };
    }),
  );

  server.registerTool(
    'ask',
    {
      title: 'Ask the documents',
      description:
        'A written answer to a question from a workspace’s documents only, with numbered citations [n] (source, heading, page, the quoted sentence). ' +
        'It says so when the documents do not answer. Slower than search; counts against the workspace’s token quota. Tokens arrive as progress notifications when you send a progressToken.',
      inputSchema: { question: z.string().trim().min(1, 'question must not be empty').max(20_000).describe('The question, in full sentences'), workspace: Workspace },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args: { question: string; workspace?: string }, extra) =>
      run('ask', async () => {
        const access = await workspace(args.workspace);
        const p = caller.principal;
        const signal = AbortSignal.any([caller.signal, extra.signal]);
        const progressToken = extra._meta?.progressToken;
        let tokens = 0;
        let result: AnswerResult | undefined;
        for await (const ev of deps.chat.stream(
          'answer',
          { workspaceId: access.workspace.id, userId: p.userId, ...(p.keyId ? { keyId: p.keyId } : {}), messages: [{ role: 'user', content: args.question }] },
          signal,
        )) {
          if (ev.type === 'token' && progressToken !== undefined) {
            tokens++;
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: tokens, message: ev.text } });
          } else if (ev.type === 'final') result = ev.result as AnswerResult;
          else if (ev.type === 'error') throw eventError(ev.problem);
        }
        if (!result) throw new Error('the answer ended without a result');
        const sources = result.citations.map(
          (c) => `[${c.n}] ${[c.source, c.heading && c.heading !== c.title ? c.heading : '', c.page ? `page ${c.page}` : ''].filter(Boolean).join(' › ')} (chunkId ${c.chunkId}): “${c.quote}”`,
        );
        return {
          content: [{ type: 'text', text: `${result.answer}${sources.length > 0 ? `\n\nSources:\n${sources.join('\n')}` : ''}` }],
          structuredContent: {
            workspace: access.workspace.slug,
            answer: result.answer,
            relevant: result.trace.relevant,
            citations: result.citations.map((c) => ({ n: c.n, chunkId: c.chunkId, documentId: c.documentId, source: c.source, title: c.title, heading: c.heading, page: c.page, quote: c.quote })),
            model: result.model,
            usage: result.usage,
          },
        };
      })(args),
  );


  if (deps.write) {
    server.registerTool(
      'add_document',
      {
        title: 'Add a document',
        description:
          'Store a text as a new document of a workspace, under a file name (its extension picks the parser: .md, .txt, .html…); it is parsed, ' +
          'chunked and indexed in the background, searchable once list_documents shows it indexed. The same name again replaces that document ' +
          'once the new text is indexed; the same text again is a duplicate and changes nothing. Needs the editor role.',
        inputSchema: {
          name: z.string().trim().min(1, 'name must not be empty').max(1024).describe('File name, e.g. "notes/meeting-2026-03-02.md": the document’s source'),
          text: z.string().min(1, 'text must not be empty').describe('The document’s whole text (Markdown keeps its headings as sections)'),
          workspace: Workspace,
        },
        annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      },
      run('add_document', async (args: { name: string; text: string; workspace?: string }) => {
        const access = await writable(args.workspace);
        const bytes = Buffer.from(args.text, 'utf8');
        if (bytes.byteLength > deps.uploadLimit)
          throw new DocupodError(Problems.payloadTooLarge, `the text is ${bytes.byteLength} bytes, more than the upload limit of ${deps.uploadLimit} bytes (DOCUPOD_UPLOAD_LIMIT)`);
        // As the upload route: the original goes to the blob store under a random key, the ingest role gets the key.
        const source = args.name.replace(/\\/g, '/');
        const blobKey = `${access.workspace.id}/${randomUUID()}`;
        await deps.blobs.put(blobKey, bytes, access.workspace.id);
        let doc;
        try {
          doc = (
            await deps.ingest.submit({
              workspaceId: access.workspace.id,
              userId: caller.principal.userId,
              files: [{ source, blobKey, sizeBytes: bytes.byteLength, contentHash: createHash('sha256').update(bytes).digest('hex') }],
            })
          ).documents[0]!;
        } catch (err) {
          await deps.blobs.delete(blobKey).catch(() => {}); // nothing half-added stays behind
          throw err;
        }
        const text = doc.duplicate
          ? `${source} in ${access.workspace.slug} already holds this exact text (document ${doc.id}); nothing changed.`
          : `Added ${source} to ${access.workspace.slug} as document ${doc.id} (${doc.state})${doc.replacesId ? `; it replaces document ${doc.replacesId} once indexed` : ''}. ` +
            'It is searchable once indexed: list_documents shows its state.';
        return { content: [{ type: 'text', text }], structuredContent: { workspace: access.workspace.slug, document: doc } };
      }),
    );

    server.registerTool(
      'delete_document',
      {
        title: 'Delete a document',
        description: 'Delete one document of a workspace for good: its text, its passages in search and its stored original. Needs the editor role.',
        inputSchema: { documentId: DocumentId, workspace: Workspace },
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
      },
      run('delete_document', async (args: { documentId: string; workspace?: string }) => {
        const access = await writable(args.workspace);
        await deps.ingest.delete({ workspaceId: access.workspace.id, documentId: args.documentId });
        return {
          content: [{ type: 'text', text: `Deleted document ${args.documentId} from ${access.workspace.slug}.` }],
          structuredContent: { workspace: access.workspace.slug, deleted: args.documentId },
        };
      }),
    );
  }


  // Resources: every indexed document the caller can read, as docupod://{workspace slug}/{document id}. Reading one
  // gives its whole text as get_document stitches it. The same workspace check as the tools (and its one not-found).
  /** A docupod error as a JSON-RPC error: an unknown or hidden workspace or document is "resource not found". */
  const asMcpError = (err: unknown): never => {
    if (err instanceof McpError || (err instanceof Error && Number.isSafeInteger((err as { code?: unknown }).code))) throw err;
    if (err instanceof DocupodError && err.status === 404) throw rpcError(RESOURCE_NOT_FOUND, `${err.problem.title}: ${err.message}`);
    if (err instanceof DocupodError && (err.problem.expected || err.status < 500)) throw rpcError(ErrorCode.InvalidParams, `${err.problem.title}: ${err.message}`);
    caller.log.error({ err }, 'mcp resource request failed');
    throw rpcError(ErrorCode.InternalError, `internal error (request ${caller.requestId})`);
  };
  server.registerResource(
    'document',
    // No list callback here: resources/list is answered below, paged (the SDK's own handler lists everything at once).
    new ResourceTemplate('docupod://{workspace}/{document}', { list: undefined }),
    {
      title: 'Document',
      description: 'The whole text of one document of a workspace, in reading order with "## heading › path (page n)" lines (what get_document returns, all pages at once).',
      mimeType: 'text/markdown',
    },
    async (uri, vars) => {
      try {
        const ws = String(vars.workspace);
        const id = String(vars.document);
        const access = await workspace(decodeURIComponent(ws));
        // Not a uuid: no document has that id (the ingest contract would call it invalid input instead).
        if (!z.uuid().safeParse(id).success) throw fail.notFound(`document ${id}`);
        const chunks: ChunkInfo[] = [];
        let total = Infinity;
        while (chunks.length < total) {
          const page = await deps.ingest.chunks({ workspaceId: access.workspace.id, documentId: id, offset: chunks.length, limit: READ_PAGE });
          total = page.total;
          if (page.chunks.length === 0) break;
          chunks.push(...page.chunks);
        }
        return { contents: [{ uri: uri.href, mimeType: 'text/markdown', text: stitch(chunks) }] };
      } catch (err) {
        return asMcpError(err);
      }
    },
  );
  const pageSize = deps.resourcePageSize ?? 50;
  server.server.setRequestHandler(ListResourcesRequestSchema, async (request) => {
    try {
      // The cursor is where the previous page stopped: a workspace id and an offset among its indexed documents.
      let at: { w: string; o: number } | undefined;
      if (request.params?.cursor !== undefined) {
        try {
          at = JSON.parse(Buffer.from(request.params.cursor, 'base64url').toString()) as { w: string; o: number };
          if (typeof at.w !== 'string' || !Number.isInteger(at.o) || at.o < 0) throw new Error('bad cursor');
        } catch {
          throw rpcError(ErrorCode.InvalidParams, 'invalid cursor: pass nextCursor from the previous resources/list as it came');
        }
      }
      // With a default workspace (?workspace= or --workspace) only that one, as the tools read it; else all the caller's.
      const spaces = caller.defaultWorkspace !== undefined ? [await workspace(undefined)] : await deps.auth.memberships(caller.principal);
      let i = at ? spaces.findIndex((m) => m.workspace.id === at.w) : 0;
      if (i < 0) throw rpcError(ErrorCode.InvalidParams, 'invalid cursor: it names no workspace you can read');
      let offset = at?.o ?? 0;
      const resources: Resource[] = [];
      let nextCursor: string | undefined;
      for (; i < spaces.length; i++, offset = 0) {
        const ws = spaces[i]!.workspace;
        const r = await deps.ingest.list({ workspaceId: ws.id, state: 'indexed', limit: pageSize - resources.length, offset });
        for (const d of r.documents)
          resources.push({
            uri: `docupod://${ws.slug}/${d.id}`,
            name: d.source,
            title: d.title ?? d.source,
            description: `${d.source} in workspace ${ws.slug}${d.pages ? `, ${d.pages} pages` : ''}`,
            mimeType: 'text/markdown',
          });
        const rest = offset + r.documents.length < r.total;
        if (resources.length < pageSize) continue;
        if (rest) nextCursor = Buffer.from(JSON.stringify({ w: ws.id, o: offset + r.documents.length })).toString('base64url');
        else if (i + 1 < spaces.length) nextCursor = Buffer.from(JSON.stringify({ w: spaces[i + 1]!.workspace.id, o: 0 })).toString('base64url');
        break;
      }
      return nextCursor ? { resources, nextCursor } : { resources };
    } catch (err) {
      return asMcpError(err);
    }
  });


  // The prompt "answer from my documents": tells the agent how to use the tools above to answer with cited sources.
  server.registerPrompt(
    'answer_from_documents',
    {
      title: 'Answer from my documents',
      description: 'Answer a question from your docupod documents only: search, read around the passages, and cite the sources.',
      argsSchema: {
        question: z.string().trim().min(1, 'question must not be empty').max(20_000).describe('The question to answer'),
        workspace: z.string().min(1).max(200).optional().describe('Workspace slug (from list_workspaces); default: the server’s default or your only one'),
      },
    },
    async (args: { question: string; workspace?: string }) => {
      // A named workspace is checked now, so a hidden one fails here with the tools' not-found, not halfway through.
      const slug = args.workspace !== undefined ? await workspace(args.workspace).then((a) => a.workspace.slug, asMcpError) : undefined;
      const ws = slug ? ` with workspace "${slug}"` : '';
      const text = [
        `Answer the question below from my documents in docupod only, not from what you already know.`,
        ``,
        `1. Call the search tool${ws} with the question or its key terms. If the passages do not answer it, search again with other words (up to three searches).`,
        `2. Read around the best passages: get_chunk with a result's chunkId, or get_document with its documentId${ws ? ' (same workspace)' : ''} for the surrounding text.`,
        `3. Answer only with what those passages say. After each claim cite its source as [source › heading, page n] from the results, and end with a "Sources" list of the documents you used.`,
        `4. If the documents do not answer the question, say so plainly and say what you searched for; do not guess.`,
        ``,
        `Question: ${args.question}`,
      ].join('\n');
      return { description: `Answer from the documents${slug ? ` of ${slug}` : ''}`, messages: [{ role: 'user', content: { type: 'text', text } }] };
    },
  );

  return server;
}
