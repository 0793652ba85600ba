import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { M } from '../src/modules/graph.js';
import { authenticate, requireWorkspace, type AuthService } from '../src/roles/gateway/auth/index.js';
import { as, createKey, createWorkspace, signup, type RegisteredRoute, type Session } from './fixtures/auth.js';
import { startServerWithRouteList } from './fixtures/auth.js';
import type { TestServer } from './fixtures/server.js';

// Walks every route registered under /api/workspaces/:ws, whoever added it, and checks that neither a user of
// another workspace nor the owner's own key scoped to another workspace can tell workspace A exists, while A's
// owner gets through. Routes added later are covered without touching this file; give a route a sample body below
// when an empty one would not get past its validation.

const PREFIX = '/api/workspaces/:ws';

interface Ctx {
  owner: Session;
  newcomer: Session;
}

/** Bodies that pass validation, so the owner's request reaches the handler; keyed by "METHOD url". */
const SAMPLES: Record<string, (c: Ctx) => unknown> = {
  'PATCH /api/workspaces/:ws': () => ({ name: 'Renamed' }),
  'POST /api/workspaces/:ws/members': (c) => ({ email: c.newcomer.email, role: 'viewer' }),
  'PATCH /api/workspaces/:ws/members/:userId': () => ({ role: 'owner' }),
};

const CONTROL_OPEN = '/api/workspaces/:ws/__control-open';
const CONTROL_VALIDATES_FIRST = '/api/workspaces/:ws/__control-validates-first';

let s: TestServer & { routes: RegisteredRoute[] };
let ctx: Ctx;
let outsider: Session;
let keyElsewhere: string;

beforeAll(async () => {
  s = await startServerWithRouteList({
    // Two deliberately broken routes, outside any guarded context, prove the check can fail.
    beforeModules: (app: FastifyInstance) => {
      app.get(CONTROL_OPEN, async () => ({ ok: true }));
      app.withTypeProvider<ZodTypeProvider>().post(
        CONTROL_VALIDATES_FIRST,
        {
          onRequest: async (req, reply) => authenticate(s.runtime.get<AuthService>(M.auth)).call(app, req, reply),
          schema: { body: z.object({ query: z.string() }) },
        },
        async (req) => {
          await requireWorkspace(req, 'viewer');
          return { ok: true };
        },
      );
    },
  });
  await signup(s.app, 'first-admin@example.com'); // the instance admin is nobody below: admins get no workspace rights
  const owner = await signup(s.app, 'owner@example.com');
  const newcomer = await signup(s.app, 'newcomer@example.com');
  outsider = await signup(s.app, 'outsider@example.com');
  await createWorkspace(s.app, outsider, 'Outsider Home');
  const elsewhere = await createWorkspace(s.app, owner, 'Owner Elsewhere');
  keyElsewhere = (await createKey(s.app, owner, { name: 'elsewhere', workspaces: [elsewhere.slug] })).key;
  ctx = { owner, newcomer };
});
afterAll(async () => s?.close());

/** Problems found for one route and method; empty when isolation holds. */
async function check(route: RegisteredRoute, n: number): Promise<string[]> {
  const problems: string[] = [];
  const a = await createWorkspace(s.app, ctx.owner, `Isolation ${n}`);
  const fill = (ref: string) =>
    route.url.replace(/:(\w+)/g, (_m, name: string) => (name === 'ws' ? ref : name === 'userId' ? ctx.owner.userId : randomUUID())).replace(/\*$/, 'x');
  const sample = SAMPLES[`${route.method} ${route.url}`];
  const payload = sample ? sample(ctx) : ['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(route.method) ? undefined : {};
  const call = (who: Session | string, ref: string) =>
    as(s.app, who)({ method: route.method as 'GET', url: fill(ref), ...(payload !== undefined ? { payload: payload as object } : {}) });
  const hidden = (res: Awaited<ReturnType<typeof call>>, ref: string) => {
    if (res.statusCode !== 404) return false;
    if (route.method === 'HEAD') return true;
    try {
      return res.json().detail === `workspace ${ref} not found`;
    } catch {
      return false; // a 404 that is not our problem+json did not come from the workspace check
    }
  };

  for (const [who, caller, ref] of [
    ['a user of another workspace (by slug)', outsider, a.slug],
    ['a user of another workspace (by id)', outsider, a.id],
    ["the owner's key scoped to another workspace", keyElsewhere, a.slug],
  ] as const) {
    const res = await call(caller, ref);
    if (!hidden(res, ref)) problems.push(`${route.method} ${route.url}: ${who} got ${res.statusCode} ${res.body.slice(0, 160)}`);
  }
  let mine = await call(ctx.owner, a.slug);
  // A HEAD 404 has no body to tell "no such workspace" from "no such document": ask the GET twin.
  if (route.method === 'HEAD' && mine.statusCode === 404) mine = await as(s.app, ctx.owner)({ method: 'GET', url: fill(a.slug) });
  const ownerHidden = mine.statusCode === 404 && (() => {
    try {
      return mine.json().detail === `workspace ${a.slug} not found`;
    } catch {
      return false;
    }
  })();
  if (ownerHidden || [401, 403].includes(mine.statusCode))
    problems.push(`${route.method} ${route.url}: the owner got ${mine.statusCode} ${mine.body.slice(0, 160)}`);
  return problems;
}

const workspaceRoutes = () => s.routes.filter((r) => (r.url === PREFIX || r.url.startsWith(`${PREFIX}/`)) && !r.url.includes('__control'));

describe('route isolation', () => {
  it('finds the workspace routes (the walk is not vacuous)', () => {
    const seen = new Set(workspaceRoutes().map((r) => `${r.method} ${r.url}`));
    for (const r of ['GET', 'PATCH', 'DELETE'].map((m) => `${m} ${PREFIX}`).concat(['GET', 'POST'].map((m) => `${m} ${PREFIX}/members`)))
      expect(seen).toContain(r);
    expect(seen).toContain(`DELETE ${PREFIX}/members/:userId`);
  });

  it('hides workspace A from other workspaces’ users and keys on every route and method, and lets A’s owner in', async () => {
    const problems: string[] = [];
    let n = 0;
    for (const route of workspaceRoutes()) problems.push(...(await check(route, n++)));
    expect(problems).toEqual([]);
  });

  it('would catch a route that skips the workspace check', async () => {
    expect(await check({ method: 'GET', url: CONTROL_OPEN }, 1000)).not.toEqual([]);
  });

  it('would catch a route that validates the body before checking the workspace', async () => {
    const problems = await check({ method: 'POST', url: CONTROL_VALIDATES_FIRST }, 1001);
    expect(problems.join('\n')).toMatch(/got 400/);
  });
});
