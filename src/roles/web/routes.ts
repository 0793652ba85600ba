import { stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

/**
 * Where `npm run build` (root) puts the UI: `npm run build -w web` writes web/dist. Both src/roles/web (vitest) and
 * dist/roles/web (the built server) sit three levels below the repository root.
 */
export const defaultWebRoot = fileURLToPath(new URL('../../../web/dist', import.meta.url));

/** Paths the UI never answers, so an unknown API path stays a problem+json 404 instead of becoming index.html. */
export const NOT_UI = ['/api', '/v1', '/docs', '/models', '/internal', '/healthz', '/readyz', '/metrics', '/openapi.json'];

const isReserved = (path: string) => NOT_UI.some((p) => path === p || path.startsWith(`${p}/`) || path.startsWith(`${p}?`));

// Mantine writes <style> tags at run time, hence 'unsafe-inline' for styles; scripts come only from our origin.
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; " +
  "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

const notBuilt = (root: string, version: string) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>docupod</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5">
<main><h1>docupod ${version}</h1><p>The API is running, but the web UI has not been built: <code>${root}</code> has no
<code>index.html</code>.</p><p>Build it with <code>npm run build</code> (the server and the UI) or <code>npm run build -w web</code>
(the UI only), then reload this page.</p><p>Meanwhile, see the <a href="/docs">API documentation</a>.</p></main></body></html>`;

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Serves the single-page UI from web/dist: hashed files under /assets with a year-long immutable cache, everything
 * else revalidated, and index.html for any other GET that is not an API/docs/probe path (client-side routes such as
 * /w/team/chat). Files are looked up per request, so building the UI after the server started works without a restart.
 */
export const webRoutes: FastifyPluginAsync<{ version: string; root?: string }> = async (app, opts) => {
  const root = resolve(opts.root ?? defaultWebRoot);
  await app.register(fastifyStatic, { root, serve: false, decorateReply: true, index: false, etag: true, lastModified: true });

  const sendIndex = async (reply: FastifyReply) => {
    if (!(await isFile(join(root, 'index.html')))) {
      reply.code(503).type('text/html; charset=utf-8').header('cache-control', 'no-store');
      return notBuilt(root, opts.version);
    }
    reply.header('cache-control', 'no-cache').header('content-security-policy', CSP);
    return reply.sendFile('index.html', { cacheControl: false });
  };

  app.get('/', { schema: { hide: true } }, async (_req, reply) => sendIndex(reply));

  app.get('/*', { schema: { hide: true } }, async (request, reply) => {
    let path: string;
    try {
      path = decodeURIComponent(request.url.split('?')[0] ?? '/');
    } catch {
      return reply.callNotFound(); // malformed percent-encoding
    }
    if (isReserved(path)) return reply.callNotFound();
    const file = resolve(root, `.${path}`);
    if (file.startsWith(root + sep) && (await isFile(file))) {
      const hashed = path.startsWith('/assets/');
      reply.header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
      return reply.sendFile(path.slice(1), { cacheControl: false });
    }
    // A missing file (an old hashed asset, a typo'd favicon) is a 404, not the app's HTML.
    if (extname(path) !== '') return reply.callNotFound();
    return sendIndex(reply);
  });
};
