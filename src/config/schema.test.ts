import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactedConfig } from './schema.js';

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('runs with nothing set: embedded defaults on port 8080, data in ./data', () => {
    const c = loadConfig({});
    expect(c.http.port).toBe(8080);
    expect(c.storage.dataDir).toBe('./data');
    expect(c.storage.databaseUrl).toBeUndefined();
    expect(c.storage.migrateOnStart).toBe(true);
    expect(c.llm.provider).toBe('extractive');
    expect(c.embed.provider).toBe('none');
    expect(c.roles).toBe('all');
  });

  it('names the variable, the bad value and what is accepted', () => {
    const err = configError({ DOCUPOD_PORT: 'eighty', DOCUPOD_LLM_PROVIDER: 'gpt' });
    const port = err.issues.find((i) => i.variable === 'DOCUPOD_PORT')!;
    expect(port.value).toBe('eighty');
    expect(err.message).toContain('DOCUPOD_PORT="eighty"');
    const llm = err.issues.find((i) => i.variable === 'DOCUPOD_LLM_PROVIDER')!;
    expect(llm.message).toMatch(/extractive.*openai.*ollama.*llamacpp/);
  });

  it('resolves PGlite WASM tiering: off for lexical-only, on with an embedder, or as set', () => {
    expect(loadConfig({}).storage.pgliteWasmTiering).toBe(false);
    expect(loadConfig({ DOCUPOD_EMBED_PROVIDER: 'ollama' }).storage.pgliteWasmTiering).toBe(true);
    expect(loadConfig({ DOCUPOD_PGLITE_WASM_TIERING: 'on' }).storage.pgliteWasmTiering).toBe(true);
    expect(loadConfig({ DOCUPOD_EMBED_PROVIDER: 'ollama', DOCUPOD_PGLITE_WASM_TIERING: 'off' }).storage.pgliteWasmTiering).toBe(false);
    expect(configError({ DOCUPOD_PGLITE_WASM_TIERING: 'fast' }).message).toMatch(/DOCUPOD_PGLITE_WASM_TIERING="fast".*auto.*on.*off/s);
  });

  it('reports every problem at once', () => {
    const err = configError({ DOCUPOD_PORT: '-1', DOCUPOD_SIGNUP: 'maybe', DOCUPOD_BODY_LIMIT: 'lots', DOCUPOD_METRICS_ENABLED: 'perhaps' });
    expect(err.issues.map((i) => i.variable).sort()).toEqual(['DOCUPOD_BODY_LIMIT', 'DOCUPOD_METRICS_ENABLED', 'DOCUPOD_PORT', 'DOCUPOD_SIGNUP']);
  });

  it('treats an empty string as unset', () => {
    expect(loadConfig({ DOCUPOD_PORT: '', DATABASE_URL: '' }).http.port).toBe(8080);
  });

  it('parses sizes, durations and booleans with units', () => {
    const c = loadConfig({ DOCUPOD_BODY_LIMIT: '2MiB', DOCUPOD_ACCESS_TOKEN_TTL: '5m', DOCUPOD_METRICS_ENABLED: 'false', DOCUPOD_CORS_ORIGINS: 'https://a.example, https://b.example' });
    expect(c.http.bodyLimit).toBe(2 * 1024 * 1024);
    expect(c.auth.accessTokenTtlMs).toBe(300_000);
    expect(c.observability.metricsEnabled).toBe(false);
    expect(c.http.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
  });

  it('applies cross-field rules', () => {
    const err = configError({ DOCUPOD_LLM_PROVIDER: 'openai' });
    expect(err.issues[0]).toMatchObject({ variable: 'DOCUPOD_LLM_BASE_URL', message: 'required when DOCUPOD_LLM_PROVIDER=openai' });
  });

  it('reads secrets from X_FILE and never prints them', () => {
    const c = loadConfig({ DOCUPOD_JWT_SECRET_FILE: '/secrets/jwt' }, (p) => (p === '/secrets/jwt' ? 'x'.repeat(40) + '\n' : ''));
    expect(c.auth.jwtSecret).toBe('x'.repeat(40));
    const err = configError({ DOCUPOD_JWT_SECRET: 'short' });
    expect(err.message).not.toContain('short');
    expect(JSON.stringify(redactedConfig(c))).not.toContain('xxxx');
  });

  it('redacts the database password', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://app:s3cret@db:5432/docupod' });
    expect(c.storage.migrateOnStart).toBe(false);
    const shown = JSON.stringify(redactedConfig(c));
    expect(shown).not.toContain('s3cret');
    expect(shown).toContain('postgres://app:<redacted>@db:5432/docupod');
  });

  it('says which _FILE could not be read', () => {
    const err = configError({ DOCUPOD_JWT_SECRET_FILE: '/nope' });
    expect(err.issues[0]).toMatchObject({ variable: 'DOCUPOD_JWT_SECRET_FILE', value: '/nope' });
  });
});

describe('fault-handling settings', () => {
  it('reads the job lease as a duration of at least 3 s, 60 s by default', () => {
    expect(loadConfig({}).ingest.jobLeaseMs).toBe(60_000);
    expect(loadConfig({ DOCUPOD_JOB_LEASE: '4s' }).ingest.jobLeaseMs).toBe(4_000);
    expect(configError({ DOCUPOD_JOB_LEASE: '500ms' }).message).toMatch(/DOCUPOD_JOB_LEASE="500ms": must be at least 3s/);
    expect(configError({ DOCUPOD_JOB_LEASE: 'soon' }).message).toMatch(/DOCUPOD_JOB_LEASE="soon": expected a duration/);
  });

  it('validates the reranking settings, naming each variable', () => {
    expect(loadConfig({}).rerank).toMatchObject({ provider: 'none', candidates: 30, timeoutMs: 2000 });
    const tei = configError({ DOCUPOD_RERANK_PROVIDER: 'tei' });
    expect(tei.message).toMatch(/DOCUPOD_RERANK_URL: required when DOCUPOD_RERANK_PROVIDER=tei/);
    const cohere = configError({ DOCUPOD_RERANK_PROVIDER: 'cohere', DOCUPOD_RERANK_URL: 'https://api.cohere.com', DOCUPOD_RERANK_TOP_N: '50' });
    expect(cohere.issues.map((i) => i.variable).sort()).toEqual(['DOCUPOD_RERANK_MODEL', 'DOCUPOD_RERANK_TOP_N']);
    expect(configError({ DOCUPOD_RERANK_PROVIDER: 'bge' }).message).toMatch(/DOCUPOD_RERANK_PROVIDER="bge": expected none, tei, cohere or transformers/);
    expect(configError({ DOCUPOD_RERANK_PROVIDER: 'transformers' }).issues.map((i) => i.variable)).toEqual(['DOCUPOD_RERANK_MODEL']);
    const c = loadConfig({ DOCUPOD_RERANK_PROVIDER: 'cohere', DOCUPOD_RERANK_URL: 'https://api.jina.ai', DOCUPOD_RERANK_MODEL: 'jina-reranker-v2-base-multilingual', DOCUPOD_RERANK_API_KEY_FILE: '/s/key', DOCUPOD_RERANK_TOP_N: '5', DOCUPOD_RERANK_TIMEOUT: '1s' }, (p) => (p === '/s/key' ? 'jina_secret\n' : ''));
    expect(c.rerank).toMatchObject({ provider: 'cohere', apiKey: 'jina_secret', topN: 5, timeoutMs: 1000 });
    expect(JSON.stringify(redactedConfig(c))).not.toContain('jina_secret');
  });

  it('reads the per-process chat stream limit, 200 by default', () => {
    expect(loadConfig({}).chat.maxStreams).toBe(200);
    expect(loadConfig({ DOCUPOD_CHAT_MAX_STREAMS: '3' }).chat.maxStreams).toBe(3);
    expect(configError({ DOCUPOD_CHAT_MAX_STREAMS: '0' }).issues[0]).toMatchObject({ variable: 'DOCUPOD_CHAT_MAX_STREAMS', value: '0' });
  });

  it('keeps the MCP write tools off unless DOCUPOD_MCP_WRITE turns them on, and refuses other values', () => {
    expect(loadConfig({}).mcp.write).toBe(false);
    expect(loadConfig({ DOCUPOD_MCP_WRITE: 'true' }).mcp.write).toBe(true);
    expect(configError({ DOCUPOD_MCP_WRITE: 'sometimes' }).issues[0]).toMatchObject({ variable: 'DOCUPOD_MCP_WRITE', value: 'sometimes', message: 'expected true or false' });
  });
});
