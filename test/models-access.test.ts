import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, createKey, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { classifierManifest, classifierOnnx, writeOnnxModel } from './fixtures/onnx.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// Who may call the models role when the gateway runs in the same process (`--role all`, `docker run -p 8080:8080`):
// inference needs a docupod login or API key by default, the repository endpoints an instance admin; nobody is
// trusted for coming from loopback (app.inject's requests come from 127.0.0.1).

const infer = { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };
const inference: Array<[method: 'GET' | 'POST', url: string, body?: object]> = [
  ['GET', '/models/v2/models/classifier'],
  ['GET', '/models/v2/models/classifier/ready'],
  ['POST', '/models/v2/models/classifier/infer', infer],
  ['POST', '/models/classifier/predict', { inputs: { x: [[1, 2, 3, 4]] } }],
];
const repository: Array<[method: 'GET' | 'POST', url: string]> = [
  ['GET', '/models/v2/repository/index'],
  ['POST', '/models/v2/repository/index'],
  ['POST', '/models/v2/repository/models/classifier/load'],
];

let dir: string;
let s: TestServer;
let admin: Session;
let member: Session;
let memberKey: string;
let scopedAdminKey: string;

async function startWith(env: Record<string, string>): Promise<TestServer> {
  return startTestServer({ env: { DOCUPOD_MODELS_REPOSITORY: join(dir, 'models'), ...env } });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'docupod-models-access-'));
  await writeOnnxModel(join(dir, 'models'), 'classifier', '1', classifierOnnx(), classifierManifest);
  s = await startWith({});
  admin = await signup(s.app, 'admin@example.com');
  member = await signup(s.app, 'member@example.com');
  memberKey = (await createKey(s.app, member, { name: 'scripts' })).key;
  const ws = await createWorkspace(s.app, admin, 'ops');
  scopedAdminKey = (await createKey(s.app, admin, { name: 'ops only', workspaces: [ws.id] })).key;
});

afterAll(async () => {
  await s?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('models role beside the gateway (default DOCUPOD_MODELS_INFERENCE=authenticated)', () => {
  it('refuses inference and model metadata without credentials or with a bad token', async () => {
    for (const [method, url, payload] of inference)
      for (const headers of [{}, { authorization: 'Bearer not-a-token' }, { authorization: 'Bearer dp_not_a_key' }]) {
        const res = await s.app.inject({ method, url, payload, headers });
        expect(res.statusCode, `${method} ${url} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="docupod"/);
        expect(res.body).not.toMatch(/logits|probabilities/);
      }
  });

  it('serves inference to any signed-in user, by login or API key', async () => {
    for (const who of [member, memberKey, admin])
      for (const [method, url, payload] of inference) {
        const res = await as(s.app, who)({ method, url, payload });
        expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(200);
      }
  });

  it('lets only an instance admin (or the internal token) use the repository endpoints', async () => {
    for (const [method, url] of repository) {
      expect((await s.app.inject({ method, url })).statusCode, `${method} ${url} anonymous`).toBe(401);
      expect((await as(s.app, member)({ method, url })).statusCode, `${method} ${url} member`).toBe(403);
      expect((await as(s.app, memberKey)({ method, url })).statusCode, `${method} ${url} member key`).toBe(403);
      expect((await as(s.app, scopedAdminKey)({ method, url })).statusCode, `${method} ${url} workspace-scoped admin key`).toBe(403);
      expect((await as(s.app, admin)({ method, url })).statusCode, `${method} ${url} admin`).toBe(200);
    }
    const index = (await as(s.app, admin)({ method: 'GET', url: '/models/v2/repository/index' })).json();
    expect(index).toEqual([expect.objectContaining({ name: 'classifier', state: 'READY' })]);
  });
});

describe('docupod models list --url', () => {
  const cli = (env: Record<string, string>) =>
    promisify(execFile)(process.execPath, ['bin/docupod.js', 'models', 'list', '--json'], { env: { PATH: process.env.PATH, DOCUPOD_LOG_LEVEL: 'silent', ...env } }).then(
      (r) => ({ code: 0, out: r.stdout }),
      (err: { code: number; stderr: string }) => ({ code: err.code, out: err.stderr }),
    );

  it("lists a running server's models with an admin's API key, and says why not with a member's", async () => {
    const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
    const adminKey = (await createKey(s.app, admin, { name: 'ops' })).key;
    const ok = await cli({ DOCUPOD_URL: url, DOCUPOD_API_KEY: adminKey });
    expect(ok.code, ok.out).toBe(0);
    expect(JSON.parse(ok.out)).toEqual([expect.objectContaining({ name: 'classifier', state: 'READY' })]);
    const refused = await cli({ DOCUPOD_URL: url, DOCUPOD_API_KEY: memberKey });
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/HTTP 403: model repository endpoints need an instance admin/);
  });
});

describe('models role beside the gateway, other settings', () => {
  it('serves inference without credentials with DOCUPOD_MODELS_INFERENCE=open; the repository stays admin-only', async () => {
    const open = await startWith({ DOCUPOD_MODELS_INFERENCE: 'open' });
    try {
      for (const [method, url, payload] of inference) expect((await open.app.inject({ method, url, payload })).statusCode, `${method} ${url}`).toBe(200);
      for (const [method, url] of repository) expect((await open.app.inject({ method, url })).statusCode, `${method} ${url}`).toBe(401);
    } finally {
      await open.close();
    }
  });

  it('accepts the internal token for both when one is configured', async () => {
    const token = 'models-access-internal-token-0123';
    const withToken = await startWith({ DOCUPOD_INTERNAL_TOKEN: token });
    try {
      const headers = { authorization: `Bearer ${token}` };
      for (const [method, url, payload] of inference) expect((await withToken.app.inject({ method, url, payload, headers })).statusCode, `${method} ${url}`).toBe(200);
      for (const [method, url] of repository) expect((await withToken.app.inject({ method, url, headers })).statusCode, `${method} ${url}`).toBe(200);
      expect((await withToken.app.inject({ method: 'GET', url: '/models/v2/repository/index', headers: { authorization: `Bearer ${token}x` } })).statusCode).toBe(401);
    } finally {
      await withToken.close();
    }
  });
});
