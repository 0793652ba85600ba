import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/schema.js';
import { as, createKey, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { spawnServer } from './fixtures/child-server.js';
import { uploadIndexed } from './fixtures/documents.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// /metrics carries no tenant data: after traffic through several workspaces and users, no workspace id, slug, user
// id, e-mail or key prefix appears anywhere in the exposition, and no label value looks like an id. Who may scrape it
// is configuration: DOCUPOD_METRICS_TOKEN (bearer) and DOCUPOD_METRICS_PORT (a listener of its own).

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** Every label value in a Prometheus text exposition. */
function labelValues(text: string): string[] {
  const values: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const labels = /^[a-zA-Z_:][\w:]*\{(.*)\} /.exec(line)?.[1];
    if (labels) for (const m of labels.matchAll(/\w+="((?:[^"\\]|\\.)*)"/g)) values.push(m[1]!);
  }
  return values;
}

describe('metrics after traffic in several workspaces', () => {
  let s: TestServer;
  const secrets: string[] = [];
  let text: string;

  beforeAll(async () => {
    s = await startTestServer();
    const users: Session[] = [await signup(s.app, 'alice.metrics@example.com'), await signup(s.app, 'bob.metrics@example.com')];
    for (const u of users) secrets.push(u.userId, u.email);
    const key = await createKey(s.app, users[1]!, { name: 'bob-key' });
    secrets.push(key.id, key.prefix);
    for (const [i, who] of [users[0]!, users[0]!, users[1]!].entries()) {
      const ws = await createWorkspace(s.app, who, `Tenant Space ${i}`);
      secrets.push(ws.id, ws.slug);
      await uploadIndexed(s, who, ws.slug, `notes-${i}.md`, `# Runbook ${i}\n\nRestart the ingest workers with systemctl restart docupod-ingest after a deploy.\n`);
      expect((await as(s.app, who)({ method: 'POST', url: `/api/workspaces/${ws.id}/search`, payload: { query: 'restart ingest workers', k: 3 } })).statusCode).toBe(200);
      const chat = (await as(s.app, who)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats`, payload: {} })).json();
      expect((await as(s.app, who)({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${chat.id}/messages`, payload: { content: 'How do I restart the ingest workers?' } })).statusCode).toBe(200);
      const completion = await as(s.app, i === 2 ? key.key : who)({ method: 'POST', url: '/v1/chat/completions', payload: { model: `docupod:${ws.slug}`, messages: [{ role: 'user', content: 'restart the workers?' }] } });
      expect(completion.statusCode, completion.body).toBe(200);
      // Failures too: a workspace someone else owns, and an id in an unmatched URL.
      expect((await as(s.app, users.find((u) => u !== who)!)({ url: `/api/workspaces/${ws.id}/documents` })).statusCode).toBe(404);
      expect((await s.app.inject({ url: `/api/nowhere/${ws.id}` })).statusCode).toBe(404);
    }
    text = (await s.app.inject({ url: '/metrics' })).body;
  }, 120_000);
  afterAll(async () => s?.close());

  it('measured the traffic (the scrape is not empty)', () => {
    // The extractive answerer runs no model, so it counts no tokens (issue 16); the series is there, at 0.
    expect(text).toMatch(/docupod_llm_tokens_total\{[^}]*provider="extractive"[^}]*direction="completion"[^}]*\} 0\n/);
    expect(text).toMatch(/http_request_duration_seconds_count\{[^}]*route="\/api\/workspaces\/:ws\/search"[^}]*\} 3/);
    expect(text).toMatch(/docupod_ingest_documents_total\{[^}]*state="indexed"[^}]*\} 3/);
  });

  it('names no workspace, user, e-mail or key anywhere in the exposition', () => {
    expect(secrets.length).toBeGreaterThan(10);
    for (const secret of secrets) expect(text, secret).not.toContain(secret);
  });

  it('has no label value shaped like an id or an e-mail', () => {
    const values = labelValues(text);
    expect(values.length).toBeGreaterThan(20);
    expect(values.filter((v) => UUID.test(v) || v.includes('@'))).toEqual([]);
  });
});

describe('who may scrape /metrics', () => {
  const token = 'metrics-token-for-tests-0123456789';

  it('is open on the HTTP port by default (it names no tenant)', async () => {
    const s = await startTestServer();
    try {
      const res = await s.app.inject({ url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('http_request_duration_seconds');
    } finally {
      await s.close();
    }
  });

  it('needs Authorization: Bearer <DOCUPOD_METRICS_TOKEN> when it is set', async () => {
    const s = await startTestServer({ env: { DOCUPOD_METRICS_TOKEN: token } });
    try {
      for (const authorization of [undefined, 'Bearer wrong-metrics-token-0123456789', `Bearer ${token}x`, token]) {
        const res = await s.app.inject({ url: '/metrics', headers: authorization ? { authorization } : {} });
        expect(res.statusCode, authorization).toBe(401);
        expect(res.headers['content-type']).toContain('application/problem+json');
        expect(res.json().detail).toMatch(/Bearer <DOCUPOD_METRICS_TOKEN>/);
        expect(res.body).not.toContain('http_request_duration_seconds');
      }
      const ok = await s.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } });
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toContain('http_request_duration_seconds');
      // The token guards /metrics only.
      expect((await s.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('moves to its own listener with DOCUPOD_METRICS_PORT (and keeps the token there)', async () => {
    const s = await startTestServer({ env: { DOCUPOD_METRICS_PORT: '9464', DOCUPOD_METRICS_TOKEN: token } });
    try {
      expect((await s.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(404);
      const metricsApp = s.runtime.metricsApp!;
      expect(metricsApp).toBeDefined();
      expect((await metricsApp.inject({ url: '/metrics' })).statusCode).toBe(401);
      const ok = await metricsApp.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } });
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toContain('http_request_duration_seconds');
      expect((await metricsApp.inject({ url: '/api/me' })).statusCode).toBe(404);
    } finally {
      await s.close();
    }
  });

  it('docupod serve listens on DOCUPOD_METRICS_PORT; the HTTP port answers 404 for /metrics', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'docupod-metrics-port-'));
    const server = await spawnServer(['--role', 'web'], { DOCUPOD_DATA_DIR: dir, DOCUPOD_METRICS_PORT: '0' });
    try {
      const metricsUrl = server.logs.find((l) => typeof l.metrics === 'string')?.metrics as string;
      expect(metricsUrl, server.output()).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(metricsUrl).not.toBe(server.url);
      expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
      const scrape = await fetch(`${metricsUrl}/metrics`);
      expect(scrape.status).toBe(200);
      expect(await scrape.text()).toContain('process_cpu_seconds_total');
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('validates the settings with messages naming the variable', async () => {
    const base = { DOCUPOD_DATA_DIR: 'memory://' };
    const issues = (env: Record<string, string>) => {
      try {
        loadConfig({ ...base, ...env });
      } catch (err) {
        if (err instanceof ConfigError) return err.message;
        throw err;
      }
      return '';
    };
    expect(issues({ DOCUPOD_METRICS_PORT: '8080' })).toMatch(/DOCUPOD_METRICS_PORT="8080": must differ from the HTTP port \(8080\)/);
    expect(issues({ PORT: '9000', DOCUPOD_METRICS_PORT: '9000' })).toMatch(/DOCUPOD_METRICS_PORT="9000": must differ from the HTTP port \(9000\)/);
    expect(issues({ DOCUPOD_METRICS_PORT: 'metrics' })).toMatch(/DOCUPOD_METRICS_PORT="metrics": expected a port number/);
    const short = issues({ DOCUPOD_METRICS_TOKEN: 'short' });
    expect(short).toMatch(/DOCUPOD_METRICS_TOKEN=.*must be at least 16 characters/);
    expect(short).not.toContain('short"');
    const dir = await mkdtemp(join(tmpdir(), 'docupod-metrics-token-'));
    try {
      await writeFile(join(dir, 'token'), `${token}\n`);
      expect(loadConfig({ ...base, DOCUPOD_METRICS_TOKEN_FILE: join(dir, 'token') }).observability.metricsToken).toBe(token);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
