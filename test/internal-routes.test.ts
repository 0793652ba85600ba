import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { loadConfig } from '../src/config/schema.js';
import { M } from '../src/modules/graph.js';
import { startRuntime, type Runtime } from '../src/modules/runtime.js';
import { silentLogger } from '../src/observability/logger.js';
import { ChatContract, STREAM_METHODS } from '../src/roles/chat/contract.js';
import { IngestContract } from '../src/roles/ingest/contract.js';
import { ModelsContract } from '../src/roles/models/contract.js';
import { RetrievalContract } from '../src/roles/retrieval/contract.js';
import { bearer, createKey, createWorkspace, signup } from './fixtures/auth.js';
import { freshDatabase, type TestDatabase } from './fixtures/database.js';

// Every /internal route that could exist (every method of every role contract, and the chat streams), in every role
// layout as `docupod serve` starts it: without a token, with a real user's login or API key, or with a wrong token,
// each answers 404 (not served) or 401, and never anything else. With the right token, a split role's own routes
// answer and the rest stay 404. The layouts' expectations are written out here, not derived from src/modules/graph.ts.

const TOKEN = 'internal-routes-test-token-0123456789';
const base = {
  DOCUPOD_DATA_DIR: 'memory://',
  DOCUPOD_LOG_LEVEL: 'silent',
  DOCUPOD_METRICS_ENABLED: 'false',
  DOCUPOD_JWT_SECRET: 'internal-routes-test-jwt-secret-0123456789',
  DOCUPOD_INGEST_PARSER_THREADS: '1',
  // Where split roles would find the others; nothing here calls them.
  DOCUPOD_INGEST_URL: 'http://127.0.0.1:1',
  DOCUPOD_RETRIEVAL_URL: 'http://127.0.0.1:1',
  DOCUPOD_CHAT_URL: 'http://127.0.0.1:1',
  DOCUPOD_MODELS_URL: 'http://127.0.0.1:1',
};

interface Layout {
  name: string;
  roles: string;
  token: boolean;
  /** Roles whose internal API this layout serves (their callers run in other processes). */
  served: string[];
}

const LAYOUTS: Layout[] = [
  // `npm start` and `docker run -p 8080:8080`: every role in one process, no internal token configured.
  { name: 'all, defaults', roles: 'all', token: false, served: [] },
  { name: 'all, with a token', roles: 'all', token: true, served: [] },
  { name: 'gateway', roles: 'gateway', token: true, served: [] },
  { name: 'ingest', roles: 'ingest', token: true, served: ['ingest'] },
  { name: 'retrieval', roles: 'retrieval', token: true, served: ['retrieval'] },
  { name: 'chat', roles: 'chat', token: true, served: ['chat'] },
  { name: 'models', roles: 'models', token: true, served: ['models'] },
  { name: 'web', roles: 'web', token: true, served: [] },
  { name: 'web, no token', roles: 'web', token: false, served: [] },
  { name: 'gateway+web', roles: 'gateway,web', token: true, served: [] },
  { name: 'every backend in one pod', roles: 'ingest,retrieval,chat,models', token: true, served: ['ingest', 'retrieval', 'chat', 'models'] },
  { name: 'gateway with every backend', roles: 'gateway,ingest,retrieval,chat,models', token: true, served: [] },
  { name: 'chat+retrieval', roles: 'chat,retrieval', token: true, served: ['retrieval', 'chat'] },
];

interface Route {
  role: string;
  url: string;
  stream: boolean;
}

const ROUTES: Route[] = [
  ...[RetrievalContract, IngestContract, ChatContract, ModelsContract].flatMap((c) =>
    Object.keys(c.methods).map((m) => ({ role: c.role, url: `/internal/${c.role}/${m}`, stream: false })),
  ),
  ...STREAM_METHODS.map((m) => ({ role: 'chat', url: `/internal/chat/stream/${m}`, stream: true })),
];

let db: TestDatabase;
let all: Runtime;
const runtimes = new Map<string, Runtime>();
let callers: Array<[who: string, headers: Record<string, string>]>;
let body: Record<string, unknown>;

beforeAll(async () => {
  // One database for every layout, as split pods share one Postgres.
  db = await freshDatabase('pglite');
  const start = (roles: string, token: boolean) =>
    startRuntime(loadConfig({ ...base, DOCUPOD_ROLE: roles, ...(token ? { DOCUPOD_INTERNAL_TOKEN: TOKEN } : {}) }), silentLogger(), {
      provided: { [M.db]: db.database },
      listens: true,
    });
  for (const l of LAYOUTS) runtimes.set(l.name, await start(l.roles, l.token));
  all = runtimes.get('all, defaults')!;
  // A real user with data: what an anonymous attacker would ask the internal API about.
  const user = await signup(all.app, 'victim@example.com');
  const ws = await createWorkspace(all.app, user, 'Secrets');
  const key = await createKey(all.app, user, { name: 'cli' });
  body = { workspaceId: ws.id, userId: user.userId, query: 'password', k: 5, chatId: ws.id, id: ws.id, documentId: ws.id, content: 'hi', messages: [{ role: 'user', content: 'hi' }] };
  callers = [
    ['nobody', {}],
    ["a user's login", bearer(user.accessToken)],
    ["a user's API key", bearer(key.key)],
    ['a wrong token', bearer('internal-routes-test-token-0123456780')],
    ['the token without "Bearer"', { authorization: TOKEN }],
  ];
}, 180_000);

afterAll(async () => {
  for (const rt of runtimes.values()) await rt.stop();
  await db?.close();
});

const post = (rt: Runtime, url: string, headers: Record<string, string>, payload: object) => rt.app.inject({ method: 'POST', url, headers, payload });

function expectRefused(res: LightMyRequestResponse, what: string) {
  expect([401, 404], `${what}: ${res.statusCode} ${res.body.slice(0, 200)}`).toContain(res.statusCode);
  expect(res.headers['content-type'], what).toContain('application/problem+json');
  expect(Object.keys(res.json()).sort(), what).toEqual(['detail', 'instance', 'status', 'title', 'type']);
}

describe('the internal API in every role layout', () => {
  it('lists every route the contracts define', () => {
    expect(ROUTES.length).toBeGreaterThan(20);
    expect(ROUTES.map((r) => r.url)).toEqual(expect.arrayContaining(['/internal/retrieval/search', '/internal/ingest/list', '/internal/chat/getChat', '/internal/chat/stream/answer', '/internal/models/status']));
  });

  describe.each(LAYOUTS)('$name', (layout) => {
    it('answers 404 or 401 to every internal route without the right token', async () => {
      const rt = runtimes.get(layout.name)!;
      for (const route of ROUTES)
        for (const [who, headers] of callers) {
          const res = await post(rt, route.url, headers, body);
          expectRefused(res, `${layout.name}: POST ${route.url} as ${who}`);
          if (!layout.served.includes(route.role)) expect(res.statusCode, `${layout.name}: ${route.url} is not served here`).toBe(404);
          else expect(res.statusCode, `${layout.name}: ${route.url} as ${who}`).toBe(401);
        }
    });

    it('with the right token, answers its own roles and only those', async () => {
      const rt = runtimes.get(layout.name)!;
      for (const route of ROUTES) {
        const res = await post(rt, route.url, bearer(TOKEN), {});
        const what = `${layout.name}: POST ${route.url} with the token`;
        if (!layout.served.includes(route.role)) {
          expect(res.statusCode, what).toBe(404);
          continue;
        }
        // Reached the contract: an empty body is answered (status, lists with defaults) or refused as invalid.
        if (route.stream) expect([res.statusCode, res.headers['content-type']], what).toEqual([200, 'application/x-ndjson']);
        else expect([200, 400], `${what}: ${res.statusCode} ${res.body.slice(0, 200)}`).toContain(res.statusCode);
      }
      for (const role of layout.served) {
        const status = await post(rt, `/internal/${role}/status`, bearer(TOKEN), {});
        expect([status.statusCode, status.json().role], `${layout.name}: ${role} status`).toEqual([200, role]);
      }
    });
  });
});
