import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
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
    // The MCP write tools on, so the walk over MCP tools below covers them too.
    env: { DOCUPOD_MCP_WRITE: 'true' },
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

// /mcp has no {ws} in its path: the workspace is a tool argument. The same walk over every MCP tool that takes one
// (listed by the server itself, so tools added later are covered), the document resources and the prompt: other workspaces' users and keys get the words a
// workspace that does not exist gets, the owner gets through.
describe('route isolation of the MCP tools', () => {
  type Json = { type?: string; format?: string; properties?: Record<string, Json>; required?: string[]; minimum?: number };
  /** Arguments that pass a tool's input schema: its required properties, from their JSON Schema. */
  const sampleArgs = (schema: Json): Record<string, unknown> =>
    Object.fromEntries(
      (schema.required ?? []).map((name) => {
        const p = schema.properties?.[name] ?? {};
        return [name, p.type === 'string' ? (p.format === 'uuid' ? randomUUID() : 'how are backups kept') : p.type === 'integer' || p.type === 'number' ? (p.minimum ?? 1) : p.type === 'boolean' ? true : {}];
      }),
    );

  it('hides workspace A from other workspaces’ users and keys in every tool that takes a workspace, and lets A’s owner in', async () => {
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = s.app.server.address();
    const url = new URL(`http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/mcp`);
    const clients: Client[] = [];
    const connect = async (who: Session | string) => {
      const client = new Client({ name: 'isolation', version: '1' });
      const token = typeof who === 'string' ? who : who.accessToken;
      await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      clients.push(client);
      return client;
    };
    const [asOutsider, asKeyElsewhere, asOwner] = await Promise.all([connect(outsider), connect(keyElsewhere), connect(ctx.owner)]);
    const a = await createWorkspace(s.app, ctx.owner, 'Isolation MCP');
    const tools = (await asOwner.listTools()).tools.filter((t: Tool) => (t.inputSchema.properties ?? {}).workspace);
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['search', 'get_document', 'get_chunk', 'list_documents', 'ask', 'add_document', 'delete_document']));
    const problems: string[] = [];
    const textOf = (r: unknown) => ((r as CallToolResult).content[0] as { text?: string } | undefined)?.text ?? '';
    for (const tool of tools) {
      const args = sampleArgs(tool.inputSchema as Json);
      for (const [who, client, ref] of [
        ['a user of another workspace (by slug)', asOutsider, a.slug],
        ['a user of another workspace (by id)', asOutsider, a.id],
        ["the owner's key scoped to another workspace", asKeyElsewhere, a.slug],
      ] as const) {
        const r = await client.callTool({ name: tool.name, arguments: { ...args, workspace: ref } });
        if (textOf(r) !== `Not found: workspace ${ref} not found`) problems.push(`${tool.name}: ${who} got ${JSON.stringify(r).slice(0, 160)}`);
      }
      const mine = await asOwner.callTool({ name: tool.name, arguments: { ...args, workspace: a.slug } });
      if (/workspace .* not found|Forbidden|Authentication/.test(textOf(mine))) problems.push(`${tool.name}: the owner got ${textOf(mine).slice(0, 160)}`);
    }
    // Resources and the prompt take the workspace in their URI or arguments: the same walk.
    const failure = (p: Promise<unknown>) => p.then(() => '', (err: Error) => err.message);
    const docId = randomUUID();
    for (const [who, client, ref] of [
      ['a user of another workspace (by slug)', asOutsider, a.slug],
      ['a user of another workspace (by id)', asOutsider, a.id],
      ["the owner's key scoped to another workspace", asKeyElsewhere, a.slug],
    ] as const) {
      const read = await failure(client.readResource({ uri: `docupod://${ref}/${docId}` }));
      if (!read.endsWith(`Not found: workspace ${ref} not found`)) problems.push(`resource: ${who} got ${read.slice(0, 160)}`);
      const prompt = await failure(client.getPrompt({ name: 'answer_from_documents', arguments: { question: 'q?', workspace: ref } }));
      if (!prompt.endsWith(`Not found: workspace ${ref} not found`)) problems.push(`prompt: ${who} got ${prompt.slice(0, 160)}`);
      const listed = (await client.listResources()).resources.filter((r) => r.uri.startsWith(`docupod://${a.slug}/`));
      if (listed.length > 0) problems.push(`resources/list: ${who} sees ${listed.length} of A's documents`);
    }
    const mine = await failure(asOwner.readResource({ uri: `docupod://${a.slug}/${docId}` }));
    if (!mine.endsWith(`Not found: document ${docId} not found`)) problems.push(`resource: the owner got ${mine.slice(0, 160)}`);
    if (await failure(asOwner.getPrompt({ name: 'answer_from_documents', arguments: { question: 'q?', workspace: a.slug } }))) problems.push('prompt: the owner was refused');
    await Promise.all(clients.map((c) => c.close()));
    expect(problems).toEqual([]);
  });
});
