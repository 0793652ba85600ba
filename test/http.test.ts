import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './fixtures/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ env: { DOCUPOD_CORS_ORIGINS: 'https://ui.example', DOCUPOD_BODY_LIMIT: '2KB' } });
});
afterAll(async () => s.close());

describe('HTTP conventions', () => {
  it('serves a valid OpenAPI 3.1 document', async () => {
    const res = await s.app.inject({ url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(Object.keys(doc.paths)).toContain('/api/status');
  });

  it('serves interactive docs at /docs', async () => {
    const res = await s.app.inject({ url: '/docs' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toMatch(/swagger/i);
  });

  it('answers probes', async () => {
    expect((await s.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await s.app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });
  });

  it('exposes request latency by route template on /metrics', async () => {
    await s.app.inject({ url: '/api/status' });
    const text = (await s.app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/http_request_duration_seconds_count\{[^}]*route="\/api\/status",method="GET",status="200"\} 1/);
  });

  it('echoes a sane incoming request id and makes one otherwise', async () => {
    const given = await s.app.inject({ url: '/healthz', headers: { 'x-request-id': 'abc-123' } });
    expect(given.headers['x-request-id']).toBe('abc-123');
    const bad = await s.app.inject({ url: '/healthz', headers: { 'x-request-id': '<script>' } });
    expect(bad.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('sets security headers', async () => {
    const res = await s.app.inject({ url: '/healthz' });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['strict-transport-security']).toBeDefined();
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
  });

  it('allows CORS only for configured origins', async () => {
    const ok = await s.app.inject({ method: 'OPTIONS', url: '/api/status', headers: { origin: 'https://ui.example', 'access-control-request-method': 'GET' } });
    expect(ok.headers['access-control-allow-origin']).toBe('https://ui.example');
    const other = await s.app.inject({ method: 'OPTIONS', url: '/api/status', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('rejects a body over the limit with 413 problem+json', async () => {
    const res = await s.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(4000) }) });
    expect(res.statusCode).toBe(413);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ type: '/problems/payload-too-large', status: 413 });
  });

  it('rejects malformed JSON with 400 problem+json', async () => {
    const res = await s.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"email":' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ type: '/problems/bad-request', status: 400 });
    expect(res.json().detail).toMatch(/not valid JSON/);
  });
});
