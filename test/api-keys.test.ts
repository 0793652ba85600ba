import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/schema.js';
import { M } from '../src/modules/graph.js';
import { AuthService } from '../src/roles/gateway/auth/index.js';
import { WorkspaceService } from '../src/roles/gateway/workspaces/service.js';
import { openDatabase } from '../src/storage/database.js';
import { apiKeys } from '../src/storage/schema.js';
import { as, createKey, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

let s: TestServer;
let alice: Session;
let bob: Session;
beforeAll(async () => {
  s = await startTestServer();
  alice = await signup(s.app, 'alice@example.com');
  bob = await signup(s.app, 'bob@example.com');
});
afterAll(async () => s?.close());

describe('API keys', () => {
  it('creates a key shown once, authenticates with it, lists it without the key, and revokes it', async () => {
    const created = await createKey(s.app, alice, { name: 'ci' });
    expect(created.key).toMatch(/^dp_[A-Za-z0-9_-]{43}$/);
    expect(created.key.startsWith(created.prefix)).toBe(true);
    expect(created.workspaceIds).toBeNull();

    const me = await as(s.app, created.key)({ url: '/api/me' });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ user: { email: 'alice@example.com' }, via: 'apikey', keyId: created.id });

    const list = await as(s.app, alice)({ url: '/api/keys' });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual([expect.objectContaining({ id: created.id, name: 'ci', prefix: created.prefix, revokedAt: null })]);
    expect(list.body).not.toContain(created.key);
    expect(list.json()[0]).not.toHaveProperty('key');
    expect(list.json()[0]).not.toHaveProperty('keyHash');

    // Only the hash is stored.
    const [row] = await s.db.database.db.select().from(apiKeys).where(eq(apiKeys.id, created.id));
    expect(row!.keyHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(created.key);

    expect((await as(s.app, bob)({ method: 'DELETE', url: `/api/keys/${created.id}` })).statusCode).toBe(404); // not Bob's
    expect((await as(s.app, created.key)({ url: '/api/me' })).statusCode).toBe(200);
    expect((await as(s.app, alice)({ method: 'DELETE', url: `/api/keys/${created.id}` })).statusCode).toBe(204);
    const after = await as(s.app, created.key)({ url: '/api/me' });
    expect(after.statusCode).toBe(401);
    expect(after.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await as(s.app, alice)({ url: '/api/keys' })).json()[0].revokedAt).not.toBeNull();
  });

  it('rejects an expired key', async () => {
    const k = await createKey(s.app, alice, { name: 'short-lived', expiresInDays: 1 });
    expect((await as(s.app, k.key)({ url: '/api/me' })).statusCode).toBe(200);
    await s.db.database.db.update(apiKeys).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(apiKeys.id, k.id));
    // Real expiry needs no invalidation (the cached row's expiresAt is checked on every request); moving it in SQL
    // reaches the pod when its cache entry expires, which the test does not wait for.
    s.runtime.get<AuthService>(M.auth).invalidateAll();
    expect((await as(s.app, k.key)({ url: '/api/me' })).statusCode).toBe(401);
  });

  it('rejects a key that differs from a real one in one character', async () => {
    const k = await createKey(s.app, alice, { name: 'typo' });
    const last = k.key.at(-1) === 'A' ? 'B' : 'A';
    expect((await as(s.app, k.key.slice(0, -1) + last)({ url: '/api/me' })).statusCode).toBe(401);
  });

  it('records last use at most once a minute', async () => {
    const k = await createKey(s.app, alice, { name: 'usage' });
    const lastUsed = async () => (await s.db.database.db.select().from(apiKeys).where(eq(apiKeys.id, k.id)))[0]!.lastUsedAt;
    expect(await lastUsed()).toBeNull();
    await as(s.app, k.key)({ url: '/api/me' });
    const first = await lastUsed();
    expect(first).toBeInstanceOf(Date);
    await as(s.app, k.key)({ url: '/api/me' });
    expect((await lastUsed())!.getTime()).toBe(first!.getTime());
    // Once the stored time is over a minute old, the next use moves it.
    await s.db.database.db.update(apiKeys).set({ lastUsedAt: new Date(Date.now() - 120e3) }).where(eq(apiKeys.id, k.id));
    // A change straight in SQL reaches a running pod only when its auth cache entry expires; don't wait for that.
    s.runtime.get<AuthService>(M.auth).invalidateAll();
    await as(s.app, k.key)({ url: '/api/me' });
    expect(Date.now() - (await lastUsed())!.getTime()).toBeLessThan(30e3);
  });

  it('limits a workspace-scoped key to its workspaces: others answer 404', async () => {
    const a = await createWorkspace(s.app, alice, 'Scoped A');
    const b = await createWorkspace(s.app, alice, 'Scoped B');
    const k = await createKey(s.app, alice, { name: 'only-a', workspaces: [a.slug] });
    expect(k.workspaceIds).toEqual([a.id]);
    const key = as(s.app, k.key);
    expect((await key({ url: `/api/workspaces/${a.slug}` })).statusCode).toBe(200);
    expect((await key({ url: `/api/workspaces/${a.id}/members` })).statusCode).toBe(200);
    const other = await key({ url: `/api/workspaces/${b.slug}` });
    expect(other.statusCode).toBe(404);
    expect(other.json().detail).toBe(`workspace ${b.slug} not found`);
    expect((await key({ url: `/api/workspaces/${b.id}/members` })).statusCode).toBe(404);
    // The listing and /api/me show only what the key reaches.
    expect((await key({ url: '/api/workspaces' })).json().map((w: { slug: string }) => w.slug)).toEqual([a.slug]);
    expect((await key({ url: '/api/me' })).json()).toMatchObject({ workspaceIds: [a.id], memberships: [{ workspace: { slug: a.slug }, role: 'owner' }] });
    // It cannot create workspaces, nor mint a key that reaches further than itself.
    expect((await key({ method: 'POST', url: '/api/workspaces', payload: { name: 'Escape' } })).statusCode).toBe(403);
    expect((await key({ method: 'POST', url: '/api/keys', payload: { name: 'wider', workspaces: [b.slug] } })).statusCode).toBe(404);
    const child = await createKey(s.app, k.key, { name: 'child' });
    expect(child.workspaceIds).toEqual([a.id]);
  });

  it('refuses to scope a key to a workspace the user is not a member of', async () => {
    const bobs = await createWorkspace(s.app, bob, 'Bobs Place');
    const res = await as(s.app, alice)({ method: 'POST', url: '/api/keys', payload: { name: 'sneaky', workspaces: [bobs.slug] } });
    expect(res.statusCode).toBe(404);
  });

  it('validates the request body', async () => {
    const res = await as(s.app, alice)({ method: 'POST', url: '/api/keys', payload: { name: '', expiresInDays: 0 } });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors.map((e: { path: string }) => e.path).sort()).toEqual(['body.expiresInDays', 'body.name']);
  });
});

// The CLI runs the built program (`npm test` builds first) against an embedded data directory.
describe('docupod user create / apikey create', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'docupod-auth-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function docupod(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [path.resolve('bin/docupod.js'), ...args], {
        env: { PATH: process.env.PATH, DOCUPOD_DATA_DIR: dir, DOCUPOD_LOG_LEVEL: 'silent' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      child.stdin.end(stdin ?? '');
    });
  }

  it('creates an admin from a password on stdin, and a workspace-limited key printed once', async () => {
    const user = await docupod(['user', 'create', '--email', 'ops@example.com', '--password-stdin', '--name', 'Ops', '--admin'], 'from-stdin-pw\n');
    expect(user.code, user.stderr).toBe(0);
    expect(user.stdout).toMatch(/created admin ops@example.com/);

    // Give the user a workspace, then mint keys from the CLI.
    const database = await openDatabase({ dataDir: dir });
    try {
      const config = loadConfig({ DOCUPOD_DATA_DIR: dir, DOCUPOD_JWT_SECRET: 'x'.repeat(40) });
      const auth = new AuthService({ database, config });
      const session = await auth.login({ email: 'ops@example.com', password: 'from-stdin-pw' }, '127.0.0.1');
      expect(session.user).toMatchObject({ role: 'admin', name: 'Ops' });
      const principal = await auth.authenticate(`Bearer ${session.accessToken}`);
      await new WorkspaceService(database).create(principal, { name: 'Ops Docs' });
    } finally {
      await database.close();
    }
    const missing = await docupod(['apikey', 'create', '--email', 'nobody@example.com', '--name', 'ci']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no user with e-mail nobody@example.com/);
    const key = await docupod(['apikey', 'create', '--email', 'ops@example.com', '--name', 'ci', '--workspace', 'ops-docs']);
    expect(key.code, key.stderr).toBe(0);
    expect(key.stdout.trim()).toMatch(/^dp_[A-Za-z0-9_-]{43}$/);
    expect(key.stderr).toMatch(/shown once/);

    const again = await openDatabase({ dataDir: dir });
    try {
      const auth = new AuthService({ database: again, config: loadConfig({ DOCUPOD_DATA_DIR: dir, DOCUPOD_JWT_SECRET: 'x'.repeat(40) }) });
      const p = await auth.authenticate(`Bearer ${key.stdout.trim()}`);
      expect(p).toMatchObject({ via: 'apikey', role: 'admin' });
      expect(p.workspaceIds).toHaveLength(1);
    } finally {
      await again.close();
    }
  }, 180_000); // each command opens the embedded database: a few seconds apiece
});
