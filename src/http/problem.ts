import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { databaseUnavailable, DocupodError, Problems, type ProblemExtras, type ProblemType } from '../core/errors.js';

// The one place errors become responses: RFC 9457 problem+json, `instance` = request id, never a stack trace.

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface ProblemBody extends ProblemExtras {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
}

export function problemBody(problem: ProblemType, detail: string, requestId: string, extra: ProblemExtras = {}): ProblemBody {
  const { retryAfter, ...rest } = extra;
  return {
    ...rest,
    ...(retryAfter !== undefined ? { retryAfter } : {}),
    type: problem.type,
    title: problem.title,
    status: problem.status,
    detail,
    instance: requestId,
  };
}

export function sendProblem(reply: FastifyReply, problem: ProblemType, detail: string, extra: ProblemExtras = {}): FastifyReply {
  if (extra.retryAfter !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(extra.retryAfter))));
  return reply
    .code(problem.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(problemBody(problem, detail, String(reply.request.id), extra));
}

/** Maps Fastify's own error codes (body too large, bad JSON, …) onto the catalogue. */
function fromFastifyError(err: FastifyError): { problem: ProblemType; detail: string } | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { problem: Problems.payloadTooLarge, detail: 'request body is larger than the configured limit (DOCUPOD_BODY_LIMIT)' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { problem: Problems.unsupportedMediaType, detail: `unsupported content-type; send application/json` };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { problem: Problems.badRequest, detail: 'the body is empty but content-type is application/json' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { problem: Problems.badRequest, detail: `the body is not valid JSON: ${err.message}` };
    default:
      break;
  }
  if (err.statusCode === 413) return { problem: Problems.payloadTooLarge, detail: err.message };
  if (err.statusCode === 415) return { problem: Problems.unsupportedMediaType, detail: err.message };
  if (err.statusCode === 400 && !err.validation) return { problem: Problems.badRequest, detail: err.message };
  return undefined;
}

/**
 * Fastify's `frameworkErrors`: the router's own rejections (a path that is not valid percent-encoded UTF-8, a path
 * segment over the length limit) answer as problem+json like every other error, not in Fastify's own JSON shape.
 */
export function sendFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?')[0];
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') sendProblem(reply, Problems.uriTooLong, `a path segment of ${path} is too long`);
  else if (error.code === 'FST_ERR_BAD_URL') sendProblem(reply, Problems.badRequest, `the path ${path} is not valid percent-encoded UTF-8`);
  else {
    request.log.error({ err: error }, 'router error');
    sendProblem(reply, Problems.internal, 'internal error');
  }
}

export function installProblemHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof DocupodError) {
      const level = error.problem.expected ? 'warn' : 'error';
      request.log[level](
        { problem: error.problem.type, detail: error.message, ...(error.problem.expected ? {} : { err: error }) },
        'request failed',
      );
      return sendProblem(reply, error.problem, error.problem.status >= 500 && !error.problem.expected ? 'internal error' : error.message, error.extra);
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const where = error.validationContext ?? 'body';
      const errors = error.validation.map((v) => ({
        path: [where, ...String(v.instancePath ?? '').split('/').filter(Boolean)].join('.'),
        message: v.message ?? 'invalid',
      }));
      request.log.warn({ errors }, 'validation failed');
      return sendProblem(reply, Problems.validation, `request ${where} is invalid: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, {
        errors,
      });
    }
    if (isResponseSerializationError(error)) {
      request.log.error({ err: error, issues: error.cause.issues }, 'response did not match its schema');
      return sendProblem(reply, Problems.internal, 'internal error');
    }
    const fe = error as FastifyError;
    const mapped = fe && typeof fe === 'object' ? fromFastifyError(fe) : undefined;
    if (mapped) {
      request.log.warn({ code: fe.code, detail: mapped.detail }, 'request rejected');
      return sendProblem(reply, mapped.problem, mapped.detail);
    }
    const db = databaseUnavailable(error);
    if (db) {
      request.log.warn({ err: (error as Error).message }, 'database unavailable');
      return sendProblem(reply, db.problem, db.message, db.extra);
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendProblem(reply, Problems.internal, 'internal error');
  });

  app.setNotFoundHandler((request, reply) => {
    sendProblem(reply, Problems.notFound, `no route for ${request.method} ${request.url.split('?')[0]}`);
  });
}
