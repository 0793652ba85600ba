import { afterEach, describe, expect, it, vi } from 'vitest';
import { DocupodError, Problems } from '../../core/errors.js';
import { fakeEmbedding } from '../../../test/fixtures/fake-openai.js';
import { startFakeOllama, type FakeOllama, type FakeOllamaOptions } from '../../../test/fixtures/fake-ollama.js';
import { OllamaEmbedder, type OllamaEmbedderOptions } from './ollama.js';

const servers: FakeOllama[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function fake(options: FakeOllamaOptions = {}): Promise<FakeOllama> {
  const server = await startFakeOllama(options);
  servers.push(server);
  return server;
}

function embedder(server: FakeOllama, options: Partial<OllamaEmbedderOptions> = {}): OllamaEmbedder {
  return new OllamaEmbedder({ baseUrl: server.url, model: 'nomic-embed-text', retryBaseMs: 5, retryMaxMs: 20, ...options });
}

async function failure(p: Promise<unknown>): Promise<DocupodError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DocupodError);
  return err as DocupodError;
}

const close = (vectors: number[][]) => vectors.map((v) => v.map((x) => expect.closeTo(x, 12)));

describe('ollama embedder', () => {
  it('posts {model, input: [...]} to /api/embed in batches and keeps the order', async () => {
    const server = await fake();
    const inputs = Array.from({ length: 10 }, (_, i) => `paragraph ${i}`);
    const vectors = await embedder(server, { batchSize: 4 }).embed(inputs);
    const requests = server.embedRequests();
    expect(requests.map((r) => r.body.input)).toEqual([inputs.slice(0, 4), inputs.slice(4, 8), inputs.slice(8)]);
    expect(requests[0]!.body).toEqual({ model: 'nomic-embed-text', input: inputs.slice(0, 4) });
    expect(vectors).toEqual(close(inputs.map((t) => fakeEmbedding(t, 8))));
  });

  it('passes truncate, keep_alive and dimensions only when set', async () => {
    const server = await fake();
    await embedder(server, { truncate: false, keepAlive: '10m', dimensions: 8 }).embed(['a']);
    expect(server.embedRequests()[0]!.body).toEqual({ model: 'nomic-embed-text', input: ['a'], truncate: false, keep_alive: '10m', dimensions: 8 });
  });

  it('treats "x" and "x:latest" as the same model in its id', async () => {
    const server = await fake();
    expect(embedder(server).id).toBe('ollama:nomic-embed-text:latest');
    expect(embedder(server, { model: 'nomic-embed-text:latest' }).id).toBe('ollama:nomic-embed-text:latest');
    expect(embedder(server, { model: 'bge-m3:567m' }).id).toBe('ollama:bge-m3:567m');
    expect(embedder(server, { model: 'registry.local:5000/team/embed' }).id).toBe('ollama:registry.local:5000/team/embed:latest');
  });

  it('learns the dimension from the first answer', async () => {
    const server = await fake({ dimensions: 16 });
    const e = embedder(server);
    expect(await e.dimensions()).toBe(16);
    expect(await e.dimensions()).toBe(16);
    expect(server.embedRequests()).toHaveLength(1);
  });

  it('tells the user to run `ollama pull` when the model is not there, without retrying', async () => {
    const server = await fake({ models: ['all-minilm'] });
    const err = await failure(embedder(server, { model: 'mxbai-embed-large' }).embed(['a']));
    expect(err.problem).toBe(Problems.llmUnavailable);
    expect(err.extra).toMatchObject({ retryable: false, upstreamStatus: 404, model: 'mxbai-embed-large' });
    expect(err.message).toContain('run `ollama pull mxbai-embed-large`');
    expect(err.message).toContain(`ollama at ${server.url}/ does not have the model "mxbai-embed-large"`);
    expect(err.message).toContain('model "mxbai-embed-large" not found, try pulling it first');
    expect(server.embedRequests()).toHaveLength(1);
  });

  it('says the base URL is wrong when the 404 is not about a model', async () => {
    const server = await fake();
    const err = await failure(new OllamaEmbedder({ baseUrl: `${server.url}/v1`, model: 'nomic-embed-text' }).embed(['a']));
    expect(err.message).toMatch(/answered 404 \(404 page not found\); check that the base URL is Ollama's address/);
    expect(err.extra.retryable).toBe(false);
  });

  it('retries 503 and a dropped connection, then succeeds', async () => {
    const server = await fake();
    server.fail('POST', '/api/embed', { status: 503, body: { error: 'server busy, please try again.  maximum pending requests exceeded' } }, { drop: 'before-headers' });
    expect(await embedder(server).embed(['a'])).toEqual(close([fakeEmbedding('a', 8)]));
    expect(server.embedRequests()).toHaveLength(3);
  });

  it('does not retry a 400 and surfaces Ollama\'s error text', async () => {
    const server = await fake();
    server.fail('POST', '/api/embed', { status: 400, body: { error: 'input length exceeds maximum context length' } });
    const err = await failure(embedder(server).embed(['a very long text']));
    expect(err.problem).toBe(Problems.badRequest);
    expect(err.message).toContain('refused the request (400): input length exceeds maximum context length');
    expect(server.embedRequests()).toHaveLength(1);
  });

  it('times out a hanging request (a model still loading, say)', async () => {
    const server = await fake();
    server.fail('POST', '/api/embed', { delayMs: 5000 }, { delayMs: 5000 });
    const err = await failure(embedder(server, { timeoutMs: 100, maxRetries: 1 }).embed(['a']));
    expect(err.problem).toBe(Problems.upstreamTimeout);
    expect(err.message).toMatch(/ollama embeddings at .*\/api\/embed did not answer within 100ms \(gave up after 2 attempts\)/);
    // On a loaded machine the client may give up before the server has logged the second attempt's arrival.
    await vi.waitFor(() => expect(server.embedRequests()).toHaveLength(2), { timeout: 3000 });
  });

  it('rejects an answer with the wrong number of vectors', async () => {
    const server = await fake();
    server.route('POST', '/api/embed', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ model: 'nomic-embed-text', embeddings: [[0.1, 0.2]] }));
    });
    const err = await failure(embedder(server).embed(['a', 'b']));
    expect(err.message).toMatch(/ollama embeddings sent an unexpected answer: expected 2 embeddings, got 1/);
  });
});
