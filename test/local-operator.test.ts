import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { M } from '../src/modules/graph.js';
import type { AuthService } from '../src/roles/gateway/auth/service.js';
import { LOCAL_TOKEN_PREFIX } from '../src/roles/gateway/auth/local-operator.js';
import { as, createWorkspace, signup, PASSWORD } from './fixtures/auth.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// The local operator token (what `<dataDir>/server.json` hands the CLI): an instance admin acting as the first
// admin, or as a built-in user before anyone signed up; never a way to become someone by logging in.

let s: TestServer;
let token: string;
beforeEach(async () => {
  s = await startTestServer();
  token = s.runtime.get<AuthService>(M.auth).localToken!;
});
afterEach(async () => s?.close());

describe('the local operator token', () => {
  it('is a new random token at every start, with its own prefix', async () => {
    expect(token.startsWith(LOCAL_TOKEN_PREFIX)).toBe(true);
    const other = await startTestServer();
    try {
      expect(other.runtime.get<AuthService>(M.auth).localToken).not.toBe(token);
    } finally {
      await other.close();
    }
  });

  it('acts as a built-in admin before anyone signs up, whom the first sign-up does not count', async () => {
    const me = await as(s.app, token)({ method: 'GET', url: '/api/me' });
    expect(me.statusCode, me.body).toBe(200);
    expect(me.json()).toMatchObject({ user: { email: 'operator@localhost', role: 'admin' }, via: 'local', workspaceIds: null });
    const ws = await createWorkspace(s.app, token, 'Early');
    const members = await as(s.app, token)({ method: 'GET', url: `/api/workspaces/${ws.slug}/members` });
    expect(members.json()).toEqual([expect.objectContaining({ email: 'operator@localhost', role: 'owner' })]);

    const first = await signup(s.app, 'first@example.com');
    expect(first.role).toBe('admin');
    expect((await signup(s.app, 'second@example.com')).role).toBe('member');
    // From then on it acts as that first admin (the one made before the cache is consulted again).
    expect((await as(s.app, token)({ method: 'GET', url: '/api/me' })).json()).toMatchObject({ user: { email: 'first@example.com' }, via: 'local' });
  });

  it('reaches every workspace as an owner, members or not', async () => {
    const first = await signup(s.app, 'first@example.com');
    const other = await signup(s.app, 'other@example.com');
    const ws = await createWorkspace(s.app, other, 'Private');
    expect((await as(s.app, first)({ method: 'GET', url: `/api/workspaces/${ws.slug}` })).statusCode).toBe(404);
    const viaToken = await as(s.app, token)({ method: 'GET', url: `/api/workspaces/${ws.slug}` });
    expect(viaToken.statusCode).toBe(200);
    expect(viaToken.json()).toMatchObject({ slug: 'private', role: 'owner' });
  });

  it('rejects a wrong token of the same shape, and nobody can sign up or log in as the built-in user', async () => {
    const wrong = await as(s.app, `${LOCAL_TOKEN_PREFIX}${'A'.repeat(43)}`)({ method: 'GET', url: '/api/me' });
    expect(wrong.statusCode).toBe(401);
    await as(s.app, token)({ method: 'GET', url: '/api/me' }); // creates the built-in user
    const asOperator = await s.app.inject({ method: 'POST', url: '/api/auth/signup', payload: { email: 'operator@localhost', password: PASSWORD } });
    expect(asOperator.statusCode).toBe(400);
    const loginAs = await s.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'operator@localhost', password: PASSWORD } });
    expect(loginAs.statusCode).toBe(400);
    const auth = s.runtime.get<AuthService>(M.auth);
    await expect(auth.login({ email: 'operator@localhost', password: '!no-password:local-operator' }, '127.0.0.1')).rejects.toMatchObject({ status: 401 });
    await expect(auth.createUser({ email: 'operator@localhost', password: PASSWORD, role: 'admin' })).rejects.toMatchObject({ status: 400 });
  });

  it('creates API keys for another user, which an admin with a login may not', async () => {
    const admin = await signup(s.app, 'first@example.com');
    const bot = await signup(s.app, 'bot@example.com');
    const byAdmin = await as(s.app, admin)({ method: 'POST', url: `/api/users/${bot.userId}/keys`, payload: { name: 'ci' } });
    expect(byAdmin.statusCode).toBe(403);
    expect(byAdmin.json().detail).toContain('only the local operator');
    const created = await as(s.app, token)({ method: 'POST', url: `/api/users/${bot.userId}/keys`, payload: { name: 'ci' } });
    expect(created.statusCode, created.body).toBe(201);
    const me = await as(s.app, created.json().key)({ method: 'GET', url: '/api/me' });
    expect(me.json()).toMatchObject({ user: { email: 'bot@example.com' }, via: 'apikey' });
    expect((await as(s.app, token)({ method: 'POST', url: '/api/users/not-a-uuid/keys', payload: { name: 'ci' } })).statusCode).toBe(404);
  });
});
