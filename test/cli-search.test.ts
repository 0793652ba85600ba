import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, signup } from './fixtures/auth.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// `docupod ingest`, `search` and `eval` run as users run them: the built program (`npm test` builds first), on a
// temporary data directory (embedded), and against a server started here (--url/--api-key).
const run = promisify(execFile);
const BIN = path.resolve('bin/docupod.js');
const root = mkdtempSync(path.join(tmpdir(), 'docupod-cli-search-'));
const corpus = path.join(root, 'corpus');
const dataDir = path.join(root, 'data');

async function docupod(args: string[], env: Record<string, string> = {}) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, DOCUPOD_DATA_DIR: dataDir, ...env }, timeout: 90_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const FILES: Record<string, string> = {
  'postgres.md': `# Postgres tuning\n\n## Checkpoints\n\nRaise max_wal_size when checkpoints happen too often during bulk loads.\n\n## Backups\n\nRun pg_dump every night and keep thirty days of archives.\n`,
  'guide/apt.html': `<html><head><title>APT guide</title></head><body><h1>APT guide</h1><h2>Sources</h2>
    <p>Repositories are listed in /etc/apt/sources.list, one line per archive.</p>
    <h2>Cleaning</h2><p>apt-get autoclean removes package files that can no longer be downloaded.</p></body></html>`,
  'notes.txt': 'The sticky bit on a directory prevents users from removing files they do not own.\n',
  'image.png': 'not a document: a directory walk skips it',
};

const QA = [
  { id: 't-1', question: 'When should I raise max_wal_size?', relevant: ['postgres.md'], answer: 'when checkpoints happen too often', kind: 'config' },
  { id: 't-2', question: 'Where are the APT repositories listed?', relevant: ['guide/apt.html'], answer: 'listed in /etc/apt/sources.list', kind: 'fact' },
  { id: 't-3', question: 'What does the sticky bit do?', relevant: ['notes.txt'], answer: 'prevents users from removing files' },
];

beforeAll(() => {
  for (const [name, content] of Object.entries(FILES)) {
    mkdirSync(path.dirname(path.join(corpus, name)), { recursive: true });
    writeFileSync(path.join(corpus, name), content);
  }
  writeFileSync(path.join(root, 'qa.jsonl'), QA.map((q) => JSON.stringify(q)).join('\n') + '\n');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('docupod ingest / search / eval (embedded)', () => {
  it('ingests a directory into a new workspace with one plain line per document (no TTY), then skips the same bytes', async () => {
    const r = await docupod(['ingest', corpus, '--workspace', 'Team Docs']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('to workspace team-docs (new)');
    expect(r.stdout).toMatch(/^indexed {3}postgres\.md \(\d+ chunks\)$/m);
    expect(r.stdout).toMatch(/^indexed {3}guide\/apt\.html \(\d+ chunks\)$/m);
    expect(r.stdout).toMatch(/^3\/3 indexed, \d+ chunks, 0 failed/m);
    expect(r.stdout).not.toContain('image.png');
    expect(r.stdout).not.toContain(String.fromCharCode(27)); // no progress bar escape codes without a TTY
    expect(r.stdout).not.toMatch(/█|░/);

    const again = await docupod(['ingest', path.join(corpus, 'notes.txt'), '--workspace', 'team-docs', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const j = JSON.parse(again.stdout);
    expect(j).toMatchObject({ workspace: 'team-docs', submitted: 1, duplicates: 1 });
    expect(j.documents[0]).toMatchObject({ source: 'notes.txt', state: 'indexed' });
  });

  it('searches with --json in the API response shape, and prints readable results without it', async () => {
    const r = await docupod(['search', 'max_wal_size checkpoints', '--workspace', 'team-docs', '--json', '--k', '3']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.mode).toBe('lexical');
    expect(res.results.length).toBeGreaterThan(0);
    expect(res.results.length).toBeLessThanOrEqual(3);
    expect(res.results[0]).toMatchObject({ source: 'postgres.md', title: 'Postgres tuning' });
    expect(res.results[0].text).toContain('Raise max_wal_size');
    expect(Object.keys(res.results[0])).toEqual(expect.arrayContaining(['chunkId', 'documentId', 'source', 'heading', 'text', 'score']));

    const human = await docupod(['search', 'sources.list', '--workspace', 'team-docs']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^ 1\. guide\/apt\.html.* {2}\(score [\d.]+\)$/m);
    expect(human.stdout).toContain('/etc/apt/sources.list');
    expect(human.stdout).toMatch(/result\(s\), lexical, [\d.]+ ms/);
  });

  it('answers a hybrid search lexically when no embedder is configured, and says so in notes', async () => {
    const r = await docupod(['search', 'max_wal_size checkpoints', '--workspace', 'team-docs', '--mode', 'hybrid', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res).toMatchObject({ mode: 'lexical', notes: [expect.stringMatching(/^hybrid search answered lexically: no embedder is configured/)] });
    expect(res.results[0]).toMatchObject({ source: 'postgres.md' });
  });

  it('explains a missing workspace and bad options instead of failing obscurely', async () => {
    const missing = await docupod(['search', 'anything', '--workspace', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no workspace "nope"');
    const k = await docupod(['search', 'x', '--k', '0']);
    expect(k.code).toBe(1);
    expect(k.stderr).toContain('--k must be a whole number from 1 to 100');
    const nothing = await docupod(['ingest', path.join(root, 'does-not-exist')]);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('no such file or directory');
  });

  it('evaluates a question set on a scratch workspace and prints one JSON object with the metrics', async () => {
    const r = await docupod(['eval', path.join(root, 'qa.jsonl'), '--corpus', corpus, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ n: 3, recallAt5: 1, mrrAt10: 1, ndcgAt10: 1, answerInTop5: 1, k: 10, mode: 'lexical', chunkTokens: 256, workspace: 'eval-corpus-256t' });
    // One summary per question kind; a question without a kind counts under "none".
    expect(Object.keys(j.byKind)).toEqual(['config', 'fact', 'none']);
    expect(j.byKind.fact).toMatchObject({ n: 1, recallAt5: 1, mrrAt10: 1, ndcgAt10: 1, answerInTop5: 1, answerHit: 1 });
    // The extractive answerer quotes the best-supported sentences: each expected phrase is in one of them.
    expect(j.answerHit).toBe(1);
    expect(j.questions.every((q: { answerHit: boolean }) => q.answerHit)).toBe(true);
    expect(j.searchP50Ms).toBeGreaterThan(0);
    expect(j.searchP99Ms).toBeGreaterThanOrEqual(j.searchP50Ms);
    expect(j.corpus).toMatchObject({ dir: corpus, files: 3 });
    expect(j.chunks).toBeGreaterThanOrEqual(3);
    expect(j.questions).toHaveLength(3);

    // A second run reuses the indexed corpus (same content hashes) and prints the human report.
    const again = await docupod(['eval', path.join(root, 'qa.jsonl'), '--corpus', corpus]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('3 already there with the same content');
    expect(again.stdout).toMatch(/recall@5 +1\.000 +\(3\/3\)/);
    expect(again.stdout).toMatch(/MRR@10 +1\.000/);
    expect(again.stdout).toMatch(/nDCG@10 +1\.000/);
    expect(again.stdout).toMatch(/by kind +n +recall@5 +MRR@10 +nDCG@10 +top-5 +hit\n +config +1 +1\.000/);
    expect(again.stdout).toMatch(/answer hit +1\.000 +\(3\/3; answers p50 [\d.]+ ms\)/);
    expect(again.stdout).toMatch(/search latency +p50 [\d.]+ ms, p99 [\d.]+ ms/);
  });

  it('reports corpus files that fail to ingest and scores the rest (--strict fails instead); reports abstention on --off-topic', async () => {
    const mixed = path.join(root, 'mixed');
    mkdirSync(mixed, { recursive: true });
    writeFileSync(path.join(mixed, 'postgres.md'), FILES['postgres.md']!);
    writeFileSync(path.join(mixed, 'blank.html'), '<html><head><title>x</title></head><body><script>var x = 1;</script></body></html>');
    writeFileSync(path.join(root, 'qa-one.jsonl'), `${JSON.stringify(QA[0])}\n`);
    writeFileSync(path.join(root, 'off.jsonl'), `${JSON.stringify({ id: 'o-1', question: 'What is the capital of France?' })}\n`);
    const r = await docupod(['eval', path.join(root, 'qa-one.jsonl'), '--corpus', mixed, '--off-topic', path.join(root, 'off.jsonl'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ n: 1, recallAt5: 1, abstainRate: 1, offTopic: { n: 1, answered: [] } });
    expect(j.failedFiles).toEqual([expect.objectContaining({ source: 'blank.html', state: 'failed' })]);
    expect(j.failedFiles[0].error).toMatch(/nothing to index/);
    const human = await docupod(['eval', path.join(root, 'qa-one.jsonl'), '--corpus', mixed]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/failed files +1 of 2 \(not scored; --strict fails instead\):\n +blank\.html: /);
    const strict = await docupod(['eval', path.join(root, 'qa-one.jsonl'), '--corpus', mixed, '--strict']);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/1 corpus file\(s\) failed to ingest \(--strict\): blank\.html/);
  });
});

describe('docupod ingest / search / eval --url (remote)', () => {
  let s: TestServer;
  let url: string;
  let key: string;

  beforeAll(async () => {
    s = await startTestServer();
    await s.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
    const admin = await signup(s.app, 'cli@example.com');
    key = (await createKey(s.app, admin, { name: 'cli test' })).key;
  });
  afterAll(async () => s?.close());

  it('ingests with --wait, searches and evaluates through the public API with an API key from the environment', async () => {
    const env = { DOCUPOD_URL: url, DOCUPOD_API_KEY: key, DOCUPOD_DATA_DIR: path.join(root, 'unused') };
    const ing = await docupod(['ingest', path.join(corpus, 'postgres.md'), path.join(corpus, 'notes.txt'), '--workspace', 'remote-docs', '--wait'], env);
    expect(ing.code, ing.stderr).toBe(0);
    expect(ing.stdout).toContain('to workspace remote-docs (new)');
    expect(ing.stdout).toMatch(/^2\/2 indexed/m);

    const r = await docupod(['search', 'pg_dump nightly', '--workspace', 'remote-docs', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).results[0]).toMatchObject({ source: 'postgres.md' });

    writeFileSync(path.join(root, 'qa-remote.jsonl'), [QA[0], QA[2]].map((q) => JSON.stringify(q)).join('\n'));
    const remoteCorpus = path.join(root, 'remote-corpus');
    mkdirSync(remoteCorpus, { recursive: true });
    writeFileSync(path.join(remoteCorpus, 'postgres.md'), FILES['postgres.md']!);
    writeFileSync(path.join(remoteCorpus, 'notes.txt'), FILES['notes.txt']!);
    const ev = await docupod(['eval', path.join(root, 'qa-remote.jsonl'), '--corpus', remoteCorpus, '--json', '--k', '5'], env);
    expect(ev.code, ev.stderr).toBe(0);
    expect(JSON.parse(ev.stdout)).toMatchObject({ n: 2, recallAt5: 1, answerInTop5: 1, k: 5, backend: { url }, workspace: 'eval-remote-corpus', chunkTokens: null });
    // Answers come through /v1/chat/completions (model docupod:{workspace}) with the same API key.
    expect(typeof JSON.parse(ev.stdout).answerHit).toBe('number');
  });

  it('names the fix when the API key is wrong', async () => {
    const r = await docupod(['search', 'x', '--url', url, '--api-key', 'dp_wrong'], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/401.*--api-key/);
  });
});
