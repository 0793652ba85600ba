import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { DocupodError, Problems } from '../core/errors.js';
import { findUnstorableText, type TextProblem } from '../core/storable-text.js';

// One gate for every route: a string Postgres cannot store (NUL, lone surrogates; see core/storable-text.ts) in the
// path, the query string or a parsed body is a 400 naming the field before any hook, schema or handler uses it, so no
// route can turn it into a failed query (a 500). Multipart file names are read later, in the upload handler, which
// checks them with assertStorableText.

/** The same problem+json a failed schema check gives: 400 /problems/validation with errors[{path, message}]. */
export function unstorableTextError(problems: TextProblem[]): DocupodError {
  return new DocupodError(Problems.validation, `the request holds text that cannot be stored: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, {
    errors: problems,
  });
}

/**
 * Adds the gate's two hooks. Path and query are checked on request, before the hooks that look a workspace up from
 * the path; the body once it is parsed. Install it after the hooks that set the security and CORS headers, so the
 * 400 carries them too.
 */
export function installStorableInputGate(app: FastifyInstance): void {
  // Callback style: no I/O, no promise per request.
  app.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const problems = [...findUnstorableText(request.params, 'params'), ...findUnstorableText(request.query, 'querystring')];
    done(problems.length > 0 ? unstorableTextError(problems) : undefined);
  });
  app.addHook('preValidation', (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const problems = findUnstorableText(request.body, 'body');
    done(problems.length > 0 ? unstorableTextError(problems) : undefined);
  });
}

/** For text a hook cannot see (multipart parts): throws the same 400 as the hook. */
export function assertStorableText(value: unknown, path: string): void {
  const problems = findUnstorableText(value, path);
  if (problems.length > 0) throw unstorableTextError(problems);
}
