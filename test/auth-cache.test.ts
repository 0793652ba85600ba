import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../src/storage/schema.js';
import { as, createKey, createWorkspace, login, signup, type Session } from './fixtures/auth.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// The gateway caches users, API keys and memberships in-process (DOCUPOD_AUTH_CACHE_TTL). Every change made through
// the API must apply to the very next request; a change made behind its back (SQL, another replica) applies when
// the entry expires. Each test first warms the cache, so a missing invalidation shows as a stale 200.

describe('auth cache: changes through the API apply at once', () => {
  let s: TestServer;
  let admin: Session;
  beforeAll(async () => {
    s = await startTestServer({ env: { DOCUPOD_AUTH_CACHE_TTL: '1h' } }); // nothing expires during the test
    admin = await signup(s.app, 'admin@example.com');
  });
  afterAll(async () => s?.close());

  it('locks a disabled user out on the next request (JWT and key), and lets them back in when re-enabled', async () => {
    const u = await signup(s.app, 'leaver@example.com');
    const key = (await createKey(s.app, u, { name: 'k' })).key;
    expect((await as(s.app, u)({ url: '/api/me' })).statusCode).toBe(200);
    expect((await as(s.app, key)({ url: '/api/me' })).statusCode).toBe(200);
    expect((await as(s.app, admin)({ method: 'PATCH', url: `/api/users/${u.userId}`, payload: { disabled: true } })).statusCode).toBe(200);
    expect((await as(s.app, u)({ url: '/api/me' })).statusCode).toBe(401);
    expect((await as(s.app, key)({ url: '/api/me' })).statusCode).toBe(401);
    expect((await as(s.app, admin)({ method: 'PATCH', url: `/api/users/${u.userId}`, payload: { disabled: false } })).statusCode).toBe(200);
    expect((await as(s.app, u)({ url: '/api/me' })).statusCode).toBe(200);
  });

  it('applies an instance role change on the next request', async () => {
    const u = await signup(s.app, 'promoted@example.com');
    expect((await as(s.app, u)({ url: '/api/users' })).statusCode).toBe(403);
    expect((await as(s.app, admin)({ method: 'PATCH', url: `/api/users/${u.userId}`, payload: { role: 'admin' } })).json()).toMatchObject({ role: 'admin' });
    expect((await as(s.app, u)({ url: '/api/users' })).statusCode).toBe(200);
    expect((await as(s.app, u)({ url: '/api/me' })).json()).toMatchObject({ user: { role: 'admin' } });
  });

  it('lets only admins change users', async () => {
    const u = await signup(s.app, 'plain@example.com');
    expect((await as(s.app, u)({ method: 'PATCH', url: `/api/users/${admin.userId}`, payload: { disabled: true } })).statusCode).toBe(403);
    expect((await as(s.app, admin)({ method: 'PATCH', url: '/api/users/00000000-0000-4000-8000-000000000000', payload: { disabled: true } })).statusCode).toBe(404);
    expect((await as(s.app, admin)({ method: 'PATCH', url: `/api/users/${admin.userId}`, payload: { disabled: true } })).statusCode).toBe(409);
  });

  it('answers 401 for a revoked key on the very next request', async () => {
    const k = await createKey(s.app, admin, { name: 'soon-revoked' });
    expect((await as(s.app, k.key)({ url: '/api/me' })).statusCode).toBe(200);
    expect((await as(s.app, admin)({ method: 'DELETE', url: `/api/keys/${k.id}` })).statusCode).toBe(204);
    expect((await as(s.app, k.key)({ url: '/api/me' })).statusCode).toBe(401);
  });

  it('shows membership changes in /api/me and workspace access at once: added, re-roled, removed', async () => {
    const owner = await signup(s.app, 'owner@example.com');
    const member = await signup(s.app, 'member@example.com');
    const ws = await createWorkspace(s.app, owner, 'Cached');
    const m = as(s.app, member);
    const o = as(s.app, owner);
    expect((await o({ url: '/api/me' })).json().memberships).toEqual([expect.objectContaining({ workspace: expect.objectContaining({ slug: ws.slug }), role: 'owner' })]);
    expect((await m({ url: '/api/me' })).json().memberships).toEqual([]);
    expect((await m({ url: `/api/workspaces/${ws.slug}` })).statusCode).toBe(404);

    expect((await o({ method: 'POST', url: `/api/workspaces/${ws.slug}/members`, payload: { email: member.email, role: 'viewer' } })).statusCode).toBe(201);
    expect((await m({ url: '/api/me' })).json().memberships).toEqual([expect.objectContaining({ role: 'viewer' })]);
    expect((await m({ url: `/api/workspaces/${ws.slug}` })).statusCode).toBe(200);
    expect((await m({ method: 'PATCH', url: `/api/workspaces/${ws.slug}`, payload: { name: 'Renamed' } })).statusCode).toBe(403);

    expect((await o({ method: 'PATCH', url: `/api/workspaces/${ws.slug}/members/${member.userId}`, payload: { role: 'owner' } })).statusCode).toBe(200);
    expect((await m({ method: 'PATCH', url: `/api/workspaces/${ws.slug}`, payload: { name: 'Renamed' } })).statusCode).toBe(200);
    expect((await o({ url: '/api/me' })).json().memberships[0].workspace.name).toBe('Renamed');

    expect((await m({ method: 'DELETE', url: `/api/workspaces/${ws.slug}/members/${owner.userId}` })).statusCode).toBe(204);
    expect((await o({ url: `/api/workspaces/${ws.slug}` })).statusCode).toBe(404);
    expect((await o({ url: '/api/me' })).json().memberships).toEqual([]);

    expect((await m({ method: 'DELETE', url: `/api/workspaces/${ws.slug}` })).statusCode).toBe(204);
    expect((await m({ url: '/api/me' })).json().memberships).toEqual([]);
  });
});

describe('auth cache: changes behind its back', () => {
  it('applies a change made straight in SQL once the entry expires (DOCUPOD_AUTH_CACHE_TTL)', async () => {
    const s = await startTestServer({ env: { DOCUPOD_AUTH_CACHE_TTL: '300ms' } });
    try {
      const u = await signup(s.app, 'sql@example.com');
      expect((await as(s.app, u)({ url: '/api/me' })).statusCode).toBe(200);
      await s.db.database.db.update(users).set({ disabled: true }).where(eq(users.id, u.userId));
      // Another replica (or psql) changed the row: this pod may still answer from its copy, but only briefly.
      await new Promise((r) => setTimeout(r, 350));
      expect((await as(s.app, u)({ url: '/api/me' })).statusCode).toBe(401);
    } finally {
      await s.close();
    }
  });

  it('reads the database on every request with the cache off (DOCUPOD_AUTH_CACHE_TTL=0)', async () => {
    const s = await startTestServer({ env: { DOCUPOD_AUTH_CACHE_TTL: '0' } });
    try {
      const u = await signup(s.app, 'nocache@example.com');
      const key = (await createKey(s.app, u, { name: 'k' })).key;
      expect((await as(s.app, key)({ url: '/api/me' })).statusCode).toBe(200);
      await s.db.database.db.update(users).set({ disabled: true }).where(eq(users.id, u.userId));
      expect((await as(s.app, u)({ url: '/api/me' })).statusCode).toBe(401);
      expect((await as(s.app, key)({ url: '/api/me' })).statusCode).toBe(401);
      await s.db.database.db.update(users).set({ disabled: false }).where(eq(users.id, u.userId));
      expect((await login(s.app, 'nocache@example.com')).accessToken).toBeTruthy();
    } finally {
      await s.close();
    }
  });
});
