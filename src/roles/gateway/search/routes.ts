import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SearchRequest, SearchResponse, type RetrievalClient } from '../../retrieval/contract.js';
import type { AuthService } from '../auth/index.js';
import { guardWorkspaceRoutes, requireWorkspace } from '../auth/index.js';

/** POST /api/workspaces/{ws}/search: the public face of the retrieval role. */
export const searchRoutes: FastifyPluginAsync<{ auth: AuthService; retrieval: RetrievalClient }> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  guardWorkspaceRoutes(app, opts.auth);
  app.post(
    '/api/workspaces/:ws/search',
    {
      schema: {
        tags: ['search'],
        summary: 'Lexical (BM25), vector or hybrid search over the workspace’s indexed chunks',
        params: z.object({ ws: z.string().min(1) }),
        body: SearchRequest,
        response: { 200: SearchResponse },
      },
    },
    async (request) => {
      const access = await requireWorkspace(request, 'viewer');
      return opts.retrieval.search({ ...request.body, workspaceId: access.workspace.id });
    },
  );
};
