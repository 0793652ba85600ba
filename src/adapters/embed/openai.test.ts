import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { DocupodError, Problems } from '../../core/errors.js';
import { fakeEmbedding, normalise, sendJson, startFakeOpenAi, type FakeOpenAi, type FakeOpenAiOptions } from '../../../test/fixtures/fake-openai.js';
import { OpenAiEmbedder, type OpenAiEmbedderOptions } from './openai.js';

const servers: FakeOpenAi[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function fake(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  const server = await startFakeOpenAi(options);
  servers.push(server);
  return server;
}

/** Fast retries so the suite stays quick; everything else as in production. */
function embedder(server: FakeOpenAi, options: Partial<OpenAiEmbedderOptions> = {}): OpenAiEmbedder {
  return new OpenAiEmbedder({ baseUrl: `${server.url}/v1`, model: 'text-embedding-3-small', retryBaseMs: 5, retryMaxMs: 20, ...options });
}

async function failure(p: Promise<unknown>): Promise<DocupodError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DocupodError);
  return err as DocupodError;
}

const texts = (n: number) => Array.from({ length: n }, (_, i) => `chunk number ${i}`);
const expected = (inputs: string[], dims = 8) => inputs.map((t) => fakeEmbedding(t, dims));

describe('openai-compatible embedder', () => {
  it('sends ceil(N/batch) requests and keeps input order even when the server shuffles `data`', async () => {
    const server = await fake({ shuffle: true });
    const inputs = texts(150);
    const vectors = await embedder(server, { batchSize: 64 }).embed(inputs);

    const requests = server.embeddingRequests();
    expect(requests.map((r) => (r.body.input as string[]).length)).toEqual([64, 64, 22]);
    expect(requests.flatMap((r) => r.body.input as string[])).toEqual(inputs);
    for (const r of requests) expect(r.body).toMatchObject({ model: 'text-embedding-3-small', encoding_format: 'float' });
    vectors.forEach((v, i) => v.forEach((x, d) => expect(x).toBeCloseTo(expected(inputs)[i]![d]!, 12)));
  });

  it('embeds nothing without calling the server', async () => {
    const server = await fake();
    expect(await embedder(server).embed([])).toEqual([]);
    expect(server.requests).toHaveLength(0);
  });

  it('learns the dimension from the first answer, with one probe shared by concurrent callers', async () => {
    const server = await fake({ dimensions: 12 });
    const e = embedder(server);
    expect(e.id).toBe('openai:text-embedding-3-small');
    expect(await Promise.all([e.dimensions(), e.dimensions()])).toEqual([12, 12]);
    expect(server.embeddingRequests()).toHaveLength(1);
    await e.embed(['a']);
    expect(await e.dimensions()).toBe(12);
    expect(server.embeddingRequests()).toHaveLength(2);
  });

  it('asks for shorter vectors with `dimensions`, knows the length without a call, and says so in its id', async () => {
    const server = await fake({ dimensions: 8 });
    const e = embedder(server, { dimensions: 4 });
    expect(e.id).toBe('openai:text-embedding-3-small@4');
    expect(await e.dimensions()).toBe(4);
    expect(server.requests).toHaveLength(0);
    const [v] = await e.embed(['hello']);
    expect(server.embeddingRequests()[0]!.body.dimensions).toBe(4);
    expect(v).toEqual(normalise(fakeEmbedding('hello', 8).slice(0, 4)).map((x) => expect.closeTo(x, 12)));
  });

  it('sends the API key as a bearer token and explains a refused key without echoing it', async () => {
    const server = await fake({ apiKey: 'sk-right' });
    expect(await embedder(server, { apiKey: 'sk-right' }).embed(['x'])).toHaveLength(1);
    const err = await failure(embedder(server, { apiKey: 'sk-wrong' }).embed(['x']));
    expect(err.problem).toBe(Problems.llmUnavailable);
    expect(err.extra).toMatchObject({ retryable: false, upstreamStatus: 401 });
    expect(err.message).toMatch(/refused our credentials \(401\): Incorrect API key provided.*DOCUPOD_EMBED_API_KEY/);
    expect(err.message).not.toContain('sk-wrong');
    expect(server.embeddingRequests()).toHaveLength(2);
  });

  it('retries a 503 with backoff, then succeeds, logging each retry without the key', async () => {
    const server = await fake({ apiKey: 'sk-secret' });
    server.fail('POST', '/v1/embeddings', { status: 503, body: { error: { message: 'overloaded' } } }, { status: 502, body: 'bad gateway' });
    const logged: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const log = { warn: (obj: object, msg: string) => logged.push({ obj: obj as Record<string, unknown>, msg }) };
    const vectors = await embedder(server, { apiKey: 'sk-secret', log }).embed(['a', 'b']);
    expect(vectors).toEqual(expected(['a', 'b']).map((v) => v.map((x) => expect.closeTo(x, 12))));
    expect(server.embeddingRequests()).toHaveLength(3);
    expect(logged.map((l) => [l.msg, l.obj.attempt, l.obj.upstreamStatus])).toEqual([
      ['embedding request failed, retrying', 1, 503],
      ['embedding request failed, retrying', 2, 502],
    ]);
    expect(logged[0]!.obj.reason).toMatch(/answered 503: overloaded/);
    expect(JSON.stringify(logged)).not.toContain('sk-secret');
  });

  it('gives up after maxRetries on 5xx with a retryable error naming the status and the message', async () => {
    const server = await fake();
    server.fail('POST', '/v1/embeddings', ...Array.from({ length: 3 }, () => ({ status: 500, body: { error: { message: 'boom' } } })));
    const err = await failure(embedder(server, { maxRetries: 2 }).embed(['a']));
    expect(err.problem).toBe(Problems.llmUnavailable);
    expect(err.extra).toMatchObject({ retryable: true, upstreamStatus: 500 });
    expect(err.message).toMatch(/answered 500: boom \(gave up after 3 attempts\)/);
    expect(server.embeddingRequests()).toHaveLength(3);
  });

  it('waits as long as Retry-After says on 429', async () => {
    const server = await fake();
    server.fail('POST', '/v1/embeddings', {
      status: 429,
      headers: { 'retry-after': '1' },
      body: { error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } },
    });
    const started = Date.now();
    expect(await embedder(server).embed(['a'])).toHaveLength(1);
    const elapsed = Date.now() - started;
    // Backoff alone would be ~5 ms; the server asked for a second.
    expect(elapsed).toBeGreaterThanOrEqual(990);
    expect(elapsed).toBeLessThan(3000);
    expect(server.embeddingRequests()).toHaveLength(2);
  });

  it('honours retry-after-ms, the millisecond form OpenAI sends', async () => {
    const server = await fake();
    server.fail('POST', '/v1/embeddings', { status: 429, headers: { 'retry-after-ms': '150', 'retry-after': '30' } });
    const started = Date.now();
    await embedder(server).embed(['a']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('does not hold a worker for a long Retry-After: fails at once with retryAfter for the job queue', async () => {
    const server = await fake();
    server.fail('POST', '/v1/embeddings', { status: 429, headers: { 'retry-after': '3600' }, body: { error: { message: 'quota' } } });
    const err = await failure(embedder(server).embed(['a']));
    expect(err.extra).toMatchObject({ retryable: true, retryAfter: 3600, upstreamStatus: 429 });
    expect(err.extra).not.toHaveProperty('retryAfterMs');
    expect(err.message).toMatch(/is rate limiting us: quota$/);
    expect(server.embeddingRequests()).toHaveLength(1);
  });

  it('does not retry a 400 and surfaces the server\'s detail', async () => {
    const server = await fake();
    const err = await failure(embedder(server).embed(['fine', '']));
    expect(err.problem).toBe(Problems.badRequest);
    expect(err.extra).toMatchObject({ retryable: false, upstreamStatus: 400 });
    expect(err.message).toContain("refused the request (400): '$.input' is invalid");
    expect(server.embeddingRequests()).toHaveLength(1);
  });

  it('explains a 404: model name or base URL', async () => {
    const server = await fake();
    const err = await failure(embedder(server, { model: 'no-such-model' }).embed(['a']));
    expect(err.extra).toMatchObject({ retryable: false, upstreamStatus: 404 });
    expect(err.message).toMatch(/The model `no-such-model` does not exist.*check the model name "no-such-model".*ending in \/v1/);
    expect(server.embeddingRequests()).toHaveLength(1);
  });

  it('times out a request that hangs, as a retryable upstream timeout', async () => {
    const server = await fake();
    server.fail('POST', '/v1/embeddings', { delayMs: 5000 });
    const started = Date.now();
    const err = await failure(embedder(server, { timeoutMs: 100, maxRetries: 0 }).embed(['a']));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.problem).toBe(Problems.upstreamTimeout);
    expect(err.extra.retryable).toBe(true);
    expect(err.message).toMatch(/did not answer within 100ms/);
  });

  it('retries after a timed-out attempt', async () => {
    const server = await fake();
    server.fail('POST', '/v1/embeddings', { delayMs: 5000 });
    expect(await embedder(server, { timeoutMs: 150, maxRetries: 1 }).embed(['a'])).toHaveLength(1);
    expect(server.embeddingRequests()).toHaveLength(2);
  });

  it('retries a dropped connection, before the headers or in the middle of the body', async () => {
    const server = await fake();
    server.fail('POST', '/v1/embeddings', { drop: 'before-headers' }, { drop: 'mid-body' });
    expect(await embedder(server).embed(['a', 'b'])).toEqual(expected(['a', 'b']).map((v) => v.map((x) => expect.closeTo(x, 12))));
    expect(server.embeddingRequests()).toHaveLength(3);
  });

  it('reports a connection that keeps dropping as unavailable and retryable', async () => {
    const server = await fake();
    server.fail('POST', '/v1/embeddings', { drop: 'before-headers' }, { drop: 'before-headers' });
    const err = await failure(embedder(server, { maxRetries: 1 }).embed(['a']));
    expect(err.problem).toBe(Problems.llmUnavailable);
    expect(err.extra.retryable).toBe(true);
    expect(err.message).toMatch(/could not be reached: .*other side closed.*\(gave up after 2 attempts\)/);
  });

  it('reports a refused connection with the reason and the address', async () => {
    const server = await fake();
    const url = server.url;
    await server.close();
    const err = await failure(new OpenAiEmbedder({ baseUrl: `${url}/v1`, model: 'm', maxRetries: 0 }).embed(['a']));
    expect(err.message).toContain(`at ${url}/v1/embeddings could not be reached`);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('stops when the caller aborts: during a request and during a backoff wait', async () => {
    const server = await fake();
    server.fail('POST', '/v1/embeddings', { delayMs: 5000 });
    const c1 = new AbortController();
    setTimeout(() => c1.abort(new Error('job cancelled')), 50);
    await expect(embedder(server).embed(['a'], c1.signal)).rejects.toThrow('job cancelled');

    server.fail('POST', '/v1/embeddings', { status: 503 });
    const c2 = new AbortController();
    const pending = embedder(server, { retryBaseMs: 5000, retryMaxMs: 5000 }).embed(['a'], c2.signal);
    setTimeout(() => c2.abort(new Error('shutting down')), 100);
    const started = Date.now();
    await expect(pending).rejects.toThrow('shutting down');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('appends /v1 to a bare host and tolerates a trailing slash', async () => {
    const server = await fake();
    await new OpenAiEmbedder({ baseUrl: server.url, model: 'text-embedding-3-small' }).embed(['a']);
    await new OpenAiEmbedder({ baseUrl: `${server.url}/v1/`, model: 'text-embedding-3-small' }).embed(['a']);
    expect(server.embeddingRequests()).toHaveLength(2);
  });

  it('decodes base64 vectors from a server that ignores encoding_format', async () => {
    const server = await fake();
    server.route('POST', '/v1/embeddings', (req, res) => {
      const input = (req.body as { input: string[] }).input;
      sendJson(res, 200, {
        object: 'list',
        model: 'm',
        data: input.map((t, index) => ({ object: 'embedding', index, embedding: Buffer.from(new Float32Array(fakeEmbedding(t, 8)).buffer).toString('base64') })),
        usage: { prompt_tokens: 1, total_tokens: 1 },
      });
    });
    const [v] = await embedder(server).embed(['hello']);
    v!.forEach((x, d) => expect(x).toBeCloseTo(fakeEmbedding('hello', 8)[d]!, 6));
  });

  it('rejects answers that do not match the inputs', async () => {
    const server = await fake();
    const answer = (data: unknown) => server.route('POST', '/v1/embeddings', (_req, res) => sendJson(res, 200, { object: 'list', data, model: 'm' }));
    answer([{ object: 'embedding', index: 0, embedding: [1, 2] }]);
    expect((await failure(embedder(server).embed(['a', 'b']))).message).toMatch(/expected 2 embeddings/);
    answer([
      { object: 'embedding', index: 0, embedding: [1, 2] },
      { object: 'embedding', index: 0, embedding: [1, 2] },
    ]);
    expect((await failure(embedder(server).embed(['a', 'b']))).message).toMatch(/bad or repeated index 0/);
    answer([
      { object: 'embedding', index: 0, embedding: [1, 2] },
      { object: 'embedding', index: 1, embedding: [1, 2, 3] },
    ]);
    const err = await failure(embedder(server).embed(['a', 'b']));
    expect(err.message).toMatch(/different lengths/);
    expect(err.extra.retryable).toBe(false);
    server.route('POST', '/v1/embeddings', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>proxy login</html>');
    });
    expect((await failure(embedder(server).embed(['a']))).message).toMatch(/not JSON: <html>proxy login/);
  });

  describe('against the official openai client', () => {
    it('the fake server answers what the client expects (its default base64 encoding included)', async () => {
      const server = await fake({ shuffle: true, apiKey: 'sk-test' });
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
      const inputs = texts(5);
      const res = await client.embeddings.create({ model: 'text-embedding-3-small', input: inputs });
      expect(server.embeddingRequests()[0]!.body.encoding_format).toBe('base64');
      expect(res.object).toBe('list');
      expect(res.usage.total_tokens).toBeGreaterThan(0);
      const byIndex = [...res.data].sort((a, b) => a.index - b.index).map((d) => Array.from(d.embedding));
      const ours = await embedder(server, { apiKey: 'sk-test' }).embed(inputs);
      // Same vectors both ways, to float32 precision (base64 carries float32).
      byIndex.forEach((v, i) => v.forEach((x, d) => expect(x).toBeCloseTo(ours[i]![d]!, 6)));
      expect((await client.models.list()).data.map((m) => m.id)).toEqual(['text-embedding-3-small']);
    });

    it('our request body is a valid EmbeddingCreateParams asking for floats', async () => {
      const server = await fake();
      await embedder(server, { dimensions: 4 }).embed(['a', 'b']);
      // Type-checked against the client's own parameter type: a field it does not know would not compile.
      const body: OpenAI.EmbeddingCreateParams = server.embeddingRequests()[0]!.body as OpenAI.EmbeddingCreateParams;
      expect(body).toEqual({ model: 'text-embedding-3-small', input: ['a', 'b'], encoding_format: 'float', dimensions: 4 });
      // And the client, asked for floats the same way, gets the same answer from the server.
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const res = await client.embeddings.create(body);
      expect(res.data.map((d) => d.embedding)).toEqual(await embedder(server, { dimensions: 4 }).embed(['a', 'b']));
    });

    it('the client surfaces the fake server\'s errors the way the real API\'s look', async () => {
      const server = await fake();
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'k', maxRetries: 0 });
      const err = await client.embeddings.create({ model: 'nope', input: 'a' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
      expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    });
  });
});
