import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DocupodError, Problems } from '../../../core/errors.js';
import type { Logger } from '../../../observability/logger.js';
import type { Registry } from '../../../observability/metrics.js';
import { authenticate, principalOf } from '../auth/index.js';
import { mcpMetrics } from './metrics.js';
import { buildMcpServer, type McpDeps } from './tools.js';

// docupod as an MCP server: POST /mcp speaks the Streamable HTTP transport of the Model Context Protocol.
//
// Stateless: every POST builds its own server and transport and nothing outlives the response. Gateway pods run as
// replicas behind an ingress without sticky sessions, and docupod's tools keep no conversation state, so a session
// (Mcp-Session-Id) would only pin clients to one pod. It also means each request is authenticated on its own: a
// revoked key stops working on the next call, not at the end of a session. Without sessions there is no standalone
// GET event stream and nothing to DELETE (both 405). A POST is answered with one JSON body, or with an event stream
// when the call asks for progress (a tools/call with a progress token: `ask` streams its tokens that way). The old HTTP+SSE transport (protocol 2024-11-05) needs server-side
// sessions and is not offered.

/** What the tools need (tools.ts), with the metrics registry the plugin makes the MCP metrics in. */
export type McpRoutesOptions = Omit<McpDeps, 'metrics' | 'resourcePageSize'> & { metrics: Registry };

/** The id of a JSON-RPC request body (null for a batch or a notification), to answer an error to it. */
function jsonRpcId(body: unknown): string | number | null {
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const id = (body as { id?: unknown }).id;
    if (typeof id === 'string' || typeof id === 'number') return id;
  }
  return null;
}

/** Whether a request may be answered with progress notifications first: a tools/call carrying a progress token. */
function streamsProgress(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((m) => {
    const params = (m as { method?: unknown; params?: { _meta?: { progressToken?: unknown } } } | null)?.params;
    return (m as { method?: unknown } | null)?.method === 'tools/call' && params?._meta?.progressToken !== undefined;
  });
}

/** RFC 9728's metadata URL for /mcp: the well-known prefix with the resource's path after it. */
export const PROTECTED_RESOURCE_PATH = '/.well-known/oauth-protected-resource';
/** This server's origin as the client reached it (behind an ingress: X-Forwarded-* when DOCUPOD_TRUST_PROXY is on). */
const originOf = (request: FastifyRequest) => `${request.protocol}://${request.host}`;

/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728) for /mcp, which the MCP authorization spec has remote servers
 * publish: what the resource is and that it takes bearer tokens in the Authorization header. docupod runs no OAuth
 * authorization server, so `authorization_servers` is absent: the bearer token is a docupod API key (or a login's
 * access token), made in the web UI or with `docupod apikey create`. Public, like any discovery document. Served at
 * the path-inserted URL RFC 9728 defines for https://host/mcp and at the bare well-known URL clients try next.
 */
export const mcpDiscoveryRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const metadata = async (request: FastifyRequest) => {
    const origin = originOf(request);
    return {
      resource: `${origin}/mcp`,
      bearer_methods_supported: ['header'],
      resource_name: 'docupod',
      resource_documentation: `${origin}/docs`,
    };
  };
  const schema = {
    tags: ['mcp'],
    summary: 'OAuth protected-resource metadata (RFC 9728) for /mcp: bearer tokens in Authorization, no authorization server (use a docupod API key)',
    security: [],
  };
  app.get(`${PROTECTED_RESOURCE_PATH}/mcp`, { schema }, metadata);
  app.get(PROTECTED_RESOURCE_PATH, { schema }, metadata);
};

export const mcpRoutes: FastifyPluginAsync<McpRoutesOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.addHook('onRequest', authenticate(opts.auth));
  // A 401 from /mcp names the metadata (RFC 9728 §5.1), so an MCP client can discover how to authenticate.
  app.addHook('onSend', async (request, reply) => {
    if (reply.statusCode !== 401) return;
    const challenge = String(reply.getHeader('www-authenticate') ?? 'Bearer realm="docupod"');
    reply.header('www-authenticate', `${challenge}, resource_metadata="${originOf(request)}${PROTECTED_RESOURCE_PATH}/mcp"`);
  });
  const metrics = mcpMetrics(opts.metrics);
  const deps = {
    auth: opts.auth,
    retrieval: opts.retrieval,
    ingest: opts.ingest,
    chat: opts.chat,
    blobs: opts.blobs,
    uploadLimit: opts.uploadLimit,
    write: opts.write,
    metrics,
    version: opts.version,
  };

  // Input the shared gate refuses (text Postgres cannot store, anywhere in the body) answers as a JSON-RPC error to
  // the request it came in, so an MCP client sees an MCP error (invalid params), not an HTTP failure. Everything else
  // (401 with WWW-Authenticate, 413, 415) stays problem+json from the root handler.
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const id = jsonRpcId(request.body);
    if (error instanceof DocupodError && error.problem === Problems.validation && id !== null) {
      request.log.warn({ problem: error.problem.type, detail: error.message }, 'mcp request refused');
      return reply.code(200).type('application/json').send({ jsonrpc: '2.0', id, error: { code: -32602, message: error.message } });
    }
    throw error;
  });

  app.post(
    '/mcp',
    {
      schema: {
        tags: ['mcp'],
        summary:
          'Model Context Protocol (Streamable HTTP, stateless): JSON-RPC requests from an MCP client; tools search, get_document, get_chunk, ' +
          'list_workspaces, list_documents and ask over the workspaces your login or API key can read; add_document and delete_document ' +
          'with DOCUPOD_MCP_WRITE=true and the editor role; documents as resources docupod://{workspace}/{document}; the prompt answer_from_documents',
        querystring: z.object({ workspace: z.string().min(1).max(200).optional() }),
      },
    },
    async (request, reply) => {
      const ac = new AbortController();
      // Node emits 'close' on the response when it ends or the client goes away; only the latter cancels work.
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) ac.abort();
      });
      const server = buildMcpServer(deps, {
        principal: principalOf(request),
        defaultWorkspace: request.query.workspace,
        signal: ac.signal,
        requestId: String(request.id),
        log: request.log as unknown as Logger,
        span: request.span,
        onWorkspace: (id) => {
          request.workspaceId = id;
        },
      });
      // One JSON body unless the call may send notifications before its result (ask with a progress token): an event
      // stream costs a few milliseconds per call that nothing would use.
      const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: !streamsProgress(request.body) });
      await server.connect(transport);
      const headers = new Headers();
      for (const [k, v] of Object.entries(request.headers)) if (typeof v === 'string') headers.set(k, v);
      // The body was parsed (and checked by the input gate) by Fastify; the transport gets it as parsedBody.
      const res = await transport.handleRequest(new Request(`http://mcp.invalid${request.url}`, { method: 'POST', headers }), {
        parsedBody: request.body,
      });
      reply.raw.on('close', () => {
        void server.close();
      });
      reply.code(res.status);
      res.headers.forEach((value, name) => {
        reply.header(name, value);
      });
      if (!res.body) {
        void server.close();
        return reply.send('');
      }
      return reply.send(res.body);
    },
  );

  const notHere = async (_request: FastifyRequest, reply: FastifyReply) => {
    reply.header('allow', 'POST');
    throw new DocupodError(Problems.methodNotAllowed, 'this MCP server is stateless: send JSON-RPC messages with POST /mcp (no session stream, nothing to delete)');
  };
  app.get('/mcp', { schema: { tags: ['mcp'], summary: 'Not offered (stateless MCP server): 405' } }, notHere);
  app.delete('/mcp', { schema: { tags: ['mcp'], summary: 'Not offered (stateless MCP server): 405' } }, notHere);
};
