import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/schema.js';
import { M } from '../src/modules/graph.js';
import { startRuntime, type Runtime } from '../src/modules/runtime.js';
import { silentLogger } from '../src/observability/logger.js';
import { as, createKey, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { freshDatabase, testDatabaseUrl, type TestDatabase } from './fixtures/database.js';
import { classifierManifest, classifierOnnx, writeOnnxModel } from './fixtures/onnx.js';
import { testConfig } from './fixtures/server.js';

// The Kubernetes layout: the ingress routes /models straight to models pods (`--role models` alone), which share the
// gateway's Postgres. There the models role checks users' API keys and logins itself against that database (the
// auth module without the gateway's /api routes), so a user's key works through the ingress without opening
// inference. The gateway runs in another runtime on the same database, as in another pod.

const JWT_SECRET = 'split-models-jwt-secret-of-at-least-32-chars';
const INTERNAL_TOKEN = 'split-models-internal-token-0123';
const predict = { method: 'POST' as const, url: '/models/classifier/predict', payload: { inputs: { x: [[1, 2, 3, 4]] } } };
const infer = {
  method: 'POST' as const,
  url: '/models/v2/models/classifier/infer',
  payload: { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
};

let dir: string;
let db: TestDatabase;
let gateway: Runtime;
let models: Runtime;
let admin: Session;
let member: Session;
let memberKey: string;
let workspaceKey: string;

function modelsAlone(env: Record<string, string>): Promise<Runtime> {
  const config = loadConfig({
    DOCUPOD_ROLE: 'models',
    DOCUPOD_LOG_LEVEL: 'silent',
    DOCUPOD_METRICS_ENABLED: 'false',
    DOCUPOD_DATA_DIR: 'memory://',
    DOCUPOD_JWT_SECRET: JWT_SECRET,
    DOCUPOD_INTERNAL_TOKEN: INTERNAL_TOKEN,
    DOCUPOD_MODELS_REPOSITORY: join(dir, 'models'),
    ...env,
  });
  // Listens like `docupod serve --role models`; it opens the database itself from DATABASE_URL.
  return startRuntime(config, silentLogger(), { listens: true });
}

describe.skipIf(!testDatabaseUrl())('models role alone on the shared Postgres (DOCUPOD_MODELS_INFERENCE=authenticated)', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'docupod-models-split-'));
    await writeOnnxModel(join(dir, 'models'), 'classifier', '1', classifierOnnx(), classifierManifest);
    db = await freshDatabase('postgres');
    // The gateway's runtime on that database: where users sign up and make keys.
    gateway = await startRuntime(testConfig(db, { DOCUPOD_JWT_SECRET: JWT_SECRET, DOCUPOD_MODELS_REPOSITORY: join(dir, 'models') }), silentLogger(), {
      provided: { [M.db]: db.database },
    });
    admin = await signup(gateway.app, 'admin@example.com');
    member = await signup(gateway.app, 'member@example.com');
    memberKey = (await createKey(gateway.app, member, { name: 'scripts' })).key;
    const ws = await createWorkspace(gateway.app, member, 'research');
    workspaceKey = (await createKey(gateway.app, member, { name: 'research only', workspaces: [ws.id] })).key;
    models = await modelsAlone({ DATABASE_URL: db.url! });
  });

  afterAll(async () => {
    await models?.stop();
    await gateway?.stop();
    await db?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts the auth module but not the gateway', () => {
    expect(models.order).toContain(M.auth);
    expect(models.order).toContain(M.db);
    expect(models.order).not.toContain(M.gateway);
  });

  it("serves predict and infer for a user's API key and access token, and a workspace-limited key", async () => {
    for (const who of [memberKey, member, workspaceKey, admin])
      for (const req of [predict, infer]) {
        const res = await as(models.app, who)(req);
        expect(res.statusCode, `${req.url}: ${res.body}`).toBe(200);
      }
    const body = (await as(models.app, memberKey)(predict)).json();
    expect(body.predictions).toEqual([expect.objectContaining({ label: expect.any(String), confidence: expect.any(Number) })]);
  });

  it('refuses a bad key, a bad or missing token with 401', async () => {
    for (const headers of [{}, { authorization: 'Bearer dp_not_a_key' }, { authorization: `Bearer ${memberKey}x` }, { authorization: 'Bearer not-a-jwt' }]) {
      const res = await models.app.inject({ ...predict, headers });
      expect(res.statusCode, JSON.stringify(headers)).toBe(401);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="docupod"/);
    }
  });

  it('checks access tokens with the shared JWT secret', async () => {
    const otherSecret = await modelsAlone({ DATABASE_URL: db.url!, DOCUPOD_JWT_SECRET: 'another-secret-of-at-least-thirty-two-chars' });
    try {
      expect((await as(otherSecret.app, member)(predict)).statusCode).toBe(401);
      expect((await as(otherSecret.app, memberKey)(predict)).statusCode).toBe(200); // keys do not depend on it
    } finally {
      await otherSecret.stop();
    }
  });

  it('keeps the internal token, and the repository endpoints for instance admins only', async () => {
    expect((await models.app.inject({ ...predict, headers: { authorization: `Bearer ${INTERNAL_TOKEN}` } })).statusCode).toBe(200);
    const index = { method: 'GET' as const, url: '/models/v2/repository/index' };
    expect((await as(models.app, admin)(index)).statusCode).toBe(200);
    expect((await as(models.app, memberKey)(index)).statusCode).toBe(403);
    expect((await models.app.inject({ ...index, headers: { authorization: `Bearer ${INTERNAL_TOKEN}` } })).statusCode).toBe(200);
  });

  it("does not serve the gateway's /api routes", async () => {
    expect((await as(models.app, member)({ method: 'GET', url: '/api/me' })).statusCode).toBe(404);
    expect((await models.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'member@example.com', password: 'x' } })).statusCode).toBe(404);
  });

  it('without DATABASE_URL accepts only the internal token, and says how to accept keys', async () => {
    const alone = await modelsAlone({});
    try {
      expect(alone.order).not.toContain(M.auth);
      const res = await as(alone.app, memberKey)(predict);
      expect(res.statusCode).toBe(401);
      expect(res.json().detail).toMatch(/without a shared database.*set DATABASE_URL/);
      expect((await alone.app.inject({ ...predict, headers: { authorization: `Bearer ${INTERNAL_TOKEN}` } })).statusCode).toBe(200);
    } finally {
      await alone.stop();
    }
  });
});
