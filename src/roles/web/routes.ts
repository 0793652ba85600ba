import type { FastifyPluginAsync } from 'fastify';

/** Serves the single-page UI. Until the web UI is built, `/` answers with a small page pointing at the API docs. */
export const webRoutes: FastifyPluginAsync<{ version: string }> = async (app, opts) => {
  app.get('/', { schema: { hide: true } }, async (_req, reply) => {
    reply.type('text/html; charset=utf-8');
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>docupod</title></head>
<body><main><h1>docupod ${opts.version}</h1><p>The API is running. See the <a href="/docs">API documentation</a>.</p></main></body></html>`;
  });
};
