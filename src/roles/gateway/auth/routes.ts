import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { fail } from '../../../core/errors.js';
import { redactedConfig } from '../../../config/schema.js';
import { isUuid } from '../workspaces/repository.js';
import { authenticate, principalOf, requireAdmin, userOf } from './plugin.js';
import {
  ApiKey,
  CreateApiKeyRequest,
  CreatedApiKey,
  CreateUserRequest,
  IdParams,
  InviteRequest,
  InviteResponse,
  LoginRequest,
  MeResponse,
  RefreshRequest,
  SignupRequest,
  TokenResponse,
  UpdateUserRequest,
  User,
  toApiKey,
  toUser,
} from './schemas.js';
import type { AuthService, TokenPair } from './service.js';

const tokens = (t: TokenPair) => ({ ...t, user: toUser(t.user) });

/** Sign-up, login and token rotation: the only public routes of the API. */
export const publicAuthRoutes: FastifyPluginAsync<{ auth: AuthService }> = async (fastify, { auth }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const tags = ['auth'];

  app.post(
    '/api/auth/signup',
    {
      schema: {
        tags,
        security: [],
        summary: 'Create an account (the first one becomes instance admin) and log in',
        description: 'Later sign-ups follow DOCUPOD_SIGNUP: open, invite (pass the invite token) or closed (403).',
        body: SignupRequest,
        response: { 201: TokenResponse },
      },
    },
    async (request, reply) => {
      const user = await auth.signup(request.body);
      return reply.code(201).send(tokens(await auth.startSession(user)));
    },
  );

  app.post(
    '/api/auth/login',
    { schema: { tags, security: [], summary: 'Log in with e-mail and password', body: LoginRequest, response: { 200: TokenResponse } } },
    async (request) => tokens(await auth.login(request.body, request.ip)),
  );

  app.post(
    '/api/auth/refresh',
    {
      schema: {
        tags,
        security: [],
        summary: 'Exchange a refresh token for a new token pair',
        description: 'Each refresh token works once. Presenting a used one revokes every token of that login (401).',
        body: RefreshRequest,
        response: { 200: TokenResponse },
      },
    },
    async (request) => tokens(await auth.refresh(request.body.refreshToken)),
  );

  app.post(
    '/api/auth/logout',
    { schema: { tags, security: [], summary: 'End the session a refresh token belongs to', body: RefreshRequest, response: { 204: z.null() } } },
    async (request, reply) => {
      await auth.logout(request.body.refreshToken);
      return reply.code(204).send(null);
    },
  );
};

/** The caller's own account and keys, plus instance administration. */
export const accountRoutes: FastifyPluginAsync<{ auth: AuthService }> = async (fastify, { auth }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.addHook('onRequest', authenticate(auth));

  app.get('/api/me', { schema: { tags: ['auth'], summary: 'The caller and their workspaces', response: { 200: MeResponse } } }, async (request) => {
    const p = principalOf(request);
    // Both come from auth's cache: the user authentication just loaded, and memberships invalidated on every change.
    const user = userOf(request);
    const memberships = auth.membershipsFromCache(p) ?? (await auth.memberships(p));
    return {
      user: toUser(user),
      via: p.via,
      ...(p.keyId ? { keyId: p.keyId } : {}),
      workspaceIds: p.workspaceIds,
      memberships: memberships.map((m) => ({ workspace: { id: m.workspace.id, slug: m.workspace.slug, name: m.workspace.name }, role: m.role })),
    };
  });

  const keyTags = ['api keys'];
  app.post(
    '/api/keys',
    { schema: { tags: keyTags, summary: 'Create an API key (the key is shown once)', body: CreateApiKeyRequest, response: { 201: CreatedApiKey } } },
    async (request, reply) => {
      const p = principalOf(request);
      const { key, row } = await auth.createApiKey(p.userId, request.body, p.workspaceIds);
      return reply.code(201).send({ ...toApiKey(row), key });
    },
  );
  app.get('/api/keys', { schema: { tags: keyTags, summary: 'Your API keys (never the keys themselves)', response: { 200: z.array(ApiKey) } } }, async (request) =>
    (await auth.listApiKeys(principalOf(request).userId)).map(toApiKey),
  );
  app.delete(
    '/api/keys/:id',
    { schema: { tags: keyTags, summary: 'Revoke an API key', params: IdParams, response: { 204: z.null() } } },
    async (request, reply) => {
      await auth.revokeApiKey(principalOf(request).userId, request.params.id);
      return reply.code(204).send(null);
    },
  );

  const adminTags = ['admin'];
  app.post(
    '/api/invites',
    { schema: { tags: adminTags, summary: 'Invite someone to sign up (admin; the token is shown once)', body: InviteRequest, response: { 201: InviteResponse } } },
    async (request, reply) => {
      const p = requireAdmin(request);
      const invite = await auth.createInvite(p.userId, request.body.email);
      return reply.code(201).send({ ...invite, expiresAt: invite.expiresAt.toISOString() });
    },
  );
  app.get('/api/users', { schema: { tags: adminTags, summary: 'Every user of the instance (admin)', response: { 200: z.array(User) } } }, async (request) => {
    requireAdmin(request);
    return (await auth.listUsers()).map(toUser);
  });
  app.post(
    '/api/users',
    { schema: { tags: adminTags, summary: 'Create a user, whatever the sign-up policy (admin)', body: CreateUserRequest, response: { 201: User } } },
    async (request, reply) => {
      requireAdmin(request);
      return reply.code(201).send(toUser(await auth.createUser(request.body)));
    },
  );
  app.post(
    '/api/users/:id/keys',
    {
      schema: {
        tags: adminTags,
        summary: 'Create an API key for another user (the local operator only; the key is shown once)',
        description:
          'For `docupod apikey create --email …` on the machine that owns the data directory. Other callers get 403: an ' +
          'admin does not mint keys that act as someone else; users create their own with POST /api/keys.',
        params: IdParams,
        body: CreateApiKeyRequest,
        response: { 201: CreatedApiKey },
      },
    },
    async (request, reply) => {
      const p = requireAdmin(request);
      if (p.via !== 'local') throw fail.forbidden('only the local operator (the docupod CLI on the server’s machine) may create keys for another user; they can create their own with POST /api/keys');
      const user = isUuid(request.params.id) ? await auth.userById(request.params.id) : undefined;
      if (!user) throw fail.notFound(`user ${request.params.id}`);
      const { key, row } = await auth.createApiKey(user.id, request.body);
      return reply.code(201).send({ ...toApiKey(row), key });
    },
  );
  app.patch(
    '/api/users/:id',
    {
      schema: {
        tags: adminTags,
        summary: 'Disable or re-enable a user, or change their instance role (admin)',
        description: 'Takes effect at once: a disabled user’s access tokens, API keys and refresh tokens stop working.',
        params: IdParams,
        body: UpdateUserRequest,
        response: { 200: User },
      },
    },
    async (request) => {
      const p = requireAdmin(request);
      // An admin locking themselves out could leave the instance without one.
      if (request.params.id === p.userId && (request.body.disabled === true || request.body.role === 'member'))
        throw fail.conflict('you cannot disable or demote your own account: ask another admin');
      return toUser(await auth.updateUser(request.params.id, request.body));
    },
  );
  app.get(
    '/api/config',
    { schema: { tags: adminTags, summary: 'The effective configuration, secrets redacted (admin)', response: { 200: z.record(z.string(), z.unknown()) } } },
    async (request) => {
      requireAdmin(request);
      return redactedConfig(auth.config) as Record<string, unknown>;
    },
  );
};
