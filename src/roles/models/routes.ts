import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DocupodError, Problems } from '../../core/errors.js';
import { sendProblem } from '../../http/problem.js';
import { plainPredict } from './plain.js';
import type { ModelServing } from './serving.js';
import { inferError } from './tensors.js';

// The models role's public HTTP surface, all under /models (the ingress routes that prefix to this role):
//   Open Inference Protocol v2 (KServe / Triton): health, server and model metadata, model ready, infer;
//   the repository extension (index, load, unload) for operators; and plain-JSON /models/{name}/predict.
// Errors are problem+json; inference errors also carry the protocol's `error` member and a `reason`.

export interface ModelsRoutesOptions {
  serving: ModelServing;
  version: string;
  ready: () => Promise<true | string>;
  /** DOCUPOD_INTERNAL_TOKEN: required by the repository (load/unload/index) endpoints when set. */
  adminToken?: string;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * Repository endpoints change what a pod serves, so they are for operators and deploy pipelines, not for callers of
 * the models. The models role runs without a database (like a Triton pod), so it cannot check user logins or API
 * keys; it checks the shared internal token instead. Without a token configured (a laptop, `--role all` in dev) they
 * answer loopback callers only.
 */
function requireOperator(request: FastifyRequest, token: string | undefined): void {
  if (token) {
    const given = Buffer.from(request.headers.authorization ?? '');
    const want = Buffer.from(`Bearer ${token}`);
    if (given.length !== want.length || !timingSafeEqual(given, want))
      throw new DocupodError(Problems.unauthorized, 'model repository endpoints need `Authorization: Bearer <DOCUPOD_INTERNAL_TOKEN>`');
    return;
  }
  if (!LOOPBACK.has(request.socket.remoteAddress ?? ''))
    throw new DocupodError(Problems.forbidden, 'model repository endpoints answer loopback callers only unless DOCUPOD_INTERNAL_TOKEN is set');
}

const tags = ['models'];
type Params = { name: string; version?: string };

export async function modelsRoutes(app: FastifyInstance, opts: ModelsRoutesOptions): Promise<void> {
  const { serving } = opts;

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

  // ---- repository extension (Triton's shape): operators only ----
  const index = async (request: FastifyRequest) => {
    requireOperator(request, opts.adminToken);
    const ready = (request.body as { ready?: unknown } | undefined)?.ready === true || (request.query as { ready?: string }).ready === 'true';
    return serving.index({ ready });
  };
  app.get('/models/v2/repository/index', { schema: { tags, summary: 'Models in the repository and their state (operators)' } }, index);
  app.post('/models/v2/repository/index', { schema: { tags, summary: 'Models in the repository and their state (operators; Triton form)' } }, index);

  app.post<{ Params: Params }>(
    '/models/v2/repository/models/:name/load',
    { schema: { tags, summary: 'Load or reload a model (its highest version, or parameters.version) without a restart (operators)' } },
    async (request) => {
      requireOperator(request, opts.adminToken);
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
      requireOperator(request, opts.adminToken);
      await serving.unload(request.params.name);
      return reply.send({ name: request.params.name, state: 'UNAVAILABLE' });
    },
  );
}
