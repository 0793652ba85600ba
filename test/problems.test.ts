import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, createWorkspace, signup, addMember, type Session } from './fixtures/auth.js';
import { startServerWithRouteList } from './fixtures/auth.js';
import type { TestServer } from './fixtures/server.js';

// One test per problem+json class: the status, the content type, the catalogue type and an actionable detail; and
// never a stack trace or internals.

let s: TestServer;
let owner: Session;
let viewer: Session;
let ws: { id: string; slug: string };

beforeAll(async () => {
  s = await startServerWithRouteList({
    env: { DOCUPOD_BODY_LIMIT: '4KB', DOCUPOD_LOGIN_MAX_ATTEMPTS: '2' },
    beforeModules: (app) => {
      // A route that fails the way a bug would, to prove what an unexpected error looks like from outside.
      app.get('/api/test/explode', async () => {
        throw new Error('connection to 10.0.0.7:5432 refused at Pool.connect (/srv/app/node_modules/pg/lib/pool.js:45)');
      });
    },
  });
  owner = await signup(s.app, 'owner@example.com');
  viewer = await signup(s.app, 'viewer@example.com');
  ws = await createWorkspace(s.app, owner, 'Problems');
  await addMember(s.app, owner, ws.slug, viewer.email, 'viewer');
});
afterAll(async () => s?.close());

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- problem bodies carry extension members
function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; json: () => any }, status: number, type: string) {
  expect(res.statusCode).toBe(status);
  expect(String(res.headers['content-type'])).toContain('application/problem+json');
  const body = res.json();
  expect(body).toMatchObject({ status, type });
  expect(typeof body.title).toBe('string');
  expect(body.detail.length).toBeGreaterThan(5);
  expect(body.instance).toBe(res.headers['x-request-id']);
  expect(JSON.stringify(body)).not.toMatch(/node_modules|\.js:\d+|at [A-Z]\w+\./);
  return body;
}

describe('problem+json', () => {
  it('400: names every failing field', async () => {
    const res = await s.app.inject({ method: 'POST', url: '/api/auth/signup', payload: { email: 'not-an-email', password: 'short' } });
    const body = expectProblem(res, 400, '/problems/validation');
    const paths = body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['body.email', 'body.password']));
  });

  it('401: says how to authenticate and sets WWW-Authenticate', async () => {
    const res = await s.app.inject({ url: '/api/me' });
    expectProblem(res, 401, '/problems/unauthorized');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('403: a viewer may not change members, and is told which role is needed', async () => {
    const res = await as(s.app, viewer)({ method: 'POST', url: `/api/workspaces/${ws.slug}/members`, payload: { email: 'x@example.com', role: 'viewer' } });
    const body = expectProblem(res, 403, '/problems/forbidden');
    expect(body.detail).toMatch(/owner/);
  });

  it('404: an unknown route and a workspace the caller cannot see look the same', async () => {
    expectProblem(await s.app.inject({ url: '/api/nothing-here' }), 404, '/problems/not-found');
    const res = await as(s.app, owner)({ url: '/api/workspaces/someone-elses' });
    expectProblem(res, 404, '/problems/not-found');
  });

  it('409: a taken workspace name', async () => {
    const res = await as(s.app, owner)({ method: 'POST', url: '/api/workspaces', payload: { name: 'Problems' } });
    expectProblem(res, 409, '/problems/conflict');
  });

  it('413: a body over the limit names the setting', async () => {
    const res = await s.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'a@example.com', password: 'x'.repeat(8000) } });
    const body = expectProblem(res, 413, '/problems/payload-too-large');
    expect(body.detail).toContain('DOCUPOD_BODY_LIMIT');
  });

  it('415: an upload that is not multipart says how to send files', async () => {
    const res = await as(s.app, owner)({ method: 'POST', url: `/api/workspaces/${ws.slug}/documents`, payload: { file: 'x' } });
    const body = expectProblem(res, 415, '/problems/unsupported-media-type');
    expect(body.detail).toMatch(/multipart\/form-data/);
  });

  it('429: too many failed logins, with Retry-After', async () => {
    for (let i = 0; i < 2; i++) await s.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'viewer@example.com', password: 'wrong password!' } });
    const res = await s.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'viewer@example.com', password: 'wrong password!' } });
    expectProblem(res, 429, '/problems/rate-limited');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('500: an unexpected error says only "internal error" and carries the request id', async () => {
    const res = await s.app.inject({ url: '/api/test/explode', headers: { 'x-request-id': 'trace-me-42' } });
    const body = expectProblem(res, 500, '/problems/internal');
    expect(body.detail).toBe('internal error');
    expect(body.instance).toBe('trace-me-42');
    expect(res.body).not.toContain('10.0.0.7');
  });

  it('503: /readyz explains what is not ready', async () => {
    s.runtime.markStopping();
    const res = await s.app.inject({ url: '/readyz' });
    const body = expectProblem(res, 503, '/problems/unavailable');
    expect(body.detail).toBe('shutting down');
  });
});
