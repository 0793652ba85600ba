import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { DocupodError, Problems, fail } from '../../../core/errors.js';
import type { WorkspaceRole } from '../workspaces/repository.js';
import type { UserRow } from './repositories.js';
import { roleAtLeast, type AuthService, type Authenticated, type Principal, type WorkspaceAccess } from './service.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on every route registered behind it. */
    principal?: Principal;
  }
}

// Which service authenticated a request and the user it loaded, and the workspace it resolved: kept off the
// request's public shape.
const callers = new WeakMap<FastifyRequest, { auth: AuthService; user: UserRow }>();
const resolved = new WeakMap<FastifyRequest, { ref: string; access: WorkspaceAccess }>();

/**
 * An onRequest hook accepting a JWT access token or an API key. It runs before body parsing and validation, so an
 * unauthenticated caller learns nothing about a route's schema. 401s carry `WWW-Authenticate: Bearer`.
 * When the token, key and user are cached (the common case) it awaits nothing: the database path's chain of async
 * calls cost a promise and a microtask hop each on every request.
 */
export function authenticate(auth: AuthService): onRequestAsyncHookHandler {
  return async function authenticateRequest(request: FastifyRequest, reply: FastifyReply) {
    const cached = auth.authenticateFromCache(request.headers.authorization);
    if (cached) return accept(request, auth, cached);
    try {
      accept(request, auth, await auth.authenticateWithUser(request.headers.authorization));
    } catch (err) {
      if (err instanceof DocupodError && err.status === 401) {
        const given = request.headers.authorization !== undefined;
        reply.header('www-authenticate', given ? 'Bearer realm="docupod", error="invalid_token"' : 'Bearer realm="docupod"');
      }
      throw err;
    }
  };
}

function accept(request: FastifyRequest, auth: AuthService, { principal, user }: Authenticated): void {
  request.principal = principal;
  callers.set(request, { auth, user });
}

/** The caller; only on routes behind `authenticate`. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new DocupodError(Problems.internal, 'route uses principalOf without the authenticate hook');
  return request.principal;
}

/** The caller's user row as authentication loaded it (at most DOCUPOD_AUTH_CACHE_TTL old); no second query. */
export function userOf(request: FastifyRequest): UserRow {
  const caller = callers.get(request);
  if (!caller) throw new DocupodError(Problems.internal, 'route uses userOf without the authenticate hook');
  return caller.user;
}

export function requireAdmin(request: FastifyRequest): Principal {
  const p = principalOf(request);
  if (p.role !== 'admin') throw fail.forbidden('only an instance admin may do this');
  if (p.workspaceIds) throw fail.forbidden('this API key is limited to some workspaces; instance administration needs an unrestricted key or a login');
  return p;
}

/**
 * Resolves `{ws}` (slug or id) for the caller and checks their role in it. Not a member, a key not scoped to it, or
 * no such workspace: the same 404, so nobody learns which workspaces exist. A member below `minRole`: 403.
 * Also sets `request.workspaceId` for the access log. Cached per request, so calling it again is cheap.
 */
export async function requireWorkspace(request: FastifyRequest, minRole: WorkspaceRole): Promise<WorkspaceAccess> {
  const principal = principalOf(request);
  const ref = (request.params as { ws?: unknown } | undefined)?.ws;
  if (typeof ref !== 'string') throw new DocupodError(Problems.internal, 'requireWorkspace on a route without a {ws} parameter');
  // `/api/workspaces//stats`: the route matched with an empty segment, which names no workspace.
  if (ref === '') throw fail.notFound('workspace "" (the path has an empty workspace segment)');
  let access = resolved.get(request)?.ref === ref ? resolved.get(request)!.access : undefined;
  if (!access) {
    const auth = callers.get(request)?.auth;
    if (!auth) throw new DocupodError(Problems.internal, 'requireWorkspace without the authenticate hook');
    access = await auth.workspaceAccess(principal, ref);
    if (!access) throw fail.notFound(`workspace ${ref}`);
    resolved.set(request, { ref, access });
  }
  request.workspaceId = access.workspace.id;
  if (!roleAtLeast(access.role, minRole))
    throw fail.forbidden(`this needs the ${minRole} role in workspace ${access.workspace.slug}; you are ${access.role}`);
  return access;
}

/**
 * Puts every route registered in `app` (an encapsulated plugin context) behind authentication, and every route with
 * a `{ws}` parameter behind workspace membership (viewer at least), before body parsing and validation. Handlers
 * then call requireWorkspace with the role they need. Register workspace routes (documents, search, chats…) inside
 * such a context; test/route-isolation.test.ts checks every `/api/workspaces/:ws…` route.
 */
export function guardWorkspaceRoutes(app: FastifyInstance, auth: AuthService): void {
  app.addHook('onRequest', authenticate(auth));
  app.addHook('onRequest', async (request) => {
    const params = request.params as { ws?: unknown } | undefined;
    if (params && typeof params.ws === 'string') await requireWorkspace(request, 'viewer');
  });
}
