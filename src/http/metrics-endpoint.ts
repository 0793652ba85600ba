import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Registry } from '../observability/metrics.js';
import { requireBearer } from './bearer.js';
import { installProblemHandler } from './problem.js';

// GET /metrics (Prometheus text). Label values carry no tenant data (no workspace or user ids: per-workspace usage is
// the authenticated API's), so the exposition is safe to scrape; who may scrape it is configuration: a token
// (DOCUPOD_METRICS_TOKEN) and/or a port of its own (DOCUPOD_METRICS_PORT) that the public port never serves.

export interface MetricsEndpointOptions {
  registry: Registry;
  /** DOCUPOD_METRICS_TOKEN: when set, scrapes need `Authorization: Bearer <token>`. */
  token?: string;
}

/** /metrics in its own encapsulated context, so the token guard covers it and nothing else. */
export const metricsEndpoint: FastifyPluginAsync<MetricsEndpointOptions> = async (scope, { registry, token }) => {
  if (token) scope.addHook('onRequest', requireBearer(token, 'DOCUPOD_METRICS_TOKEN'));
  scope.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
};

/** The listener for DOCUPOD_METRICS_PORT: /metrics and nothing else. */
export async function buildMetricsServer(opts: MetricsEndpointOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, requestIdHeader: false });
  installProblemHandler(app);
  await app.register(metricsEndpoint, opts);
  return app;
}
