import type { FastifyInstance } from 'fastify';
import { defineContract, httpClient, inProcessClient, type ClientOf, type Contract } from '../http/contract.js';
import { statusMethod } from '../core/role-status.js';
import { mountInternalApi, surface } from '../http/internal-api.js';
import { buildServer } from '../http/server.js';
import { openDatabase, redactUrl, type Database } from '../storage/database.js';
import { ChatContract, type ChatClient } from '../roles/chat/contract.js';
import { chatHttpClient } from '../roles/chat/client.js';
import { createChatService } from '../roles/chat/service.js';
import { serveChatStreams } from '../roles/chat/stream.js';
import { createLlm } from '../adapters/llm/factory.js';
import type { Llm } from '../adapters/llm/llm.js';
import { LlamaCppLlm } from '../adapters/llm/llamacpp.js';
import { IngestContract, type IngestClient } from '../roles/ingest/contract.js';
import { ingestHttpClient } from '../roles/ingest/client.js';
import { createIngestService, INGEST_JOB, IngestPayload } from '../roles/ingest/service.js';
import { createIngestPipeline } from '../roles/ingest/pipeline.js';
import { chunkForIndex } from '../roles/ingest/chunks.js';
import { createReembedder, reconcileEmbedders, REEMBED_JOB, ReembedPayload } from '../roles/ingest/reembed.js';
import { ParserPool } from '../roles/ingest/parse/pool.js';
import type { BlobStore } from '../adapters/blob/blob-store.js';
import { LocalBlobStore } from '../adapters/blob/local.js';
import { PostgresBlobStore } from '../adapters/blob/postgres.js';
import type { Embedder } from '../adapters/embed/embedder.js';
import type { Reranker } from '../adapters/rerank/reranker.js';
import { JobQueue } from '../jobs/queue.js';
import { z } from 'zod';
import { ModelsContract, type ModelsClient } from '../roles/models/contract.js';
import { modelsHttpClient } from '../roles/models/client.js';
import { createModelsService } from '../roles/models/service.js';
import { startModelServing } from '../roles/models/module.js';
import { RetrievalContract, type RetrievalClient } from '../roles/retrieval/contract.js';
import { retrievalHttpClient } from '../roles/retrieval/client.js';
import { createRetrievalService } from '../roles/retrieval/service.js';
import { initAuth, type AuthService } from '../roles/gateway/auth/module.js';
import { gatewayRoutes } from '../roles/gateway/routes.js';
import { webRoutes } from '../roles/web/routes.js';
import type { Config, RoleName } from '../config/schema.js';
import { internalLayout, M, RoleError, type ModuleName } from './graph.js';
import type { Init, ModuleContext } from './manager.js';

// One init function per module. Each receives the context, takes what it needs with ctx.get and returns its value.

const initDb: Init = async (ctx) => {
  const { storage } = ctx.config;
  const splitRoles = !ctx.isActive(M.all);
  if (!storage.databaseUrl && splitRoles)
    ctx.log.warn(
      { roles: ctx.config.roles },
      'running a single role on embedded PGlite: PGlite serves one process, so other roles cannot share this data. ' +
        'Set DATABASE_URL to a Postgres server for split roles.',
    );
  const database = await openDatabase({
    url: storage.databaseUrl,
    dataDir: storage.dataDir,
    poolMax: storage.poolMax,
    pgliteSharedBuffers: storage.pgliteSharedBuffers,
    pgliteWasmTiering: storage.pgliteWasmTiering,
    // Another process may own the files now: exit at once, since even a graceful stop writes them (a checkpoint).
    onLockLost: (err) => {
      const msg = 'lost the lock on the data directory; stopping so that two processes never write it';
      ctx.log.fatal({ err: err.message, dataDir: storage.dataDir }, msg);
      process.stderr.write(`docupod: ${msg} (${storage.dataDir}: ${err.message})\n`); // a pretty log's worker may not flush before exit
      process.exit(1);
    },
    log: ctx.log.child({ module: 'db' }),
    servesApi: ctx.isActive(M.gateway),
  });
  ctx.onStop(() => database.close());
  if (storage.migrateOnStart) await database.migrate();
  ctx.log.info(
    { driver: database.kind, where: storage.databaseUrl ? redactUrl(storage.databaseUrl) : storage.dataDir, vector: database.vectorEnabled },
    'database ready',
  );
  if (!database.vectorEnabled)
    ctx.log.warn('pgvector is not installed in this database: search runs lexical-only (install the vector extension for vector and hybrid search)');
  ctx.addReadiness('database', async () => {
    await database.ping();
    return true;
  });
  return database;
};

const initHttp: Init = async (ctx) => {
  const { http } = ctx.config;
  const app = await buildServer({
    log: ctx.log,
    metrics: ctx.metrics,
    bodyLimit: http.bodyLimit,
    corsOrigins: http.corsOrigins,
    trustProxy: http.trustProxy,
    requestTimeoutMs: http.requestTimeoutMs,
    version: ctx.version,
    readiness: () => ctx.ready(),
    degraded: () => ctx.degraded(),
    serveMetrics: ctx.config.observability.metricsPort === undefined,
    metricsToken: ctx.config.observability.metricsToken,
  });
  ctx.onStop(() => app.close());
  return app;
};

const CONTRACTS: Record<'ingest' | 'retrieval' | 'chat' | 'models', Contract> = {
  ingest: IngestContract,
  retrieval: RetrievalContract,
  chat: ChatContract,
  models: ModelsContract,
};

/**
 * The internal API, started after every role of the process: mounted only for the roles whose callers run elsewhere
 * (graph.ts internalLayout), always behind the internal token (startRuntime has refused to start without one).
 */
const initInternalApi: Init = async (ctx) => {
  const { served } = internalLayout(ctx.active, ctx.listens);
  if (served.length === 0) return { served };
  const token = ctx.config.auth.internalToken;
  if (!token) throw new RoleError('DOCUPOD_INTERNAL_TOKEN is required to serve the internal API');
  const app = ctx.get<FastifyInstance>(M.http);
  await mountInternalApi(app, {
    token,
    contracts: served.map((role) => surface(CONTRACTS[role as keyof typeof CONTRACTS], ctx.get<ClientOf<Contract>>(role))),
    extraRoutes: served.includes('chat') ? [(scope) => serveChatStreams(scope, ctx.get<ChatClient>(M.chat))] : [],
  });
  ctx.log.info({ served }, 'internal API served for callers in other processes');
  return { served };
};

const databaseReady = (ctx: ModuleContext) => async (): Promise<true | string> => {
  await ctx.get<Database>(M.db).ping();
  return true;
};

/** In-process role when it runs here; the HTTP client when its URL is configured; otherwise a clear failure. */
function clientInit<C>(role: RoleName, urlVar: string, url: (ctx: ModuleContext) => string | undefined, make: (url: string, token?: string) => C): Init {
  return async (ctx) => {
    if (ctx.isActive(role)) return ctx.get<C>(role);
    const u = url(ctx);
    if (!u)
      throw new RoleError(
        `the ${[...ctx.active].filter((m) => ['gateway', 'chat'].includes(m)).join(',') || 'requested'} role needs the ${role} role: ` +
          `run it in this process (--role ${ctx.config.roles},${role}) or set ${urlVar} to where it runs`,
      );
    const client = make(u, ctx.config.auth.internalToken);
    // A remote role is a soft dependency (ModuleContext.degraded): asked for its own status with a short timeout, so
    // a probe (kubelet's default timeout is 1 s) answers in time even when that role hangs.
    const status = httpClient(defineContract(role, { status: statusMethod }), u, { token: ctx.config.auth.internalToken, timeoutMs: 700 });
    ctx.addReadiness(
      role,
      async () => {
        const s = await status.status({}).catch((err: Error) => ({ ready: false, detail: err.message }));
        return s.ready ? true : (s.detail ?? `the ${role} role at ${u} is not ready`);
      },
      { soft: true },
    );
    return client;
  };
}

/** The ingest role: document records over its contract, and the parse → chunk → embed → index jobs. */
const initIngest: Init = async (ctx) => {
  const database = ctx.get<Database>(M.db);
  const { ingest, search } = ctx.config;
  const blobs = ctx.get<BlobStore>(M.blobs);
  const queue = ctx.get<JobQueue>(M.jobs);
  const chunkOptions = { chunkTokens: ingest.chunkTokens, overlapTokens: ingest.chunkOverlap };
  // The workers chunk too, keeping that CPU work off the thread that also runs embedded PGlite.
  const parsers = new ParserPool({ size: ingest.parserThreads, limits: ingest.limits, chunk: chunkOptions });
  ctx.onStop(() => parsers.close());
  const pipeline = createIngestPipeline({
    db: database.db,
    blobs,
    embedder: ctx.get<Embedder | undefined>(M.embedder),
    vectorEnabled: database.vectorEnabled,
    language: search.language,
    parse: (bytes, filename) => parsers.parse(bytes, filename),
    chunk: (doc) => chunkForIndex(doc, chunkOptions),
    log: ctx.log.child({ module: 'ingest' }),
    metrics: ctx.metrics,
  });
  queue.register(INGEST_JOB, IngestPayload.extend({ reindex: z.boolean().optional() }), pipeline.run, {
    concurrency: ingest.workers,
    onFailed: pipeline.onFailed,
  });
  // A workspace whose vectors were made by another embedder than the configured one is re-embedded (reembed.ts).
  const reembedDeps = { db: database.db, jobs: queue, embedder: ctx.get<Embedder | undefined>(M.embedder), vectorEnabled: database.vectorEnabled, log: ctx.log.child({ module: 'ingest' }) };
  const reembedder = createReembedder(reembedDeps);
  queue.register(REEMBED_JOB, ReembedPayload, reembedder.run, { concurrency: 1, onFailed: reembedder.onFailed });
  await reconcileEmbedders(reembedDeps);
  queue.start();
  return inProcessClient(IngestContract, createIngestService({ db: database.db, blobs, jobs: queue, version: ctx.version, ready: databaseReady(ctx) }));
};

export const inits: Record<ModuleName, Init> = {
  [M.db]: initDb,
  [M.http]: initHttp,
  [M.blobs]: async (ctx): Promise<BlobStore> => {
    const { blobs } = ctx.config;
    if (blobs.store === 'postgres') return new PostgresBlobStore(ctx.get<Database>(M.db).db);
    if (ctx.config.storage.databaseUrl && !ctx.isActive(M.all))
      ctx.log.warn({ dir: blobs.dir }, 'blobs in a local directory with split roles: every pod must mount the same volume (or set DOCUPOD_BLOB_STORE=postgres)');
    return new LocalBlobStore(blobs.dir);
  },
  [M.jobs]: async (ctx): Promise<JobQueue> => {
    const queue = new JobQueue({ db: ctx.get<Database>(M.db).db, log: ctx.log.child({ module: 'jobs' }), metrics: ctx.metrics, leaseMs: ctx.config.ingest.jobLeaseMs });
    ctx.onStop(() => queue.stop());
    return queue;
  },
  [M.llm]: async (ctx): Promise<Llm> => {
    const llm = createLlm(ctx.config.llm, { log: ctx.log.child({ module: 'llm' }), llamacpp: ctx.config.llamacpp });
    // In-process models (llamacpp) free their memory on stop.
    if (llm.close) ctx.onStop(() => llm.close!());
    // A local model file that is missing or malformed makes the pod not ready (its requests get 503s naming the file),
    // while /healthz stays up: no restart loop over a bad file.
    if (llm instanceof LlamaCppLlm) {
      ctx.addReadiness('llm', () => llm.ready());
      // Loaded in the background from the start (checked and probed first), so the pod turns ready when the model can
      // answer and the first question does not wait for the load; a bad file is logged and fails requests with a 503.
      llm.load().catch((err: unknown) => ctx.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'the llamacpp model did not load'));
    }
    ctx.log.info({ llm: llm.id, contextTokens: llm.contextTokens }, 'LLM configured');
    return llm;
  },
  [M.embedder]: async (ctx): Promise<Embedder | undefined> => {
    if (ctx.config.embed.provider === 'none') return undefined;
    const { createEmbedder } = await import('../adapters/embed/factory.js');
    const embedder = createEmbedder(ctx.config.embed, { log: ctx.log.child({ module: 'embedder' }), llamacpp: ctx.config.llamacpp });
    if (embedder?.close) ctx.onStop(() => embedder.close!());
    return embedder;
  },
  [M.reranker]: async (ctx): Promise<Reranker | undefined> => {
    if (ctx.config.rerank.provider === 'none') return undefined;
    const { createReranker } = await import('../adapters/rerank/factory.js');
    const reranker = createReranker(ctx.config.rerank);
    ctx.log.info({ reranker: reranker?.id, candidates: ctx.config.rerank.candidates, topN: ctx.config.rerank.topN ?? ctx.config.chat.k }, 'reranker configured');
    return reranker;
  },
  [M.auth]: initAuth,
  [M.ingestClient]: clientInit('ingest', 'DOCUPOD_INGEST_URL', (c) => c.config.urls.ingest, ingestHttpClient),
  [M.retrievalClient]: clientInit('retrieval', 'DOCUPOD_RETRIEVAL_URL', (c) => c.config.urls.retrieval, retrievalHttpClient),
  [M.chatClient]: clientInit('chat', 'DOCUPOD_CHAT_URL', (c) => c.config.urls.chat, chatHttpClient),
  [M.modelsClient]: clientInit('models', 'DOCUPOD_MODELS_URL', (c) => c.config.urls.models, modelsHttpClient),
  [M.internalApi]: initInternalApi,
  [M.ingest]: initIngest,
  [M.retrieval]: async (ctx) => {
    const database = ctx.get<Database>(M.db);
    return inProcessClient(
      RetrievalContract,
      createRetrievalService({
        db: database.db,
        embedder: ctx.get<Embedder | undefined>(M.embedder),
        vectorEnabled: database.vectorEnabled,
        language: ctx.config.search.language,
        lexicalCacheBytes: ctx.config.search.lexicalCacheBytes,
        warmLexicalCache: true,
        efSearch: ctx.config.search.efSearch,
        metrics: ctx.metrics,
        version: ctx.version,
        ready: databaseReady(ctx),
      }),
    );
  },
  [M.chat]: async (ctx): Promise<ChatClient> => {
    const llm = ctx.get<Llm>(M.llm);
    const service = createChatService({
      db: ctx.get<Database>(M.db).db,
      llm,
      retrieval: ctx.get<RetrievalClient>(M.retrievalClient),
      embedder: ctx.get<Embedder | undefined>(M.embedder),
      metrics: ctx.metrics,
      version: ctx.version,
      k: ctx.config.chat.k,
      maxStreams: ctx.config.chat.maxStreams,
      rewriteTimeoutMs: ctx.config.chat.rewriteTimeoutMs,
      rerank: rerankStage(ctx.get<Reranker | undefined>(M.reranker), ctx.config),
      onUsageFlushError: (err) => ctx.log.error({ err, module: 'chat' }, 'writing token usage failed; retrying on the next flush'),
      ready: async () => {
        const db = await databaseReady(ctx)();
        return db === true ? llm.ready() : db;
      },
    });
    // Buffered token usage is written before the database closes (chat depends on it, so stops first).
    ctx.onStop(() => service.stop());
    return { ...inProcessClient(ChatContract, service), stream: service.stream };
  },
  [M.models]: async (ctx) => {
    const app = ctx.get<FastifyInstance>(M.http);
    // Admins and users are recognised by the auth module: the gateway's, or on its own over a shared database when
    // inference is authenticated (graph.ts DEPS_WHEN); without either only the internal token is accepted.
    const auth = ctx.isActive(M.auth) ? ctx.get<AuthService>(M.auth) : undefined;
    await startModelServing({ ...ctx, app, auth, ready: () => ctx.ready(), onStop: (fn) => ctx.onStop(fn) });
    return inProcessClient(ModelsContract, createModelsService({ version: ctx.version, ready: async () => true }));
  },
  [M.gateway]: async (ctx) => {
    const app = ctx.get<FastifyInstance>(M.http);
    await app.register(gatewayRoutes, {
      auth: ctx.get<AuthService>(M.auth),
      db: ctx.get<Database>(M.db),
      blobs: ctx.get<BlobStore>(M.blobs),
      uploadLimit: ctx.config.http.uploadLimit,
      mcpWrite: ctx.config.mcp.write,
      metrics: ctx.metrics,
      roles: {
        ingest: ctx.get<IngestClient>(M.ingestClient),
        retrieval: ctx.get<RetrievalClient>(M.retrievalClient),
        chat: ctx.get<ChatClient>(M.chatClient),
        models: ctx.get<ModelsClient>(M.modelsClient),
      },
      version: ctx.version,
    });
    return app;
  },
  [M.web]: async (ctx) => {
    await ctx.get<FastifyInstance>(M.http).register(webRoutes, { version: ctx.version });
    return true;
  },
  [M.all]: async () => true,
};

/** The chat role's reranking stage from DOCUPOD_RERANK_* (undefined when no reranker is configured). */
function rerankStage(reranker: Reranker | undefined, config: Config) {
  if (!reranker) return undefined;
  const { topN, candidates, timeoutMs } = config.rerank;
  return { reranker, topN, candidates, timeoutMs };
}
