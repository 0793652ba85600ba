import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { RoleStatus } from '../../core/role-status.js';
import type { Database } from '../../storage/database.js';
import type { ChatClient } from '../chat/contract.js';
import type { IngestClient } from '../ingest/contract.js';
import type { ModelsClient } from '../models/contract.js';
import type { RetrievalClient } from '../retrieval/contract.js';
import type { AuthService } from './auth/module.js';
import { accountRoutes, publicAuthRoutes } from './auth/routes.js';
import { workspaceRoutes } from './workspaces/routes.js';
import { documentRoutes } from './documents/routes.js';
import { searchRoutes } from './search/routes.js';
import { chatRoutes } from './chat/routes.js';
import { openAiRoutes } from './openai/routes.js';
import { mcpDiscoveryRoutes, mcpRoutes } from './mcp/routes.js';
import type { Registry } from '../../observability/metrics.js';
import type { BlobStore } from '../../adapters/blob/blob-store.js';
import { WorkspaceService } from './workspaces/service.js';

export interface GatewayOptions {
  auth: AuthService;
  db: Database;
  roles: { ingest: IngestClient; retrieval: RetrievalClient; chat: ChatClient; models: ModelsClient };
  version: string;
  blobs: BlobStore;
  uploadLimit: number;
  /** DOCUPOD_MCP_WRITE: offer the MCP write tools. */
  mcpWrite?: boolean;
  /** For the MCP tool metrics (roles/gateway/mcp/metrics.ts). */
  metrics: Registry;
}

/** The public API: auth, workspaces and the routes that forward to the other roles. */
export const gatewayRoutes: FastifyPluginAsync<GatewayOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/api/status',
    {
      schema: {
        tags: ['system'],
        summary: 'Status of every role this gateway reaches (in-process or over HTTP)',
        security: [],
        response: { 200: z.object({ version: z.string(), roles: z.array(RoleStatus) }) },
      },
    },
    async () => {
      const entries = Object.entries(opts.roles) as Array<[string, { status: (i: object) => Promise<RoleStatus> }]>;
      const roles = await Promise.all(
        entries.map(([role, client]) =>
          client.status({}).catch((err: Error) => ({ role, version: 'unknown', ready: false, detail: err.message })),
        ),
      );
      return { version: opts.version, roles };
    },
  );

  // Each plugin is its own encapsulated context: the authentication hooks of one do not leak into the others.
  await app.register(publicAuthRoutes, { auth: opts.auth });
  await app.register(accountRoutes, { auth: opts.auth });
  // Workspace-scoped routes added later (documents, search, chats) go inside a context guarded the same way.
  await app.register(workspaceRoutes, { auth: opts.auth, workspaces: new WorkspaceService(opts.db, () => opts.auth.invalidateWorkspaces()) });
  await app.register(documentRoutes, { auth: opts.auth, ingest: opts.roles.ingest, blobs: opts.blobs, uploadLimit: opts.uploadLimit });
  await app.register(searchRoutes, { auth: opts.auth, retrieval: opts.roles.retrieval });
  await app.register(chatRoutes, { auth: opts.auth, chat: opts.roles.chat });
  await app.register(openAiRoutes, { auth: opts.auth, chat: opts.roles.chat, db: opts.db });
  // Public, outside mcpRoutes' authentication: how an MCP client learns that /mcp takes bearer tokens.
  await app.register(mcpDiscoveryRoutes);
  // MCP for agents: the same services and workspace checks as the routes above, as tools (roles/gateway/mcp).
  await app.register(mcpRoutes, {
    auth: opts.auth,
    retrieval: opts.roles.retrieval,
    ingest: opts.roles.ingest,
    chat: opts.roles.chat,
    blobs: opts.blobs,
    uploadLimit: opts.uploadLimit,
    write: opts.mcpWrite ?? false,
    metrics: opts.metrics,
    version: opts.version,
  });
};
