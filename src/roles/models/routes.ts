import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { Problems, fail } from '../../core/errors.js';
import { bearerMatches } from '../../http/bearer.js';
import { sendProblem } from '../../http/problem.js';
import { plainPredict } from './plain.js';
import type { ModelServing } from './serving.js';
import { inferError } from './tensors.js';

// The models role's public HTTP surface, all under /models (the ingress routes that prefix to this role):
//   Open Inference Protocol v2 (KServe / Triton): health, server and model metadata, model ready, infer;
//   the repository extension (index, load, unload) for operators; and plain-JSON /models/{name}/predict.
// Errors are problem+json; inference errors also carry the protocol's `error` member and a `reason`.
//
// Who may call what (README "Security defaults"): server health and metadata are open (probes); model metadata and
// inference need a caller (DOCUPOD_MODELS_INFERENCE=authenticated, the default) or nobody (open); the repository
// endpoints always need an instance admin or the internal token. A caller is the internal token or any user's login
// or API key, checked by the auth module: the gateway's when it runs in this process, or, for the models role
// without it, one opened on the shared database (DATABASE_URL; graph.ts DEPS_WHEN). A workspace-limited key is a
// caller too: inference reads no workspace data. Only a models role with neither (no DATABASE_URL) has no users, so
// there only the internal token counts. Network position is never an identity: behind a reverse proxy on the same
// host every caller is loopback.

/** Users' authentication (AuthService), when this process has one (the models role does not import the gateway). */
export interface UserAuth {
  authenticate(header: string | undefined): Promise<{ role: 'admin' | 'member'; workspaceIds: string[] | null }>;
}

export interface ModelsRoutesOptions {
  serving: ModelServing;
  version: string;
  ready: () => Promise<true | string>;
  /** DOCUPOD_INTERNAL_TOKEN, when set: accepted for inference and the repository endpoints. */
  internalToken?: string;
  /** User logins and API keys: with the gateway in this process, or a shared database (DATABASE_URL). */
  auth?: UserAuth;
  /** DOCUPOD_MODELS_INFERENCE. */
  inference: 'authenticated' | 'open';
}

/** An onRequest hook admitting the internal token, or a user (an instance admin when `admin`) checked by `auth`. */
function requireCaller(opts: ModelsRoutesOptions, admin: boolean): onRequestAsyncHookHandler {
  const what = admin ? 'model repository endpoints' : 'model inference';
  return async function modelsCaller(request: FastifyRequest, reply: FastifyReply) {
    const header = request.headers.authorization;
    if (opts.internalToken && bearerMatches(header, opts.internalToken)) return;
    reply.header('www-authenticate', header ? 'Bearer realm="docupod", error="invalid_token"' : 'Bearer realm="docupod"');
    if (!opts.auth)
      throw fail.unauthorized(
        `${what} need \`Authorization: Bearer <DOCUPOD_INTERNAL_TOKEN>\`: this process runs the models role without the gateway and without a shared database, ` +
          'so it cannot check logins or API keys (set DATABASE_URL to the database the gateway uses to accept them' +
          (admin ? ')' : ', or DOCUPOD_MODELS_INFERENCE=open to serve inference without credentials)'),
      );
    if (!header) throw fail.unauthorized(`${what} need \`Authorization: Bearer <API key or access token>\`${admin ? " of an instance admin" : ''}`);
    const principal = await opts.auth.authenticate(header);
    reply.removeHeader('www-authenticate');
    if (admin && (principal.role !== 'admin' || principal.workspaceIds))
      throw fail.forbidden('model repository endpoints need an instance admin (a login or an API key not limited to some workspaces) or DOCUPOD_INTERNAL_TOKEN');
  };
}

const tags = ['models'];
type Params = { name: string; version?: string };

export async function modelsRoutes(app: FastifyInstance, opts: ModelsRoutesOptions): Promise<void> {
  const { serving } = opts;
  // Each group below is its own encapsulated context, so its guard covers exactly its routes.
  await app.register(async (open) => serverRoutes(open, opts));
  await app.register(async (callers) => {
    if (opts.inference === 'authenticated') callers.addHook('onRequest', requireCaller(opts, false));
    modelRoutes(callers, serving);
  });
  await app.register(async (operators) => {
    operators.addHook('onRequest', requireCaller(opts, true));
    repositoryRoutes(operators, serving);
  });
}

/** Server liveness, readiness and metadata: open, for probes and clients discovering the protocol. */
function serverRoutes(app: FastifyInstance, opts: ModelsRoutesOptions): void {
  app.get('/models/v2/health/live', { schema: { tags, summary: 'OIP v2 server liveness' } }, async () => ({ live: true }));
  app.get('/models/v2/health/ready', { schema: { tags, summary: 'OIP v2 server readiness' } }, async (_req, reply) => {
    const ready = await opts.ready().catch((err: Error) => err.message);
    if (ready === true) return { ready: true };
    return sendProblem(reply, Problems.unavailable, ready, { ready: false, error: ready });
  });
  app.get('/models/v2', { schema: { tags, summary: 'OIP v2 server metadata' } }, async () => ({
    name: 'docupod',
    version: opts.version,
    extensions: ['model_repository', 'classification'],
  }));
}

/** Model metadata, readiness and inference. */
function modelRoutes(app: FastifyInstance, serving: ModelServing): void {
  const metadata = async (request: FastifyRequest<{ Params: Params }>) => {
    const { name, version } = request.params;
    return serving.metadata(serving.get(name, version));
  };
  app.get<{ Params: Params }>('/models/v2/models/:name', { schema: { tags, summary: 'OIP v2 model metadata' } }, metadata);
  app.get<{ Params: Params }>('/models/v2/models/:name/versions/:version', { schema: { tags, summary: 'OIP v2 model metadata (one version)' } }, metadata);

  const modelReady = async (request: FastifyRequest<{ Params: Params }>) => {
    const { name, version } = request.params;
    const model = serving.get(name, version);
    return { name: model.name, ready: true };
  };
  app.get<{ Params: Params }>('/models/v2/models/:name/ready', { schema: { tags, summary: 'OIP v2 model readiness' } }, modelReady);
  app.get<{ Params: Params }>('/models/v2/models/:name/versions/:version/ready', { schema: { tags, summary: 'OIP v2 model readiness (one version)' } }, modelReady);

  const infer = async (request: FastifyRequest<{ Params: Params }>) => {
    const { name, version } = request.params;
    return serving.observe(name, 'v2', async () => {
      const model = serving.get(name, version);
      return serving.infer(model, serving.parseInferRequest(model, request.body));
    });
  };
  app.post<{ Params: Params }>('/models/v2/models/:name/infer', { schema: { tags, summary: 'OIP v2 inference (JSON tensors)' } }, infer);
  app.post<{ Params: Params }>('/models/v2/models/:name/versions/:version/infer', { schema: { tags, summary: 'OIP v2 inference on one version' } }, infer);

  app.post<{ Params: Params }>(
    '/models/:name/predict',
    { schema: { tags, summary: 'Plain JSON prediction: {"text"} → {"intent", "confidence"} for text classifiers, {"inputs": {…}} otherwise' } },
    async (request) => {
      const { name } = request.params;
      return serving.observe(name, 'predict', async () => plainPredict(serving, serving.get(name), request.body));
    },
  );

}

/** The repository extension (Triton's shape): operators only. */
function repositoryRoutes(app: FastifyInstance, serving: ModelServing): void {
  const index = async (request: FastifyRequest) => {
    const ready = (request.body as { ready?: unknown } | undefined)?.ready === true || (request.query as { ready?: string }).ready === 'true';
    return serving.index({ ready });
  };
  app.get('/models/v2/repository/index', { schema: { tags, summary: 'Models in the repository and their state (operators)' } }, index);
  app.post('/models/v2/repository/index', { schema: { tags, summary: 'Models in the repository and their state (operators; Triton form)' } }, index);

  app.post<{ Params: Params }>(
    '/models/v2/repository/models/:name/load',
    { schema: { tags, summary: 'Load or reload a model (its highest version, or parameters.version) without a restart (operators)' } },
    async (request) => {
      const parameters = (request.body as { parameters?: Record<string, unknown> } | undefined)?.parameters;
      const version = parameters?.version;
      if (version !== undefined && typeof version !== 'string') throw inferError('invalid_request', 'parameters.version must be a string');
      const model = await serving.load(request.params.name, version);
      return { name: model.name, version: model.version, state: 'READY' };
    },
  );
  app.post<{ Params: Params }>(
    '/models/v2/repository/models/:name/unload',
    { schema: { tags, summary: 'Unload a model; in-flight requests finish first (operators)' } },
    async (request, reply: FastifyReply) => {
      await serving.unload(request.params.name);
      return reply.send({ name: request.params.name, state: 'UNAVAILABLE' });
    },
  );
}
