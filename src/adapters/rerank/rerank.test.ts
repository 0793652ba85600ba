import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DocupodError } from '../../core/errors.js';
import { startFakeRerank, type FakeRerank } from '../../../test/fixtures/fake-rerank.js';
import { CohereReranker } from './cohere.js';
import { createReranker } from './factory.js';
import { checkScores } from './reranker.js';
import { TeiReranker } from './tei.js';

// Both rerank adapters against a server speaking their real wire protocols (test/fixtures/fake-rerank.ts).

const texts = ['apt pinning with preferences', 'vacuum full rewrites the table', 'nothing relevant', 'why avoid vacuum full on a busy table'];
const query = 'why avoid vacuum full';

let server: FakeRerank;
beforeAll(async () => {
  server = await startFakeRerank();
});
afterAll(async () => server?.close());
beforeEach(() => {
  server.mode = 'ok';
  server.requests.length = 0;
});

describe('TEI reranker', () => {
  it('posts {query, texts} to /rerank and returns the scores best first', async () => {
    const scores = await new TeiReranker({ baseUrl: server.url, apiKey: 'k1' }).rerank(query, texts);
    expect(scores.map((s) => s.index)).toEqual([3, 1, 0, 2]);
    expect(scores[0]!.score).toBe(4);
    expect(server.requests[0]).toMatchObject({ path: '/rerank', body: { query, texts, truncate: true } });
    expect(server.requests[0]!.headers.authorization).toBe('Bearer k1');
  });

  it('fails once, naming the status and the server, without retrying an error status', async () => {
    server.mode = 503;
    const err = await new TeiReranker({ baseUrl: server.url }).rerank(query, texts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DocupodError);
    expect((err as Error).message).toMatch(/tei rerank at http:\/\/127\.0\.0\.1:\d+\/rerank answered 503: Model is overloaded/);
    expect(server.requests).toHaveLength(1);
  });

  it('gives up after its timeout when the server never answers', async () => {
    server.mode = 'hang';
    const t0 = performance.now();
    const err = await new TeiReranker({ baseUrl: server.url, timeoutMs: 150 }).rerank(query, texts).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/did not answer within/);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('Cohere/Jina-style reranker', () => {
  it('posts {model, query, documents, top_n} to /v1/rerank and reads relevance_score', async () => {
    const scores = await new CohereReranker({ baseUrl: server.url, model: 'rerank-v3.5', apiKey: 'k2' }).rerank(query, texts, { topN: 2 });
    expect(scores).toEqual([{ index: 3, score: 4 }, { index: 1, score: 2 }]);
    expect(server.requests[0]).toMatchObject({ path: '/v1/rerank', body: { model: 'rerank-v3.5', query, documents: texts, top_n: 2 } });
    expect(server.requests[0]!.headers.authorization).toBe('Bearer k2');
  });

  it('does not double /v1 when the base URL already ends in it', async () => {
    await new CohereReranker({ baseUrl: `${server.url}/v1`, model: 'm' }).rerank(query, texts);
    expect(server.requests[0]!.path).toBe('/v1/rerank');
  });

  it('refuses an answer whose indexes do not fit the request (out of range, repeated, not a number)', () => {
    // A reranker answering for another request must not reorder ours.
    expect(() => checkScores('rerank', [{ index: 4, score: 1 }], 4)).toThrow(/invalid result \(index 4/);
    expect(() => checkScores('rerank', [{ index: 1, score: 1 }, { index: 1, score: 0 }], 4)).toThrow(/invalid/);
    expect(() => checkScores('rerank', [{ index: 0, score: Number.NaN }], 4)).toThrow(/invalid/);
    expect(checkScores('rerank', [{ index: 0, score: 0.1 }, { index: 2, score: 0.9 }], 4).map((s) => s.index)).toEqual([2, 0]);
  });
});

describe('createReranker', () => {
  it('is none by default and names the missing variable otherwise', () => {
    expect(createReranker({ provider: 'none' })).toBeUndefined();
    expect(() => createReranker({ provider: 'tei' })).toThrow(/DOCUPOD_RERANK_URL is required when DOCUPOD_RERANK_PROVIDER=tei/);
    expect(() => createReranker({ provider: 'cohere', url: 'http://x' })).toThrow(/DOCUPOD_RERANK_MODEL is required/);
    expect(createReranker({ provider: 'cohere', url: 'http://x', model: 'm' })?.id).toBe('cohere:m');
    expect(() => createReranker({ provider: 'transformers' })).toThrow(/DOCUPOD_RERANK_MODEL is required when DOCUPOD_RERANK_PROVIDER=transformers/);
    expect(createReranker({ provider: 'transformers', model: '/models/ms-marco-MiniLM-L-6-v2' })?.id).toBe('transformers:ms-marco-MiniLM-L-6-v2');
  });
});
