import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DocupodError, Problems, type ProblemType } from '../core/errors.js';
import { findUnstorableText } from '../core/storable-text.js';
import { unstorableTextError } from './storable-input.js';

// How one role calls another. A contract names methods with zod input/output schemas; the same contract yields the
// in-process form (a validated call into the implementation) and the HTTP form (POST /internal/<role>/<method>), so
// both are tested by one suite and callers never know which they hold (Loki's in-process vs gRPC clients, simplified).

export interface MethodSpec<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  input: I;
  output: O;
  description?: string;
}

export interface Contract<M extends Record<string, MethodSpec> = Record<string, MethodSpec>> {
  role: string;
  methods: M;
}

/** The interface a contract describes: one async method per entry. */
export type ClientOf<C extends Contract> = {
  [K in keyof C['methods']]: (input: z.input<C['methods'][K]['input']>) => Promise<z.output<C['methods'][K]['output']>>;
};

/** What an implementation provides: inputs arrive parsed (defaults applied), so it sees z.output of each input. */
export type ImplOf<C extends Contract> = {
  [K in keyof C['methods']]: (input: z.output<C['methods'][K]['input']>) => Promise<z.input<C['methods'][K]['output']>>;
};

export function defineContract<M extends Record<string, MethodSpec>>(role: string, methods: M): Contract<M> {
  return { role, methods };
}

/** In-process form: validates input and output exactly as the HTTP form does, so behaviour cannot drift. */
export function inProcessClient<C extends Contract>(contract: C, impl: ImplOf<C>): ClientOf<C> {
  const client: Record<string, (input: unknown) => Promise<unknown>> = {};
  for (const [name, spec] of Object.entries(contract.methods)) {
    client[name] = async (input: unknown) => {
      // Text Postgres cannot store is bad input here too (a CLI or another role may send it), not a failed query.
      const unstorable = findUnstorableText(input, 'body');
      if (unstorable.length > 0) throw unstorableTextError(unstorable);
      const parsed = spec.input.safeParse(input);
      if (!parsed.success) throw validationError(contract.role, name, parsed.error);
      const out = await (impl as Record<string, (i: unknown) => Promise<unknown>>)[name]!(parsed.data);
      return spec.output.parse(out);
    };
  }
  return client as ClientOf<C>;
}

function validationError(role: string, method: string, error: z.ZodError): DocupodError {
  const errors = error.issues.map((i) => ({ path: ['body', ...i.path.map(String)].join('.'), message: i.message }));
  return new DocupodError(Problems.validation, `${role}.${method}: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors });
}

export function internalPath(contract: Contract, method: string): string {
  return `/internal/${contract.role}/${method}`;
}

/**
 * Registers POST /<role>/<method> for every method of a contract, answered by `client` (the role's in-process form,
 * so input and output are validated exactly as in process). Only inside the internal API plugin (internal-api.ts),
 * whose one guard checks the internal token before any of these routes runs: anywhere else this throws.
 */
export function serveContract<C extends Contract>(scope: FastifyInstance, contract: C, client: ClientOf<C>): void {
  assertInternalScope(scope, `the ${contract.role} contract`);
  for (const name of Object.keys(contract.methods)) {
    scope.post(`/${contract.role}/${name}`, { schema: { hide: true } }, async (request) =>
      (client as Record<string, (i: unknown) => Promise<unknown>>)[name]!(request.body ?? {}),
    );
  }
}

/** Set by the internal API plugin on its own encapsulated context only. */
export const INTERNAL_SCOPE = 'docupodInternalScope';

export function assertInternalScope(scope: FastifyInstance, what: string): void {
  if (!scope.hasDecorator(INTERNAL_SCOPE)) throw new Error(`${what} may only be served inside the internal API plugin (src/http/internal-api.ts)`);
}

const ProblemResponse = z.object({ type: z.string(), title: z.string(), status: z.number(), detail: z.string() }).loose();

/** HTTP form: the same methods over fetch; problem+json answers come back as the same DocupodError. */
export function httpClient<C extends Contract>(contract: C, baseUrl: string, opts: { token?: string; timeoutMs?: number } = {}): ClientOf<C> {
  const client: Record<string, (input: unknown) => Promise<unknown>> = {};
  for (const [name, spec] of Object.entries(contract.methods)) {
    client[name] = async (input: unknown) => {
      const parsed = spec.input.safeParse(input);
      if (!parsed.success) throw validationError(contract.role, name, parsed.error);
      const url = new URL(internalPath(contract, name), baseUrl);
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
          body: JSON.stringify(parsed.data),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
        });
      } catch (err) {
        throw new DocupodError(Problems.unavailable, `the ${contract.role} role at ${baseUrl} did not answer: ${(err as Error).message}`, {}, { cause: err });
      }
      const body: unknown = await res.json().catch(() => undefined);
      if (!res.ok) {
        const problem = ProblemResponse.safeParse(body);
        if (problem.success) {
          const { type, title, status, detail, instance: _instance, ...extra } = problem.data;
          const known: ProblemType = Object.values(Problems).find((p) => p.type === type) ?? { type, title, status, expected: status < 500 };
          throw new DocupodError(known, detail, extra);
        }
        throw new DocupodError(Problems.unavailable, `the ${contract.role} role answered HTTP ${res.status}`);
      }
      return spec.output.parse(body);
    };
  }
  return client as ClientOf<C>;
}
