import { randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { jsonSchemaTransform, jsonSchemaTransformObject, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from '../observability/logger.js';
import { httpMetrics, type Registry } from '../observability/metrics.js';
import { metricsEndpoint } from './metrics-endpoint.js';
import { installProblemHandler, sendFrameworkError, sendProblem } from './problem.js';
import { serializerCompiler } from './serializer.js';
import { installStorableInputGate } from './storable-input.js';
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
  /** Remote dependencies that fail without making this process unready (name → reason); shown by /readyz. */
  degraded?: () => Promise<Record<string, string>>;
  /** Liveness only fails when the process should be restarted. */
  exposeDocs?: boolean;
  /** /metrics on this server (false when DOCUPOD_METRICS_PORT gives it a listener of its own), and its token. */
  serveMetrics?: boolean;
  metricsToken?: string;
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
    frameworkErrors: sendFrameworkError,
    routerOptions: { ignoreTrailingSlash: true },
  });

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandler(app);

  const { duration } = httpMetrics(opts.metrics);
  // The access log carries only the fields below (no headers, no bodies), so it skips the logger's redaction, which
  // otherwise runs its wildcard paths over every field of every line.
  const accessLog = opts.log.child({}, { redact: [] });
  const security = securityHeaders({
    // The docs UI loads its own inline script/style; a strict CSP here would break /docs, and the API serves JSON.
    contentSecurityPolicy: false,
    crossOriginResourcePolicy: { policy: 'same-site' },
  });
  // One span per request; pipeline steps (retrieve, rerank, generate) open child spans under it.
  const tracer = trace.getTracer('docupod');
  // Callback-style (not async) hooks: they do no I/O, and an async hook costs a promise and a microtask per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(security);
    reply.header('x-request-id', request.id);
    const route = request.routeOptions.url ?? 'unmatched'; // a getter that builds an object: read it once
    request.span = tracer.startSpan(`${request.method} ${route}`, {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': request.method, 'http.route': route === 'unmatched' ? '' : route, 'docupod.request_id': String(request.id) },
    });
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    duration.observe({ route, method: request.method, status: String(status) }, reply.elapsedTime / 1000);
    if (request.span) {
      request.span.setAttribute('http.response.status_code', status);
      if (status >= 500) request.span.setStatus({ code: SpanStatusCode.ERROR });
      request.span.end();
    }
    // Probes would drown the log.
    if (route !== '/healthz' && route !== '/readyz' && route !== '/metrics')
      accessLog.info(
        { reqId: request.id, method: request.method, route, status, durationMs: Math.round(reply.elapsedTime * 10) / 10, workspaceId: request.workspaceId },
        'request',
      );
    done();
  });

  await app.register(cors, {
    origin: opts.corsOrigins.length === 0 ? false : opts.corsOrigins.includes('*') ? true : opts.corsOrigins,
    credentials: true,
    exposedHeaders: ['x-request-id', 'retry-after'],
  });
  installStorableInputGate(app);

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
    const checks = await (opts.degraded?.() ?? Promise.resolve({})).catch((err: Error) => ({ degraded: err.message }));
    const failing = Object.keys(checks).length > 0;
    // Unready only for this process's own hard dependencies (its database); a remote role that is down is named in a
    // 200 answer, so probes keep the pod in its Service while the requests that need that role fail fast with 503.
    if (ready === true) return failing ? { status: 'degraded', checks } : { status: 'ready' };
    return sendProblem(reply, Problems.unavailable, ready, failing ? { checks } : {});
  });
  if (opts.serveMetrics !== false) await app.register(metricsEndpoint, { registry: opts.metrics, token: opts.metricsToken });

  return app;
}

/**
 * The headers helmet sets, computed once. With these options (no CSP, so no nonces) helmet's middleware sets the same
 * static headers on every response; @fastify/helmet rebuilt that middleware from its options on every request (~4 %
 * of an authenticated request's CPU, plus two hooks). Running helmet itself once against a recorder keeps its
 * defaults and option checks. Hijacked responses (SSE) copy them with reply.getHeaders().
 */
export function securityHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string | number) {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  let failure: unknown;
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    failure = err;
  });
  if (failure) throw failure instanceof Error ? failure : new Error(String(failure));
  return headers;
}

/**
 * The headers the hooks put on a reply (security headers, CORS, the request id), for a route that hijacks the reply
 * and writes the head itself (SSE): Fastify sends them only with replies it sends.
 */
export function hijackHeaders(reply: FastifyReply): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) out[name] = value;
  return out;
}
