import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MembersRepo, WorkspacesRepo } from '../src/roles/gateway/workspaces/repository.js';
import { slugify } from '../src/roles/gateway/workspaces/service.js';
import { addMember, as, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

let s: TestServer;
let owner: Session;
let editor: Session;
let viewer: Session;
let stranger: Session;
beforeAll(async () => {
  s = await startTestServer();
  owner = await signup(s.app, 'owner@example.com');
  editor = await signup(s.app, 'editor@example.com');
  viewer = await signup(s.app, 'viewer@example.com');
  stranger = await signup(s.app, 'stranger@example.com');
});
afterAll(async () => s?.close());

describe('workspaces', () => {
  it('derives URL-safe slugs from names', () => {
    expect(slugify('Q3 Reports (EU)')).toBe('q3-reports-eu');
    expect(slugify('Café Crème')).toBe('cafe-creme');
    expect(slugify('!!!')).toBe('workspace');
  });

  it('creates a workspace whose creator is owner, and refuses a taken slug with 409', async () => {
    const res = await as(s.app, owner)({ method: 'POST', url: '/api/workspaces', payload: { name: 'Team Handbook', description: 'how we work' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ slug: 'team-handbook', name: 'Team Handbook', description: 'how we work', role: 'owner' });
    const dup = await as(s.app, stranger)({ method: 'POST', url: '/api/workspaces', payload: { name: 'team handbook' } });
    expect(dup.statusCode).toBe(409);
    const bad = await as(s.app, owner)({ method: 'POST', url: '/api/workspaces', payload: { name: 'x', slug: 'Not A Slug' } });
    expect(bad.statusCode).toBe(400);
  });

  it('finds a workspace by slug or id, and lists only your own', async () => {
    const ws = await createWorkspace(s.app, owner, 'Lookup');
    expect((await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}` })).json().id).toBe(ws.id);
    expect((await as(s.app, owner)({ url: `/api/workspaces/${ws.id}` })).json().slug).toBe(ws.slug);
    const mine = (await as(s.app, owner)({ url: '/api/workspaces' })).json().map((w: { slug: string }) => w.slug);
    expect(mine).toContain('lookup');
    const theirs = (await as(s.app, stranger)({ url: '/api/workspaces' })).json().map((w: { slug: string }) => w.slug);
    expect(theirs).not.toContain('lookup');
  });

  it('answers a non-member with the same 404 as a workspace that does not exist', async () => {
    const ws = await createWorkspace(s.app, owner, 'Secret');
    const hidden = await as(s.app, stranger)({ url: `/api/workspaces/${ws.slug}` });
    const missing = await as(s.app, stranger)({ url: '/api/workspaces/no-such-thing' });
    expect(hidden.statusCode).toBe(404);
    expect(missing.statusCode).toBe(404);
    expect(hidden.json().detail).toBe('workspace secret not found');
    expect((await as(s.app, stranger)({ url: `/api/workspaces/${ws.id}` })).statusCode).toBe(404);
  });

  it('lets only the owner rename or delete', async () => {
    const ws = await createWorkspace(s.app, owner, 'Renames');
    await addMember(s.app, owner, ws.slug, editor.email, 'editor');
    await addMember(s.app, owner, ws.slug, viewer.email, 'viewer');
    for (const who of [editor, viewer]) {
      expect((await as(s.app, who)({ method: 'PATCH', url: `/api/workspaces/${ws.slug}`, payload: { name: 'Mine now' } })).statusCode).toBe(403);
      expect((await as(s.app, who)({ method: 'DELETE', url: `/api/workspaces/${ws.slug}` })).statusCode).toBe(403);
    }
    const patched = await as(s.app, owner)({ method: 'PATCH', url: `/api/workspaces/${ws.slug}`, payload: { name: 'Renamed', description: 'new' } });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ name: 'Renamed', description: 'new', slug: ws.slug });
    expect((await as(s.app, owner)({ method: 'PATCH', url: `/api/workspaces/${ws.slug}`, payload: {} })).statusCode).toBe(400);
    expect((await as(s.app, owner)({ method: 'DELETE', url: `/api/workspaces/${ws.slug}` })).statusCode).toBe(204);
    expect((await as(s.app, owner)({ url: `/api/workspaces/${ws.slug}` })).statusCode).toBe(404);
    expect((await as(s.app, editor)({ url: '/api/workspaces' })).json().map((w: { id: string }) => w.id)).not.toContain(ws.id);
  });
});

describe('workspace members', () => {
  it('lets viewers read members but not change them', async () => {
    const ws = await createWorkspace(s.app, owner, 'Members');
    await addMember(s.app, owner, ws.slug, viewer.email, 'viewer');
    const list = await as(s.app, viewer)({ url: `/api/workspaces/${ws.slug}/members` });
    expect(list.statusCode).toBe(200);
    expect(list.json().map((m: { email: string; role: string }) => [m.email, m.role])).toEqual([
      ['owner@example.com', 'owner'],
      ['viewer@example.com', 'viewer'],
    ]);
    const v = as(s.app, viewer);
    expect((await v({ method: 'POST', url: `/api/workspaces/${ws.slug}/members`, payload: { email: editor.email, role: 'viewer' } })).statusCode).toBe(403);
    expect((await v({ method: 'PATCH', url: `/api/workspaces/${ws.slug}/members/${viewer.userId}`, payload: { role: 'owner' } })).statusCode).toBe(403);
    expect((await v({ method: 'DELETE', url: `/api/workspaces/${ws.slug}/members/${owner.userId}` })).statusCode).toBe(403);
  });

  it('lets editors not manage members either', async () => {
    const ws = await createWorkspace(s.app, owner, 'Editors');
    await addMember(s.app, owner, ws.slug, editor.email, 'editor');
    const res = await as(s.app, editor)({ method: 'POST', url: `/api/workspaces/${ws.slug}/members`, payload: { email: viewer.email, role: 'viewer' } });
    expect(res.statusCode).toBe(403);
    expect(res.json().detail).toMatch(/owner role/);
  });

  it('adds, changes and removes members; duplicates and unknown users are refused', async () => {
    const ws = await createWorkspace(s.app, owner, 'Lifecycle');
    const o = as(s.app, owner);
    const added = await o({ method: 'POST', url: `/api/workspaces/${ws.slug}/members`, payload: { email: 'EDITOR@example.com', role: 'viewer' } });
    expect(added.statusCode).toBe(201);
    expect(added.json()).toMatchObject({ userId: editor.userId, role: 'viewer' });
    expect((await o({ method: 'POST', url: `/api/workspaces/${ws.slug}/members`, payload: { email: editor.email, role: 'viewer' } })).statusCode).toBe(409);
    expect((await o({ method: 'POST', url: `/api/workspaces/${ws.slug}/members`, payload: { email: 'nobody@example.com', role: 'viewer' } })).statusCode).toBe(404);
    const changed = await o({ method: 'PATCH', url: `/api/workspaces/${ws.slug}/members/${editor.userId}`, payload: { role: 'editor' } });
    expect(changed.json().role).toBe('editor');
    expect((await o({ method: 'DELETE', url: `/api/workspaces/${ws.slug}/members/${editor.userId}` })).statusCode).toBe(204);
    expect((await as(s.app, editor)({ url: `/api/workspaces/${ws.slug}` })).statusCode).toBe(404);
    expect((await o({ method: 'DELETE', url: `/api/workspaces/${ws.slug}/members/${editor.userId}` })).statusCode).toBe(404);
  });

  it('never leaves a workspace without an owner (409)', async () => {
    const ws = await createWorkspace(s.app, owner, 'Last Owner');
    const o = as(s.app, owner);
    const demote = await o({ method: 'PATCH', url: `/api/workspaces/${ws.slug}/members/${owner.userId}`, payload: { role: 'editor' } });
    expect(demote.statusCode).toBe(409);
    expect(demote.json().detail).toMatch(/last owner/);
    expect((await o({ method: 'DELETE', url: `/api/workspaces/${ws.slug}/members/${owner.userId}` })).statusCode).toBe(409);
    // With a second owner, the first may step down.
    await addMember(s.app, owner, ws.slug, editor.email, 'owner');
    expect((await o({ method: 'DELETE', url: `/api/workspaces/${ws.slug}/members/${owner.userId}` })).statusCode).toBe(204);
    const e = as(s.app, editor);
    expect((await e({ method: 'DELETE', url: `/api/workspaces/${ws.slug}/members/${editor.userId}` })).statusCode).toBe(409);
  });

  it('lets any member leave on their own', async () => {
    const ws = await createWorkspace(s.app, owner, 'Leaving');
    await addMember(s.app, owner, ws.slug, viewer.email, 'viewer');
    expect((await as(s.app, viewer)({ method: 'DELETE', url: `/api/workspaces/${ws.slug}/members/${viewer.userId}` })).statusCode).toBe(204);
    expect((await as(s.app, viewer)({ url: `/api/workspaces/${ws.slug}` })).statusCode).toBe(404);
  });
});

describe('workspace repositories', () => {
  it('never read one workspace’s members through another', async () => {
    const a = await createWorkspace(s.app, owner, 'Repo A');
    const b = await createWorkspace(s.app, stranger, 'Repo B');
    const members = new MembersRepo(s.db.database.db);
    expect((await members.list(a.id)).map((m) => m.userId)).toEqual([owner.userId]);
    expect((await members.list(b.id)).map((m) => m.userId)).toEqual([stranger.userId]);
    expect(await members.role(a.id, stranger.userId)).toBeUndefined();
    expect(await members.get(b.id, owner.userId)).toBeUndefined();
    const listed = await new WorkspacesRepo(s.db.database.db).listForUser(owner.userId, [b.id]);
    expect(listed).toEqual([]);
  });
});
