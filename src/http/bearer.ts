import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { DocupodError, Problems } from '../core/errors.js';

// Shared secrets presented as `Authorization: Bearer <secret>` (the internal token, the metrics token).

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Whether the header is exactly `Bearer <secret>`. Both sides are hashed first, so timingSafeEqual always compares
 * 32 bytes: neither the secret's length nor a matching prefix shows in the time the comparison takes.
 */
export function bearerMatches(header: string | undefined, secret: string): boolean {
  if (!header || !secret) return false;
  return timingSafeEqual(digest(header), digest(`Bearer ${secret}`));
}

/**
 * An onRequest hook that lets a request through only with `Bearer <secret>`; anything else is a 401 problem naming
 * what to send (`what`), before the body is read. There is no "no secret configured" branch: an empty secret refuses
 * everyone, so forgetting to configure it can never open the routes behind it.
 */
export function requireBearer(secret: string, what: string): onRequestHookHandler {
  if (!secret) throw new Error(`requireBearer: no secret for ${what}`);
  return function bearerGuard(request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) {
    if (bearerMatches(request.headers.authorization, secret)) return done();
    reply.header('www-authenticate', request.headers.authorization ? 'Bearer realm="docupod", error="invalid_token"' : 'Bearer realm="docupod"');
    done(new DocupodError(Problems.unauthorized, `this endpoint needs \`Authorization: Bearer <${what}>\``));
  };
}
