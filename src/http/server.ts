import { randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import type { Logger } from '../observability/logger.js';
import { httpMetrics, type Registry } from '../observability/metrics.js';
import { installProblemHandler, sendProblem } from './problem.js';
import { Problems } from '../core/errors.js';

// buildServer() assembles the shared HTTP layer; modules add their route plugins, and only main listens.
// Tests drive it with app.inject(): no port, no network.

export type App = FastifyInstance;

export interface ServerOptions {
  log: Logger;
  metrics: Registry;
  bodyLimit: number;
  corsOrigins: string[];
  trustProxy: boolean;
  requestTimeoutMs?: number;
  version: string;
  /** Readiness: resolves true, or a reason string when a dependency does not answer. */
  readiness: () => Promise<true | string>;
  /** Liveness only fails when the process should be restarted. */
  exposeDocs?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's OpenTelemetry span (a no-op span unless tracing is configured). */
    span?: Span;
    /** Set by auth once the workspace of a request is known, so the access log can carry it. */
    workspaceId?: string;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger at run time; the cast keeps FastifyInstance's default generics everywhere.
    loggerInstance: opts.log as unknown as FastifyBaseLogger,
    // We write one access line per request in onResponse instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimit,
    trustProxy: opts.trustProxy,
    requestTimeout: opts.requestTimeoutMs ?? 0,
    requestIdHeader: false,
    // Honour an incoming X-Request-Id (from the ingress) when it is sane; otherwise make one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { coerceTypes: false } },
    routerOptions: { ignoreTrailingSlash: true },
  });

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandler(app);

  const { duration } = httpMetrics(opts.metrics);
  // One span per request; pipeline steps (retrieve, rerank, generate) open child spans under it.
  const tracer = trace.getTracer('docupod');
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    request.span = tracer.startSpan(`${request.method} ${request.routeOptions.url ?? 'unmatched'}`, {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': request.method, 'http.route': request.routeOptions.url ?? '', 'docupod.request_id': String(request.id) },
    });
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    duration.observe({ route, method: request.method, status: String(status) }, reply.elapsedTime / 1000);
    if (request.span) {
      request.span.setAttribute('http.response.status_code', status);
      if (status >= 500) request.span.setStatus({ code: SpanStatusCode.ERROR });
      request.span.end();
    }
    if (route === '/healthz' || route === '/readyz' || route === '/metrics') return; // probes would drown the log
    request.log.info(
      { method: request.method, route, status, durationMs: Math.round(reply.elapsedTime * 10) / 10, workspaceId: request.workspaceId },
      'request',
    );
  });

  await app.register(helmet, {
    // The docs UI loads its own inline script/style; a strict CSP here would break /docs, and the API serves JSON.
    contentSecurityPolicy: false,
    crossOriginResourcePolicy: { policy: 'same-site' },
  });
  await app.register(cors, {
    origin: opts.corsOrigins.length === 0 ? false : opts.corsOrigins.includes('*') ? true : opts.corsOrigins,
    credentials: true,
    exposedHeaders: ['x-request-id', 'retry-after'],
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'docupod API', version: opts.version, description: 'Chat with your documents and serve models.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A JWT access token, or an API key (dp_…)' },
        },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  if (opts.exposeDocs !== false) {
    await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true } });
  }

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    const ready = await opts.readiness().catch((err: Error) => `readiness check failed: ${err.message}`);
    if (ready === true) return { status: 'ready' };
    return sendProblem(reply, Problems.unavailable, ready);
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.type(opts.metrics.contentType);
    return opts.metrics.metrics();
  });

  return app;
}
