import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { requireBearer } from './bearer.js';
import { INTERNAL_SCOPE, serveContract, type ClientOf, type Contract } from './contract.js';

// The internal API: how split roles reach each other (POST /internal/<role>/<method>, the chat role's NDJSON
// streams). One encapsulated plugin with one guard: its onRequest hook demands `Bearer <DOCUPOD_INTERNAL_TOKEN>`
// (constant-time) before routing, body parsing or validation, for every route registered inside it, and the route
// helpers (serveContract, serveChatStreams) refuse to register anywhere else. Whether a process mounts it at all is
// decided by the module graph (internalLayout in src/modules/graph.ts): only where a remote caller exists.

export const INTERNAL_PREFIX = '/internal';

export interface InternalSurface {
  contract: Contract;
  client: ClientOf<Contract>;
}

/** Pairs a contract with the client that answers it (checked here, stored with the method types erased). */
export function surface<C extends Contract>(contract: C, client: ClientOf<C>): InternalSurface {
  return { contract, client: client as unknown as ClientOf<Contract> };
}

export interface InternalApiOptions {
  /** DOCUPOD_INTERNAL_TOKEN; required: there is no unguarded form. */
  token: string;
  contracts: readonly InternalSurface[];
  /** Routes that are not contract methods (the chat streams), registered in the same guarded context. */
  extraRoutes?: ReadonlyArray<(scope: FastifyInstance) => void>;
}

const internalApiPlugin: FastifyPluginAsync<InternalApiOptions> = async (scope, opts) => {
  scope.addHook('onRequest', requireBearer(opts.token, 'DOCUPOD_INTERNAL_TOKEN'));
  scope.decorate(INTERNAL_SCOPE, true);
  for (const { contract, client } of opts.contracts) serveContract(scope, contract, client);
  for (const add of opts.extraRoutes ?? []) add(scope);
};

/** Mounts the internal API under /internal on `app`. */
export async function mountInternalApi(app: FastifyInstance, opts: InternalApiOptions): Promise<void> {
  if (!opts.token) throw new Error('the internal API needs DOCUPOD_INTERNAL_TOKEN');
  await app.register(internalApiPlugin, { ...opts, prefix: INTERNAL_PREFIX });
}
