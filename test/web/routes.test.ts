// The web role's static serving on its own (no browser): cache headers, the SPA fallback, the paths it never
// answers, and a clear page when the UI has not been built.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { NOT_UI, webRoutes } from '../../src/roles/web/routes.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function serve(root: string) {
  app = Fastify();
  app.get('/api/known', async () => ({ ok: true }));
  await app.register(webRoutes, { version: '9.9.9', root });
  await app.ready();
  return app;
}

function fakeDist(): string {
  const root = mkdtempSync(join(tmpdir(), 'docupod-web-'));
  mkdirSync(join(root, 'assets'));
  writeFileSync(join(root, 'index.html'), '<!doctype html><div id="root"></div><script type="module" src="/assets/index-abc123.js"></script>');
  writeFileSync(join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
  writeFileSync(join(root, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  return root;
}

describe('web role static serving', () => {
  it('serves index.html for / and for client routes, revalidated every time and with a CSP', async () => {
    const a = await serve(fakeDist());
    for (const url of ['/', '/w/team/chat/123', '/keys?x=1']) {
      const res = await a.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
      expect(res.body).toContain('<div id="root">');
    }
  });

  it('caches hashed assets for a year and other files not at all', async () => {
    const a = await serve(fakeDist());
    const js = await a.inject({ url: '/assets/index-abc123.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.headers['content-type']).toMatch(/javascript/);
    const icon = await a.inject({ url: '/favicon.svg' });
    expect(icon.headers['cache-control']).toBe('no-cache');
  });

  it('never answers API, docs, probe or model paths with the app, nor missing files', async () => {
    const a = await serve(fakeDist());
    for (const prefix of NOT_UI) {
      const res = await a.inject({ url: `${prefix}/does-not-exist` });
      expect(res.statusCode, prefix).toBe(404);
      expect(res.body, prefix).not.toContain('<div id="root">');
    }
    expect((await a.inject({ url: '/api/known' })).json()).toEqual({ ok: true });
    expect((await a.inject({ url: '/assets/old-999.js' })).statusCode).toBe(404);
    expect((await a.inject({ url: '/%E0%A4%A' })).statusCode).toBeGreaterThanOrEqual(400); // malformed escapes
    expect((await a.inject({ url: '/../../etc/passwd' })).body).not.toContain('root:');
  });

  it('says how to build the UI when web/dist is missing', async () => {
    const a = await serve(mkdtempSync(join(tmpdir(), 'docupod-empty-')));
    const res = await a.inject({ url: '/w/team/documents' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build');
    expect(res.body).toContain('/docs');
  });
});
