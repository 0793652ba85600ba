import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sentences, squash, terms } from '../../src/adapters/llm/text.js';
import { NOT_IN_DOCUMENTS } from '../../src/adapters/llm/extractive.js';
import { normalizeText, readQuestions } from '../../src/cli/eval.js';
import { readOffTopic } from '../../src/cli/eval-sets.js';
import { chunks } from '../../src/storage/schema-documents.js';
import { as, createWorkspace, signup, type Session } from '../fixtures/auth.js';
import { startFakeOpenAi, type FakeOpenAi } from '../fixtures/fake-openai.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';

// Answers over the real dev corpus (the Debian Reference HTML, shared/eval/README.md), asked through the chat API as a
// user would: every citation quotes the sentence(s) the answer used. Lives in test/answers/ so it runs once, not on
// both database drivers: it ingests 16 files (~10 s). Without the corpus it is skipped (its name says so); under CI it fails.

const CORPUS = process.env.DOCUPOD_DEV_CORPUS ?? '/usr/share/debian-reference';
const QA = process.env.EVAL_QA ?? path.resolve(import.meta.dirname, '../../../shared/eval/debian-reference-qa.jsonl');
const OFF_TOPIC = path.resolve(import.meta.dirname, '../../eval/off-topic.jsonl');
const present = existsSync(CORPUS) && existsSync(QA);
// .ci/run installs the corpus, so in CI its absence is a failure; the questions live in shared/eval beside the
// repository (EVAL_QA names another copy), which a checkout alone does not have.
if (!existsSync(CORPUS) && process.env.CI) throw new Error(`the dev corpus (${CORPUS}) is missing: apt-get install -y debian-reference-en (.ci/run does)`);

export async function ingestCorpus(s: TestServer, who: Session, slug: string): Promise<void> {
  const form = new FormData();
  for (const f of readdirSync(CORPUS).filter((x) => x.endsWith('.html')).sort()) form.append('file', new Blob([readFileSync(path.join(CORPUS, f))]), f);
  const req = new Request('http://x/', { method: 'POST', body: form });
  const res = await as(s.app, who)({ method: 'POST', url: `/api/workspaces/${slug}/documents`, payload: Buffer.from(await req.arrayBuffer()), headers: { 'content-type': req.headers.get('content-type')! } });
  expect(res.statusCode, res.body).toBe(202);
  const ids = (res.json().documents as Array<{ id: string }>).map((d) => d.id);
  for (const id of ids) {
    for (let i = 0; ; i++) {
      const doc = (await as(s.app, who)({ url: `/api/workspaces/${slug}/documents/${id}` })).json();
      if (doc.state === 'indexed') break;
      if (doc.state === 'failed' || i > 1200) throw new Error(`not indexed: ${JSON.stringify(doc)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export interface Answer {
  question: string;
  answer: string;
  citations: Array<{ n: number; chunkId: string; source: string; quote: string; quoteStart: number; quoteEnd: number }>;
  usage: { totalTokens: number };
  trace: { results: unknown[] };
}

export async function ask(s: TestServer, who: Session, slug: string, question: string): Promise<Answer> {
  const chat = (await as(s.app, who)({ method: 'POST', url: `/api/workspaces/${slug}/chats`, payload: {} })).json();
  const res = await as(s.app, who)({ method: 'POST', url: `/api/workspaces/${slug}/chats/${chat.id}/messages`, payload: { content: question } });
  expect(res.statusCode, res.body).toBe(200);
  return { question, ...res.json() };
}

/** Chunk texts by id, straight from the index. */
export async function chunkTexts(s: TestServer, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await s.db.database.db.select({ id: chunks.id, text: chunks.text }).from(chunks).where(inArray(chunks.id, ids));
  return new Map(rows.map((r) => [r.id, r.text]));
}

describe.skipIf(!present)(`answers over the dev corpus (${present ? CORPUS : `skipped: ${existsSync(CORPUS) ? `no question file ${QA} (set EVAL_QA)` : `${CORPUS} is missing; apt-get install -y debian-reference-en`}`})`, () => {
  let s: TestServer;
  let owner: Session;
  let answers: Answer[];
  let offTopic: Answer[];
  beforeAll(async () => {
    s = await startTestServer();
    owner = await signup(s.app, 'owner@example.com');
    const ws = await createWorkspace(s.app, owner, 'Dev');
    await ingestCorpus(s, owner, ws.slug);
    answers = [];
    for (const q of readQuestions(QA)) answers.push(await ask(s, owner, ws.slug, q.question));
    offTopic = [];
    for (const q of readOffTopic(OFF_TOPIC)) offTopic.push(await ask(s, owner, ws.slug, q.question));
  }, 300_000);
  afterAll(async () => s?.close());

  it('abstains on at least 90% of the off-topic questions, naming the closest sources', () => {
    expect(offTopic.length).toBeGreaterThanOrEqual(40);
    const abstained = offTopic.filter((a) => a.answer.startsWith(NOT_IN_DOCUMENTS));
    expect(abstained.length / offTopic.length, offTopic.filter((a) => !abstained.includes(a)).map((a) => `${a.question} → ${a.answer.slice(0, 120)}`).join('\n')).toBeGreaterThanOrEqual(0.9);
    for (const a of abstained) {
      expect(a.citations).toEqual([]);
      if (a.trace.results.length > 0) expect(a.answer).toMatch(/The closest passages were in \S+\.html/);
    }
  });

  it('keeps the dev answer-phrase hit at or above where it was (0.600 before issue 16) while abstaining', () => {
    const qs = readQuestions(QA);
    const hits = qs.filter((q, i) => normalizeText(answers[i]!.answer).includes(normalizeText(q.answer))).length;
    expect(hits / qs.length).toBeGreaterThanOrEqual(0.6);
  });

  it('answers with whole sentences of the cited chunks, in document order, of bounded length', async () => {
    const texts = await chunkTexts(s, [...new Set(answers.flatMap((a) => a.citations.map((c) => c.chunkId)))]);
    for (const a of answers.filter((x) => !x.answer.startsWith(NOT_IN_DOCUMENTS))) {
      expect(a.answer.split(/\s+/).length, a.answer).toBeLessThanOrEqual(160);
      // Each stretch before a marker is text of the chunk it cites, beginning where a sentence or a table row begins.
      let from = 0;
      for (const m of a.answer.matchAll(/\[(\d+)\]/g)) {
        const stretch = squash(a.answer.slice(from, m.index));
        from = m.index + m[0].length;
        const c = a.citations.find((x) => x.n === Number(m[1]))!;
        const chunk = texts.get(c.chunkId)!.replace(/[ \t]+/g, ' ');
        // Where the stretch begins in the chunk: after a sentence end or a line break, or at the chunk's start with
        // no sign of a cut (a lower-case start there is the tail of a sentence the chunk overlap cut).
        expect(squash(chunk), a.question).toContain(stretch);
        const head = stretch.slice(0, 40).trim().split(' ').map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('\\s+');
        const at = new RegExp(head).exec(chunk)?.index ?? -1;
        expect(at, `${a.question}: “${stretch}” not in its chunk`).toBeGreaterThanOrEqual(0);
        const before = chunk.slice(0, at);
        if (at === 0) expect(stretch.includes(' | ') || /^[^\p{Ll},;:)]/u.test(stretch), `${a.question}: “${stretch}”`).toBe(true);
        else expect(before, `${a.question}: “${stretch}” starts mid-sentence`).toMatch(/(?:[.!?:]["')\]]*\s|\n\s*)$/);
      }
      // Quotes from one document follow its order, read in the order their markers appear.
      const byDoc = new Map<string, number[]>();
      const inAnswer = [...a.citations].sort((x, y) => a.answer.indexOf(`[${x.n}]`) - a.answer.indexOf(`[${y.n}]`));
      for (const c of inAnswer) byDoc.set(c.source, [...(byDoc.get(c.source) ?? []), c.quoteStart]);
      for (const starts of byDoc.values()) expect(starts, a.answer).toEqual([...starts].sort((x, y) => x - y));
    }
  });

  it('quotes, for every citation of every dev answer, a span of the cited chunk that the answer itself contains', async () => {
    const texts = await chunkTexts(s, [...new Set(answers.flatMap((a) => a.citations.map((c) => c.chunkId)))]);
    let checked = 0;
    for (const a of answers) {
      const said = squash(a.answer.replace(/\[\d+\]/g, ' '));
      for (const c of a.citations) {
        const chunk = squash(texts.get(c.chunkId) ?? '');
        expect(chunk, `${a.question}: [${c.n}]`).toContain(c.quote);
        // The extractive answerer copies sentences, so the quote is text of the answer, not just near it.
        expect(normalizeText(said), `${a.question}: [${c.n}] quotes “${c.quote}”\nanswer: ${a.answer}`).toContain(normalizeText(c.quote));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });
});

/**
 * A model that paraphrases: for sources [1] and [2] it restates the longest sentence of each in other words (its
 * first two and last words dropped, a lead-in added), the first marker before the full stop, the second after it.
 */
function paraphrase(messages: Array<{ role: string; content: string }>): string {
  const system = messages[0]!.content;
  const out: string[] = [];
  for (const n of [1, 2]) {
    const block = new RegExp(`\\n\\[${n}\\] [^\\n]*\\n([\\s\\S]*?)(?=\\n\\n\\[\\d+\\] |$)`).exec(system)?.[1];
    if (!block) continue;
    const longest = sentences(block).map((x) => squash(x.text)).sort((a, b) => b.length - a.length)[0];
    const words = longest?.replace(/[.!?:]+$/, '').split(' ') ?? [];
    if (words.length < 6) continue;
    const middle = words.slice(2, -1).join(' ');
    out.push(n === 1 ? `As the manual puts it, ${middle} [1].` : `In short, ${middle}. [2]`);
  }
  return out.join(' ') || "The documents don't say.";
}

describe.skipIf(!present)(`model answers with [n] markers over the dev corpus (${present ? 'fake OpenAI-compatible upstream' : 'skipped: no corpus'})`, () => {
  let s: TestServer;
  let fake: FakeOpenAi;
  let owner: Session;
  let answers: Answer[];
  beforeAll(async () => {
    fake = await startFakeOpenAi({ reply: paraphrase });
    s = await startTestServer({ env: { DOCUPOD_LLM_PROVIDER: 'openai', DOCUPOD_LLM_BASE_URL: `${fake.url}/v1`, DOCUPOD_LLM_MODEL: 'gpt-test', DOCUPOD_LLM_MAX_RETRIES: '0' } });
    owner = await signup(s.app, 'owner@example.com');
    const ws = await createWorkspace(s.app, owner, 'Dev');
    await ingestCorpus(s, owner, ws.slug);
    answers = [];
    for (const q of readQuestions(QA)) answers.push(await ask(s, owner, ws.slug, q.question));
  }, 300_000);
  afterAll(async () => {
    await s?.close();
    await fake?.close();
  });

  it('quotes a span of the cited chunk that shares the key words of the text the marker supports', async () => {
    const texts = await chunkTexts(s, [...new Set(answers.flatMap((a) => a.citations.map((c) => c.chunkId)))]);
    let checked = 0;
    for (const a of answers) {
      for (const c of a.citations) {
        expect(squash(texts.get(c.chunkId) ?? ''), `${a.question}: [${c.n}]`).toContain(c.quote);
        // What [n] supports: the paraphrased sentence that carries it (this fake writes one sentence per marker).
        const supported = c.n === 1 ? /As the manual puts it, (.*?) \[1\]/.exec(a.answer)![1]! : /In short, (.*?)\. \[2\]/.exec(a.answer)![1]!;
        const want = new Set(terms(supported));
        const shared = new Set(terms(c.quote).filter((t) => want.has(t)));
        expect(shared.size / want.size, `${a.question}: [${c.n}] quotes “${c.quote}” for “${supported}”`).toBeGreaterThanOrEqual(0.8);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });
});
