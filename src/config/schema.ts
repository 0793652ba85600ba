import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

// One schema for every variable docupod reads. `loadConfig(env)` is pure: only main passes process.env.

/** `z.coerce.boolean()` turns "false" into true; accept explicit spellings only. */
const Bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
/** Sizes are strings with units ("25MB", "512KiB") or plain byte counts. */
const Size = z.string().transform((v, ctx) => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$/i.exec(v);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: 'expected a size such as 25MB, 512KiB or 1048576' });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()]!);
});

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };
/** Durations are strings with units ("15m", "30s", "7d") or plain milliseconds; parsed to milliseconds. */
const Duration = z.string().transform((v, ctx) => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(v);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration such as 500ms, 30s, 15m, 12h or 7d' });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!);
});

const Port = z.coerce.number({ message: 'expected a port number' }).int().min(0).max(65535);
const PositiveInt = z.coerce.number({ message: 'expected a whole number' }).int().min(1);
const Url = z.url({ message: 'expected a URL such as http://host:port' });

export const ROLES = ['gateway', 'ingest', 'retrieval', 'chat', 'models', 'web'] as const;
export type RoleName = (typeof ROLES)[number];

/** Variables holding secrets: accepted as X or X_FILE (a mounted Kubernetes Secret) and always redacted. */
export const SECRET_VARS = ['DOCUPOD_JWT_SECRET', 'DOCUPOD_INTERNAL_TOKEN', 'DOCUPOD_METRICS_TOKEN', 'DATABASE_URL', 'DOCUPOD_DATABASE_URL', 'DOCUPOD_LLM_API_KEY', 'DOCUPOD_EMBED_API_KEY', 'DOCUPOD_RERANK_API_KEY'] as const;

export const ConfigSchema = z
  .object({
    DOCUPOD_ROLE: z.string().default('all'),
    PORT: Port.optional(),
    DOCUPOD_PORT: Port.default(8080),
    DOCUPOD_HOST: z.string().default('0.0.0.0'),
    DOCUPOD_DATA_DIR: z.string().default('./data'),
    /** Unset: embedded PGlite under DOCUPOD_DATA_DIR. DATABASE_URL is accepted as the conventional alias. */
    DOCUPOD_DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'expected postgres://user:password@host:5432/db').optional(),
    DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'expected postgres://user:password@host:5432/db').optional(),
    DOCUPOD_DATABASE_POOL_MAX: PositiveInt.max(1000).default(10),
    /**
     * Embedded only: PGlite's shared_buffers. Its default (128MB) lives inside the WASM heap and costs ~130 MB of
     * RSS at idle; measured: 322 MB → 191 MB RSS at 16MB, with the OS page cache still under it.
     */
    DOCUPOD_PGLITE_SHARED_BUFFERS: Size.default(16 * 1024 * 1024),
    /**
     * Embedded only: whether V8 may recompile PGlite's hot WASM functions with its optimising compiler (TurboFan).
     * The optimised copies cost ~40 MB of idle RSS (measured 212 → 172 MB with all roles) and pay for themselves
     * on vector math (HNSW build ~1.5× less CPU with them); lexical-only SQL was within noise either way.
     * `auto` = on when an embedder is configured (the database then runs vector distances), off otherwise.
     */
    DOCUPOD_PGLITE_WASM_TIERING: z.enum(['auto', 'on', 'off']).default('auto'),
    DOCUPOD_MIGRATE_ON_START: Bool.optional(),

    DOCUPOD_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DOCUPOD_LOG_FORMAT: z.enum(['json', 'pretty', 'auto']).default('auto'),
    DOCUPOD_METRICS_ENABLED: Bool.default(true),
    /** Serve /metrics on this port only (not on DOCUPOD_PORT), so the public port never shows it. README "Security defaults". */
    DOCUPOD_METRICS_PORT: Port.optional(),
    /** Require `Authorization: Bearer <token>` on /metrics (on whichever port serves it). */
    DOCUPOD_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    OTEL_EXPORTER_OTLP_ENDPOINT: Url.optional(),
    OTEL_SERVICE_NAME: z.string().default('docupod'),

    DOCUPOD_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    DOCUPOD_ACCESS_TOKEN_TTL: Duration.default(15 * 60e3),
    DOCUPOD_REFRESH_TOKEN_TTL: Duration.default(30 * 86400e3),
    DOCUPOD_SIGNUP: z.enum(['open', 'invite', 'closed']).default('open'),
    DOCUPOD_LOGIN_MAX_ATTEMPTS: PositiveInt.default(10),
    DOCUPOD_LOGIN_WINDOW: Duration.default(15 * 60e3),
    DOCUPOD_AUTH_CACHE_TTL: Duration.default(5_000),
    DOCUPOD_INTERNAL_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),

    DOCUPOD_BODY_LIMIT: Size.default(1024 * 1024),
    DOCUPOD_UPLOAD_LIMIT: Size.default(100 * 1024 * 1024),
    DOCUPOD_CORS_ORIGINS: z.string().default(''),
    DOCUPOD_TRUST_PROXY: Bool.default(false),
    DOCUPOD_SHUTDOWN_DELAY: Duration.default(0),
    DOCUPOD_REQUEST_TIMEOUT: Duration.default(120e3),

    /** Where split roles reach each other; unset means "in this process". */
    DOCUPOD_GATEWAY_URL: Url.optional(),
    DOCUPOD_INGEST_URL: Url.optional(),
    DOCUPOD_RETRIEVAL_URL: Url.optional(),
    DOCUPOD_CHAT_URL: Url.optional(),
    DOCUPOD_MODELS_URL: Url.optional(),

    DOCUPOD_LLM_PROVIDER: z.enum(['extractive', 'openai', 'ollama', 'llamacpp']).default('extractive'),
    DOCUPOD_LLM_BASE_URL: Url.optional(),
    DOCUPOD_LLM_MODEL: z.string().optional(),
    DOCUPOD_LLM_API_KEY: z.string().optional(),
    /** Prompt + answer tokens the model takes; sources are trimmed to fit. Default: 8192 (openai), 4096 (ollama). */
    DOCUPOD_LLM_CONTEXT_TOKENS: PositiveInt.max(2_000_000).optional(),
    /** Until the model server starts answering, per attempt. */
    DOCUPOD_LLM_TIMEOUT: Duration.default(60e3),
    /** Longest silence between two streamed tokens before the answer fails. */
    DOCUPOD_LLM_IDLE_TIMEOUT: Duration.default(60e3),
    /** Retries of a request that failed before the answer started (connection errors, timeouts, 408/429/5xx). */
    DOCUPOD_LLM_MAX_RETRIES: z.coerce.number({ message: 'expected a whole number' }).int().min(0).max(10).default(2),
    /** llamacpp: answers generated at once on the one loaded model (sequences of one llama.cpp context). */
    DOCUPOD_LLM_PARALLEL: PositiveInt.max(64).default(1),
    /** llamacpp: requests waiting for a free sequence; beyond it 503 with Retry-After. */
    DOCUPOD_LLM_MAX_QUEUE: z.coerce.number({ message: 'expected a whole number' }).int().min(0).max(10_000).default(32),
    /** llamacpp: sampling defaults for requests that do not set them. */
    DOCUPOD_LLM_TEMPERATURE: z.coerce.number({ message: 'expected a number' }).min(0).max(2).optional(),
    DOCUPOD_LLM_TOP_P: z.coerce.number({ message: 'expected a number' }).gt(0).max(1).optional(),
    DOCUPOD_LLM_MAX_TOKENS: PositiveInt.max(1_000_000).optional(),
    /** llamacpp (LLM and embedder): CPU threads; default all cores up to 4. */
    DOCUPOD_LLAMACPP_THREADS: PositiveInt.max(512).optional(),
    /** llamacpp: load each new GGUF file in a child process first, so a file that aborts llama.cpp cannot kill the server. */
    DOCUPOD_LLAMACPP_PROBE: Bool.default(true),
    /** Where `docupod models local` looks for GGUF files; default <DOCUPOD_DATA_DIR>/gguf. */
    DOCUPOD_LLAMACPP_MODELS_DIR: z.string().optional(),
    /** Chunks retrieved for each chat question. */
    DOCUPOD_CHAT_K: PositiveInt.max(50).default(8),
    /**
     * Answers (streamed or not, /api and /v1) one chat process generates at once; beyond it new ones get 503 with
     * Retry-After at once instead of slowing every admitted stream down. Per process: a cluster admits replicas × this.
     */
    DOCUPOD_CHAT_MAX_STREAMS: PositiveInt.max(100_000).default(200),
    /** How long a model may take to rewrite a follow-up into a standalone query before the rule-based rewrite is used. */
    DOCUPOD_CHAT_REWRITE_TIMEOUT: Duration.default(5e3),
    /** MCP write tools (add_document, delete_document): off unless set, since an agent's mistakes then change data. */
    DOCUPOD_MCP_WRITE: Bool.default(false),
    DOCUPOD_EMBED_PROVIDER: z.enum(['none', 'openai', 'ollama', 'transformers', 'llamacpp']).default('none'),
    DOCUPOD_EMBED_BASE_URL: Url.optional(),
    DOCUPOD_EMBED_MODEL: z.string().optional(),
    DOCUPOD_EMBED_API_KEY: z.string().optional(),
    /**
     * Reranking between retrieval and the answer (README "Reranking"): `tei` = Hugging Face TEI's POST /rerank,
     * `cohere` = the Cohere/Jina-style POST /v1/rerank, `transformers` = a local transformers.js cross-encoder directory
     * (DOCUPOD_RERANK_MODEL). A failure or timeout keeps retrieval's order.
     */
    DOCUPOD_RERANK_PROVIDER: z.enum(['none', 'tei', 'cohere', 'transformers'], { message: 'expected none, tei, cohere or transformers' }).default('none'),
    DOCUPOD_RERANK_URL: Url.optional(),
    DOCUPOD_RERANK_MODEL: z.string().optional(),
    DOCUPOD_RERANK_API_KEY: z.string().optional(),
    /** Chunks kept for the answer after reranking; default DOCUPOD_CHAT_K. */
    DOCUPOD_RERANK_TOP_N: PositiveInt.max(100).optional(),
    /** Chunks retrieved and sent to the reranker (at least the top N). */
    DOCUPOD_RERANK_CANDIDATES: PositiveInt.max(200).default(30),
    /** How long an answer waits for the reranker before it goes on in retrieval's order. */
    DOCUPOD_RERANK_TIMEOUT: Duration.default(2e3),
    /** Where uploaded originals go: a local directory (embedded default) or Postgres (default with DATABASE_URL). */
    DOCUPOD_BLOB_STORE: z.enum(['local', 'postgres']).optional(),
    DOCUPOD_INGEST_WORKERS: PositiveInt.max(64).default(2),
    DOCUPOD_INGEST_PARSER_THREADS: PositiveInt.max(64).default(2),
    DOCUPOD_INGEST_MAX_ATTEMPTS: PositiveInt.max(100).default(5),
    /**
     * How long a job stays with a worker that stopped heartbeating (it heartbeats every third of it). A killed process
     * is noticed at once at the next start of any worker (its liveness lock is gone); a running worker takes the job
     * over only when the lease runs out, so this bounds how long a crashed pod's document waits.
     */
    DOCUPOD_JOB_LEASE: Duration.pipe(z.number().min(3_000, 'must be at least 3s (workers heartbeat every third of it, at most once a second)').max(3_600_000, 'must be at most 1h')).default(60_000),
    DOCUPOD_INGEST_MAX_BYTES: Size.default(50 * 1024 * 1024),
    DOCUPOD_INGEST_MAX_PAGES: PositiveInt.default(2000),
    DOCUPOD_INGEST_MAX_DECOMPRESSED_BYTES: Size.default(200 * 1024 * 1024),
    DOCUPOD_INGEST_PARSE_TIMEOUT: Duration.default(120e3),
    DOCUPOD_CHUNK_TOKENS: PositiveInt.max(8192).default(256),
    DOCUPOD_CHUNK_OVERLAP: z.coerce.number({ message: 'expected a whole number' }).int().min(0).max(4096).default(32),
    DOCUPOD_SEARCH_LANGUAGE: z.string().regex(/^[a-z_]+$/, 'expected a Postgres text search configuration such as english or simple').default('english'),
    /**
     * Memory (MiB, per retrieval process) for the lexical postings cache: BM25 scored in memory over postings loaded
     * from the database, which stays the source of truth. 0 scores every query in SQL. See README "Search settings".
     */
    DOCUPOD_LEXICAL_CACHE_MB: z.coerce.number({ message: 'expected a whole number of MiB' }).int().min(0).max(1_000_000).default(128),
    /** Vector search: candidates the binary HNSW index returns for exact re-ranking (higher = better recall, slower). See README "Search settings". */
    DOCUPOD_VECTOR_EF_SEARCH: PositiveInt.max(1000).default(100),

    /** The models role: `<repository>/<name>/<version>/` folders; default `<DOCUPOD_DATA_DIR>/models`. */
    DOCUPOD_MODELS_REPOSITORY: z.string().optional(),
    /** Rows per model run when concurrent requests are micro-batched. */
    DOCUPOD_MODELS_MAX_BATCH_SIZE: PositiveInt.max(4096).default(32),
    /** How long an idle model waits for more requests before running; 0 runs with what arrived in the same tick. */
    DOCUPOD_MODELS_MAX_BATCH_DELAY: Duration.default(0),
    /** Model runs in flight at once, per model. */
    DOCUPOD_MODELS_CONCURRENCY: PositiveInt.max(64).default(1),
    /** Rows allowed to wait per model; beyond it requests get 503 with Retry-After. */
    DOCUPOD_MODELS_MAX_QUEUE: PositiveInt.default(4096),
    /**
     * Who may call model inference and metadata under /models: `authenticated` (a docupod API key or login, checked
     * by the gateway in the same process or against the shared DATABASE_URL; or DOCUPOD_INTERNAL_TOKEN) or `open`
     * (anyone who reaches the port). See README "Security defaults".
     */
    DOCUPOD_MODELS_INFERENCE: z.enum(['authenticated', 'open']).default('authenticated'),
  })
  .superRefine((c, ctx) => {
    for (const p of ['openai'] as const) {
      if (c.DOCUPOD_LLM_PROVIDER === p && !c.DOCUPOD_LLM_BASE_URL)
        ctx.addIssue({ code: 'custom', path: ['DOCUPOD_LLM_BASE_URL'], message: `required when DOCUPOD_LLM_PROVIDER=${p}` });
      if (c.DOCUPOD_EMBED_PROVIDER === p && !c.DOCUPOD_EMBED_BASE_URL)
        ctx.addIssue({ code: 'custom', path: ['DOCUPOD_EMBED_BASE_URL'], message: `required when DOCUPOD_EMBED_PROVIDER=${p}` });
    }
    if ((c.DOCUPOD_LLM_PROVIDER === 'openai' || c.DOCUPOD_LLM_PROVIDER === 'ollama') && !c.DOCUPOD_LLM_MODEL)
      ctx.addIssue({ code: 'custom', path: ['DOCUPOD_LLM_MODEL'], message: `required when DOCUPOD_LLM_PROVIDER=${c.DOCUPOD_LLM_PROVIDER} (e.g. ${c.DOCUPOD_LLM_PROVIDER === 'openai' ? 'gpt-4o-mini' : 'llama3.2'})` });
    if (c.DOCUPOD_LLM_PROVIDER === 'llamacpp' && !c.DOCUPOD_LLM_MODEL)
      ctx.addIssue({ code: 'custom', path: ['DOCUPOD_LLM_MODEL'], message: 'required when DOCUPOD_LLM_PROVIDER=llamacpp (path to a GGUF file)' });
    if (c.DOCUPOD_EMBED_PROVIDER === 'llamacpp' && !c.DOCUPOD_EMBED_MODEL)
      ctx.addIssue({ code: 'custom', path: ['DOCUPOD_EMBED_MODEL'], message: 'required when DOCUPOD_EMBED_PROVIDER=llamacpp (path to a GGUF embedding model)' });
    if ((c.DOCUPOD_RERANK_PROVIDER === 'tei' || c.DOCUPOD_RERANK_PROVIDER === 'cohere') && !c.DOCUPOD_RERANK_URL)
      ctx.addIssue({ code: 'custom', path: ['DOCUPOD_RERANK_URL'], message: `required when DOCUPOD_RERANK_PROVIDER=${c.DOCUPOD_RERANK_PROVIDER} (${c.DOCUPOD_RERANK_PROVIDER === 'tei' ? 'the TEI server, e.g. http://tei-reranker:80' : 'the API root, e.g. https://api.cohere.com or https://api.jina.ai'})` });
    if (c.DOCUPOD_RERANK_PROVIDER === 'cohere' && !c.DOCUPOD_RERANK_MODEL)
      ctx.addIssue({ code: 'custom', path: ['DOCUPOD_RERANK_MODEL'], message: 'required when DOCUPOD_RERANK_PROVIDER=cohere (e.g. rerank-v3.5 or jina-reranker-v2-base-multilingual)' });
    if (c.DOCUPOD_RERANK_PROVIDER === 'transformers' && !c.DOCUPOD_RERANK_MODEL)
      ctx.addIssue({ code: 'custom', path: ['DOCUPOD_RERANK_MODEL'], message: 'required when DOCUPOD_RERANK_PROVIDER=transformers (the path of a local transformers.js cross-encoder directory, e.g. ms-marco-MiniLM-L-6-v2)' });
    if (c.DOCUPOD_RERANK_TOP_N !== undefined && c.DOCUPOD_RERANK_TOP_N > c.DOCUPOD_RERANK_CANDIDATES)
      ctx.addIssue({ code: 'custom', path: ['DOCUPOD_RERANK_TOP_N'], message: `must not exceed DOCUPOD_RERANK_CANDIDATES (${c.DOCUPOD_RERANK_CANDIDATES}): the reranker keeps the best N of the candidates` });
    if (c.DOCUPOD_CHUNK_OVERLAP >= c.DOCUPOD_CHUNK_TOKENS)
      ctx.addIssue({ code: 'custom', path: ['DOCUPOD_CHUNK_OVERLAP'], message: `must be smaller than DOCUPOD_CHUNK_TOKENS (${c.DOCUPOD_CHUNK_TOKENS})` });
    const httpPort = c.PORT ?? c.DOCUPOD_PORT;
    if (c.DOCUPOD_METRICS_PORT !== undefined && c.DOCUPOD_METRICS_PORT !== 0 && c.DOCUPOD_METRICS_PORT === httpPort)
      ctx.addIssue({ code: 'custom', path: ['DOCUPOD_METRICS_PORT'], message: `must differ from the HTTP port (${httpPort}); unset it to serve /metrics on the HTTP port` });
    if (c.DOCUPOD_DATABASE_URL && c.DATABASE_URL && c.DOCUPOD_DATABASE_URL !== c.DATABASE_URL)
      ctx.addIssue({ code: 'custom', path: ['DATABASE_URL'], message: 'DATABASE_URL and DOCUPOD_DATABASE_URL are both set and differ; set only one' });
  });

export type RawConfig = z.infer<typeof ConfigSchema>;

/** The nested, typed view; each component receives its own slice. */
export interface Config {
  roles: string;
  http: {
    host: string;
    port: number;
    bodyLimit: number;
    uploadLimit: number;
    corsOrigins: string[];
    trustProxy: boolean;
    shutdownDelayMs: number;
    requestTimeoutMs: number;
  };
  storage: {
    dataDir: string;
    databaseUrl?: string;
    poolMax: number;
    pgliteSharedBuffers: number;
    /** DOCUPOD_PGLITE_WASM_TIERING resolved: `auto` → on exactly when an embedder is configured. */
    pgliteWasmTiering: boolean;
    migrateOnStart: boolean;
  };
  log: { level: RawConfig['DOCUPOD_LOG_LEVEL']; format: RawConfig['DOCUPOD_LOG_FORMAT'] };
  /** The MCP server on /mcp: whether its write tools exist (the caller's role still decides each call). */
  mcp: { write: boolean };
  observability: {
    metricsEnabled: boolean;
    /** A separate listener for /metrics; unset: /metrics on the HTTP port. */
    metricsPort?: number;
    /** Bearer token /metrics requires; unset: none. */
    metricsToken?: string;
    otlpEndpoint?: string;
    serviceName: string;
  };
  auth: {
    jwtSecret?: string;
    accessTokenTtlMs: number;
    refreshTokenTtlMs: number;
    signup: 'open' | 'invite' | 'closed';
    loginMaxAttempts: number;
    loginWindowMs: number;
    /** How long a pod trusts its in-process copy of a user, API key or membership (0: no cache). */
    cacheTtlMs: number;
    internalToken?: string;
  };
  urls: { gateway?: string; ingest?: string; retrieval?: string; chat?: string; models?: string };
  llm: {
    provider: RawConfig['DOCUPOD_LLM_PROVIDER'];
    baseUrl?: string;
    model?: string;
    apiKey?: string;
    contextTokens?: number;
    timeoutMs: number;
    idleTimeoutMs: number;
    maxRetries: number;
    /** llamacpp only. */
    parallel: number;
    maxQueue: number;
    temperature?: number;
    topP?: number;
    maxTokens?: number;
  };
  /** The in-process llama.cpp runtime, shared by the llamacpp LLM and embedder. */
  llamacpp: { threads?: number; probe: boolean; modelsDir: string };
  chat: { k: number; maxStreams: number; rewriteTimeoutMs: number };
  embed: { provider: RawConfig['DOCUPOD_EMBED_PROVIDER']; baseUrl?: string; model?: string; apiKey?: string };
  rerank: { provider: RawConfig['DOCUPOD_RERANK_PROVIDER']; url?: string; model?: string; apiKey?: string; topN?: number; candidates: number; timeoutMs: number };
  search: { language: string; lexicalCacheBytes: number; efSearch: number };
  models: { repository?: string; maxBatchSize: number; maxBatchDelayMs: number; concurrency: number; maxQueue: number; inference: 'authenticated' | 'open' };
  blobs: { store: 'local' | 'postgres'; dir: string };
  ingest: {
    workers: number;
    parserThreads: number;
    maxAttempts: number;
    /** DOCUPOD_JOB_LEASE in ms (the job queue's lease; it serves ingest and re-embedding jobs). */
    jobLeaseMs: number;
    limits: { maxBytes: number; maxPages: number; maxDecompressedBytes: number; timeoutMs: number };
    chunkTokens: number;
    chunkOverlap: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly issues: Array<{ variable: string; value?: string; message: string }>) {
    super(
      'invalid configuration:\n' +
        issues.map((i) => `  ${i.variable}${i.value !== undefined ? `=${JSON.stringify(i.value)}` : ''}: ${i.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Resolves X_FILE for secrets and drops empty strings (an empty value means unset). */
function normalizeEnv(env: Env, readFile: (path: string) => string): { env: Env; issues: ConfigError['issues'] } {
  const out: Env = {};
  const issues: ConfigError['issues'] = [];
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  for (const name of SECRET_VARS) {
    const file = out[`${name}_FILE`];
    if (!file) continue;
    if (out[name]) {
      issues.push({ variable: `${name}_FILE`, message: `both ${name} and ${name}_FILE are set; set only one` });
      continue;
    }
    try {
      out[name] = readFile(file).trim();
    } catch (err) {
      issues.push({ variable: `${name}_FILE`, value: file, message: `cannot read the file: ${(err as Error).message}` });
    }
  }
  return { env: out, issues };
}

export function loadConfig(env: Env, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): Config {
  const { env: clean, issues } = normalizeEnv(env, readFile);
  const parsed = ConfigSchema.safeParse(clean);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const variable = String(issue.path[0] ?? '(config)');
      const secret = (SECRET_VARS as readonly string[]).includes(variable);
      issues.push({ variable, value: secret ? (clean[variable] ? '<redacted>' : undefined) : clean[variable], message: issue.message });
    }
  }
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  const c = parsed.data;
  const databaseUrl = c.DOCUPOD_DATABASE_URL ?? c.DATABASE_URL;
  return {
    roles: c.DOCUPOD_ROLE,
    http: {
      host: c.DOCUPOD_HOST,
      port: c.PORT ?? c.DOCUPOD_PORT,
      bodyLimit: c.DOCUPOD_BODY_LIMIT,
      uploadLimit: c.DOCUPOD_UPLOAD_LIMIT,
      corsOrigins: c.DOCUPOD_CORS_ORIGINS.split(',').map((s) => s.trim()).filter(Boolean),
      trustProxy: c.DOCUPOD_TRUST_PROXY,
      shutdownDelayMs: c.DOCUPOD_SHUTDOWN_DELAY,
      requestTimeoutMs: c.DOCUPOD_REQUEST_TIMEOUT,
    },
    storage: {
      dataDir: c.DOCUPOD_DATA_DIR,
      databaseUrl,
      poolMax: c.DOCUPOD_DATABASE_POOL_MAX,
      pgliteSharedBuffers: c.DOCUPOD_PGLITE_SHARED_BUFFERS,
      pgliteWasmTiering: c.DOCUPOD_PGLITE_WASM_TIERING === 'auto' ? c.DOCUPOD_EMBED_PROVIDER !== 'none' : c.DOCUPOD_PGLITE_WASM_TIERING === 'on',
      // Embedded mode migrates at start; with a server the Helm hook runs `docupod migrate` unless told otherwise.
      migrateOnStart: c.DOCUPOD_MIGRATE_ON_START ?? !databaseUrl,
    },
    log: { level: c.DOCUPOD_LOG_LEVEL, format: c.DOCUPOD_LOG_FORMAT },
    observability: {
      metricsEnabled: c.DOCUPOD_METRICS_ENABLED,
      metricsPort: c.DOCUPOD_METRICS_PORT,
      metricsToken: c.DOCUPOD_METRICS_TOKEN,
      otlpEndpoint: c.OTEL_EXPORTER_OTLP_ENDPOINT,
      serviceName: c.OTEL_SERVICE_NAME,
    },
    auth: {
      jwtSecret: c.DOCUPOD_JWT_SECRET,
      accessTokenTtlMs: c.DOCUPOD_ACCESS_TOKEN_TTL,
      refreshTokenTtlMs: c.DOCUPOD_REFRESH_TOKEN_TTL,
      signup: c.DOCUPOD_SIGNUP,
      loginMaxAttempts: c.DOCUPOD_LOGIN_MAX_ATTEMPTS,
      loginWindowMs: c.DOCUPOD_LOGIN_WINDOW,
      cacheTtlMs: c.DOCUPOD_AUTH_CACHE_TTL,
      internalToken: c.DOCUPOD_INTERNAL_TOKEN,
    },
    urls: {
      gateway: c.DOCUPOD_GATEWAY_URL,
      ingest: c.DOCUPOD_INGEST_URL,
      retrieval: c.DOCUPOD_RETRIEVAL_URL,
      chat: c.DOCUPOD_CHAT_URL,
      models: c.DOCUPOD_MODELS_URL,
    },
    llm: {
      provider: c.DOCUPOD_LLM_PROVIDER,
      baseUrl: c.DOCUPOD_LLM_BASE_URL,
      model: c.DOCUPOD_LLM_MODEL,
      apiKey: c.DOCUPOD_LLM_API_KEY,
      contextTokens: c.DOCUPOD_LLM_CONTEXT_TOKENS,
      timeoutMs: c.DOCUPOD_LLM_TIMEOUT,
      idleTimeoutMs: c.DOCUPOD_LLM_IDLE_TIMEOUT,
      maxRetries: c.DOCUPOD_LLM_MAX_RETRIES,
      parallel: c.DOCUPOD_LLM_PARALLEL,
      maxQueue: c.DOCUPOD_LLM_MAX_QUEUE,
      temperature: c.DOCUPOD_LLM_TEMPERATURE,
      topP: c.DOCUPOD_LLM_TOP_P,
      maxTokens: c.DOCUPOD_LLM_MAX_TOKENS,
    },
    llamacpp: {
      threads: c.DOCUPOD_LLAMACPP_THREADS,
      probe: c.DOCUPOD_LLAMACPP_PROBE,
      modelsDir: c.DOCUPOD_LLAMACPP_MODELS_DIR ?? path.join(c.DOCUPOD_DATA_DIR.startsWith('memory://') ? '.' : c.DOCUPOD_DATA_DIR, 'gguf'),
    },
    mcp: { write: c.DOCUPOD_MCP_WRITE },
    chat: { k: c.DOCUPOD_CHAT_K, maxStreams: c.DOCUPOD_CHAT_MAX_STREAMS, rewriteTimeoutMs: c.DOCUPOD_CHAT_REWRITE_TIMEOUT },
    embed: { provider: c.DOCUPOD_EMBED_PROVIDER, baseUrl: c.DOCUPOD_EMBED_BASE_URL, model: c.DOCUPOD_EMBED_MODEL, apiKey: c.DOCUPOD_EMBED_API_KEY },
    rerank: {
      provider: c.DOCUPOD_RERANK_PROVIDER,
      url: c.DOCUPOD_RERANK_URL,
      model: c.DOCUPOD_RERANK_MODEL,
      apiKey: c.DOCUPOD_RERANK_API_KEY,
      topN: c.DOCUPOD_RERANK_TOP_N,
      candidates: c.DOCUPOD_RERANK_CANDIDATES,
      timeoutMs: c.DOCUPOD_RERANK_TIMEOUT,
    },
    search: { language: c.DOCUPOD_SEARCH_LANGUAGE, lexicalCacheBytes: c.DOCUPOD_LEXICAL_CACHE_MB * 1024 * 1024, efSearch: c.DOCUPOD_VECTOR_EF_SEARCH },
    models: {
      // memory:// (tests) has no directory to hold models.
      repository: c.DOCUPOD_MODELS_REPOSITORY ?? (c.DOCUPOD_DATA_DIR.startsWith('memory://') ? undefined : path.join(c.DOCUPOD_DATA_DIR, 'models')),
      maxBatchSize: c.DOCUPOD_MODELS_MAX_BATCH_SIZE,
      maxBatchDelayMs: c.DOCUPOD_MODELS_MAX_BATCH_DELAY,
      concurrency: c.DOCUPOD_MODELS_CONCURRENCY,
      maxQueue: c.DOCUPOD_MODELS_MAX_QUEUE,
      inference: c.DOCUPOD_MODELS_INFERENCE,
    },
    blobs: { store: c.DOCUPOD_BLOB_STORE ?? (databaseUrl || c.DOCUPOD_DATA_DIR === 'memory://' ? 'postgres' : 'local'), dir: `${c.DOCUPOD_DATA_DIR.replace(/\/$/, '')}/blobs` },
    ingest: {
      workers: c.DOCUPOD_INGEST_WORKERS,
      parserThreads: c.DOCUPOD_INGEST_PARSER_THREADS,
      maxAttempts: c.DOCUPOD_INGEST_MAX_ATTEMPTS,
      jobLeaseMs: c.DOCUPOD_JOB_LEASE,
      limits: {
        maxBytes: c.DOCUPOD_INGEST_MAX_BYTES,
        maxPages: c.DOCUPOD_INGEST_MAX_PAGES,
        maxDecompressedBytes: c.DOCUPOD_INGEST_MAX_DECOMPRESSED_BYTES,
        timeoutMs: c.DOCUPOD_INGEST_PARSE_TIMEOUT,
      },
      chunkTokens: c.DOCUPOD_CHUNK_TOKENS,
      chunkOverlap: c.DOCUPOD_CHUNK_OVERLAP,
    },
  };
}

/** The effective configuration with secrets redacted, for `docupod config` and the admin GET /config. */
export function redactedConfig(config: Config): unknown {
  const redactUrl = (u?: string) => (u ? u.replace(/\/\/([^:@/]+)(:[^@/]*)?@/, '//$1:<redacted>@') : u);
  const r = (v?: string) => (v ? '<redacted>' : undefined);
  return {
    ...config,
    storage: { ...config.storage, databaseUrl: redactUrl(config.storage.databaseUrl) },
    auth: { ...config.auth, jwtSecret: r(config.auth.jwtSecret), internalToken: r(config.auth.internalToken) },
    observability: { ...config.observability, metricsToken: r(config.observability.metricsToken) },
    llm: { ...config.llm, apiKey: r(config.llm.apiKey) },
    embed: { ...config.embed, apiKey: r(config.embed.apiKey) },
    rerank: { ...config.rerank, apiKey: r(config.rerank.apiKey) },
  };
}
