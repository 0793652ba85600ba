import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { guardWorkspaceRoutes, principalOf, requireWorkspace } from '../auth/plugin.js';
import type { AuthService } from '../auth/service.js';
import type { WorkspaceService } from './service.js';
import {
  AddMemberRequest,
  CreateWorkspaceRequest,
  Member,
  MemberParams,
  UpdateMemberRequest,
  UpdateWorkspaceRequest,
  Workspace,
  WsParams,
  toMember,
  toWorkspace,
} from './schemas.js';

// Who may do what: viewers read; owners rename, delete and manage members; any member may leave.

export const workspaceRoutes: FastifyPluginAsync<{ auth: AuthService; workspaces: WorkspaceService }> = async (fastify, { auth, workspaces }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  guardWorkspaceRoutes(app, auth);
  const tags = ['workspaces'];

  app.get('/api/workspaces', { schema: { tags, summary: 'Workspaces you belong to', response: { 200: z.array(Workspace) } } }, async (request) =>
    (await workspaces.list(principalOf(request))).map((w) => toWorkspace(w.workspace, w.role)),
  );

  app.post(
    '/api/workspaces',
    { schema: { tags, summary: 'Create a workspace (you become its owner)', body: CreateWorkspaceRequest, response: { 201: Workspace } } },
    async (request, reply) => {
      const { workspace, role } = await workspaces.create(principalOf(request), request.body);
      request.workspaceId = workspace.id;
      return reply.code(201).send(toWorkspace(workspace, role));
    },
  );

  app.get('/api/workspaces/:ws', { schema: { tags, summary: 'One workspace', params: WsParams, response: { 200: Workspace } } }, async (request) => {
    const { workspace, role } = await requireWorkspace(request, 'viewer');
    return toWorkspace(workspace, role);
  });

  app.patch(
    '/api/workspaces/:ws',
    { schema: { tags, summary: 'Rename or describe a workspace (owner)', params: WsParams, body: UpdateWorkspaceRequest, response: { 200: Workspace } } },
    async (request) => {
      const { workspace, role } = await requireWorkspace(request, 'owner');
      return toWorkspace(await workspaces.update(workspace.id, request.body), role);
    },
  );

  app.delete(
    '/api/workspaces/:ws',
    { schema: { tags, summary: 'Delete a workspace and everything in it (owner)', params: WsParams, response: { 204: z.null() } } },
    async (request, reply) => {
      const { workspace } = await requireWorkspace(request, 'owner');
      await workspaces.delete(workspace.id);
      return reply.code(204).send(null);
    },
  );

  const memberTags = ['workspace members'];
  app.get(
    '/api/workspaces/:ws/members',
    { schema: { tags: memberTags, summary: 'Members of a workspace', params: WsParams, response: { 200: z.array(Member) } } },
    async (request) => {
      const { workspace } = await requireWorkspace(request, 'viewer');
      return (await workspaces.listMembers(workspace.id)).map(toMember);
    },
  );

  app.post(
    '/api/workspaces/:ws/members',
    { schema: { tags: memberTags, summary: 'Add an existing user by e-mail (owner)', params: WsParams, body: AddMemberRequest, response: { 201: Member } } },
    async (request, reply) => {
      const { workspace } = await requireWorkspace(request, 'owner');
      return reply.code(201).send(toMember(await workspaces.addMember(workspace.id, request.body.email, request.body.role)));
    },
  );

  app.patch(
    '/api/workspaces/:ws/members/:userId',
    {
      schema: { tags: memberTags, summary: "Change a member's role (owner; the last owner stays)", params: MemberParams, body: UpdateMemberRequest, response: { 200: Member } },
    },
    async (request) => {
      const { workspace } = await requireWorkspace(request, 'owner');
      return toMember(await workspaces.setMemberRole(workspace.id, request.params.userId, request.body.role));
    },
  );

  app.delete(
    '/api/workspaces/:ws/members/:userId',
    { schema: { tags: memberTags, summary: 'Remove a member (owner), or leave (yourself); the last owner stays', params: MemberParams, response: { 204: z.null() } } },
    async (request, reply) => {
      const self = request.params.userId === principalOf(request).userId;
      const { workspace } = await requireWorkspace(request, self ? 'viewer' : 'owner');
      await workspaces.removeMember(workspace.id, request.params.userId);
      return reply.code(204).send(null);
    },
  );
};
