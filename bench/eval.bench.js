// `npm run bench -- eval`: retrieval quality of `docupod eval` (lexical only) against plain BM25 (MiniSearch with its
// defaults) over the SAME chunks, scored by the same metric code (dist/cli/eval.js), printed side by side as ratios.
//
// 1. Runs the built CLI: `docupod eval <qa> --corpus <corpus> --mode lexical --json` on a fresh data directory.
// 2. Reads the chunks docupod stored for that workspace and indexes exactly those texts in MiniSearch.
// 3. Asks MiniSearch every question and scores its top k with scoreQuestion/summarize.
//
// Settings (environment): EVAL_QA (question file; default shared/eval/debian-reference-qa.jsonl next to the repo),
// EVAL_CORPUS (default "/usr/share/debian-reference/*.html", the Debian Reference HTML as shared/eval/README.md says),
// EVAL_K (default 10), EVAL_DATA_DIR (reuse a data directory between runs; default a fresh temporary one), and any
// DOCUPOD_* variable, e.g. DOCUPOD_CHUNK_TOKENS=384 to compare chunk sizes.
// Goal (issue 4): docupod lexical-only beats BM25 on recall@5, MRR@10 and answer-in-top-5.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import MiniSearch from 'minisearch';

const run = promisify(execFile);
const BIN = path.resolve('bin/docupod.js');

function defaultQa() {
  // shared/ sits beside the repository (set EVAL_QA to use another question set).
  const p = '../shared/eval/debian-reference-qa.jsonl';
  return existsSync(p) ? path.resolve(p) : undefined;
}

/** Follow-up decisions on eval/conversations.jsonl (no corpus needed): printed against issue 16's goal. */
async function followUps() {
  const { readConversations, scoreFollowUps } = await import(path.resolve('dist/cli/eval-sets.js'));
  const { accuracy, n, rows } = scoreFollowUps(readConversations(path.resolve('eval/conversations.jsonl')));
  console.log(`follow-up decision accuracy: ${accuracy.toFixed(3)} (n=${n} turns; goal ≥ 0.95: ${accuracy >= 0.95 ? 'met' : 'NOT met'})`);
  if (process.env.EVAL_VERBOSE) for (const r of rows.filter((x) => x.expected !== x.got)) console.log(`  wrong ${r.id} (${r.expected ? 'follow-up' : 'new'}): ${r.q}`);
}

export async function runBench() {
  await followUps();
  const qa = process.env.EVAL_QA ?? defaultQa();
  const corpus = process.env.EVAL_CORPUS ?? '/usr/share/debian-reference/*.html';
  const k = Number(process.env.EVAL_K ?? 10);
  if (!qa || !existsSync(qa)) {
    console.log('skipped: no question file (set EVAL_QA to shared/eval/debian-reference-qa.jsonl)');
    return;
  }
  if (!existsSync('/usr/share/debian-reference') && !process.env.EVAL_CORPUS) {
    console.log('skipped: the corpus is missing (apt-get install -y debian-reference-en, or set EVAL_CORPUS)');
    return;
  }
  const fresh = !process.env.EVAL_DATA_DIR;
  const dataDir = process.env.EVAL_DATA_DIR ?? mkdtempSync(path.join(tmpdir(), 'docupod-eval-'));
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith('DOCUPOD_') || key === 'PATH')), DOCUPOD_DATA_DIR: dataDir };
  delete env.DOCUPOD_URL;
  try {
    const t0 = performance.now();
    const { stdout } = await run(process.execPath, [BIN, 'eval', qa, '--corpus', corpus, '--mode', 'lexical', '--k', String(k), '--off-topic', path.resolve('eval/off-topic.jsonl'), '--json'], { env, maxBuffer: 64 * 1024 * 1024 });
    const ours = JSON.parse(stdout);
    const evalSeconds = (performance.now() - t0) / 1000;

    // The same chunks, straight from the index docupod built.
    const { openDatabase, rowsOf } = await import(path.resolve('dist/storage/database.js'));
    const { sql } = await import('drizzle-orm');
    const { readQuestions, scoreQuestion, summarize, summarizeByKind, percentile } = await import(path.resolve('dist/cli/eval.js'));
    const database = await openDatabase({ dataDir });
    let rows;
    try {
      rows = rowsOf(
        await database.db.execute(sql`select c.id, d.source, d.title, c.heading_path, c.text from chunks c
          join documents d on d.id = c.document_id and d.state = 'indexed'
          join workspaces w on w.id = c.workspace_id where w.slug = ${ours.workspace} order by d.source, c.idx`),
      );
    } finally {
      await database.close();
    }
    const questions = readQuestions(qa);
    const byId = new Map(rows.map((r) => [r.id, r]));

    const reference = (fields) => {
      const ms = new MiniSearch({ fields, idField: 'id' });
      ms.addAll(rows.map((r) => ({ id: r.id, text: r.text, headings: [r.title ?? '', ...(r.heading_path ?? [])].join(' ') })));
      const latencies = [];
      const scores = questions.map((q) => {
        const t = performance.now();
        const hits = ms.search(q.question).slice(0, k);
        latencies.push(performance.now() - t);
        return scoreQuestion(q, hits.map((h) => byId.get(h.id)));
      });
      return { ...summarize(scores), byKind: summarizeByKind(questions, scores), searchP50Ms: percentile(latencies, 50), searchP99Ms: percentile(latencies, 99), questions: scores };
    };
    const plain = reference(['text']);
    const withHeadings = reference(['headings', 'text']);

    const f = (x) => (typeof x === 'number' ? x.toFixed(3) : String(x));
    const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(3)}×` : 'n/a');
    const row = (name, key) => console.log(`${name.padEnd(18)} ${f(ours[key]).padStart(8)} ${f(plain[key]).padStart(12)} ${ratio(ours[key], plain[key]).padStart(8)} ${f(withHeadings[key]).padStart(14)} ${ratio(ours[key], withHeadings[key]).padStart(8)}`);
    console.log(`corpus ${ours.corpus.dir} ${corpus === ours.corpus.dir ? '' : `(${corpus}) `}— ${ours.corpus.files} files` +
      `${ours.corpus.package ? `, ${ours.corpus.package} ${ours.corpus.version}` : ''}; ${rows.length} chunks (≤${ours.chunkTokens} tokens, overlap ${ours.chunkOverlap}); n=${ours.n} questions; k=${k}`);
    console.log(`${'metric'.padEnd(18)} ${'docupod'.padStart(8)} ${'BM25 text'.padStart(12)} ${'ratio'.padStart(8)} ${'BM25 +heads'.padStart(14)} ${'ratio'.padStart(8)}`);
    row('recall@5', 'recallAt5');
    row('MRR@10', 'mrrAt10');
    row('nDCG@10', 'ndcgAt10');
    row('answer in top-5', 'answerInTop5');
    // Per question kind (shared/eval/README.md's `kind`): docupod's figures, then plain BM25's.
    for (const [kind, m] of Object.entries(ours.byKind ?? {})) {
      const b = plain.byKind[kind];
      console.log(`  kind ${kind.padEnd(8)} n=${String(m.n).padEnd(3)} recall@5 ${f(m.recallAt5)} (${f(b?.recallAt5)})  MRR@10 ${f(m.mrrAt10)} (${f(b?.mrrAt10)})  nDCG@10 ${f(m.ndcgAt10)} (${f(b?.ndcgAt10)})  top-5 ${f(m.answerInTop5)} (${f(b?.answerInTop5)})  hit ${f(m.answerHit)}`);
    }
    console.log(`${'search p50 ms'.padEnd(18)} ${f(ours.searchP50Ms).padStart(8)} ${f(plain.searchP50Ms).padStart(12)}`);
    console.log(`${'search p99 ms'.padEnd(18)} ${f(ours.searchP99Ms).padStart(8)} ${f(plain.searchP99Ms).padStart(12)}`);
    console.log(`answer-phrase hit: ${ours.answerHit ?? 'n/a'} (goal ≥ 0.70; ${ours.answerHit >= 0.7 ? 'met' : 'NOT met'}; 0.600 before issue 16)`);
    console.log(`abstained on off-topic: ${ours.abstainRate ?? 'n/a'} (n=${ours.offTopic?.n ?? 0}; goal ≥ 0.90: ${ours.abstainRate >= 0.9 ? 'met' : 'NOT met'})`);
    if (ours.failedFiles?.length) console.log(`failed corpus files (not scored): ${ours.failedFiles.map((f) => f.source).join(', ')}`);
    const beats = ['recallAt5', 'mrrAt10', 'answerInTop5'].every((m) => ours[m] > plain[m]);
    console.log(`goal (beat plain BM25 on all three): ${beats ? 'met' : 'NOT met'}; docupod eval took ${evalSeconds.toFixed(1)} s incl. ingestion`);
    if (process.env.EVAL_VERBOSE) {
      for (let i = 0; i < questions.length; i++) {
        const a = ours.questions[i];
        const b = plain.questions[i];
        console.log(`  ${a.id} docupod file ${a.fileRank ?? '-'} answer ${a.answerRank ?? '-'} | bm25 file ${b.fileRank ?? '-'} answer ${b.answerRank ?? '-'}  ${questions[i].question}`);
      }
    }
  } finally {
    if (fresh) rmSync(dataDir, { recursive: true, force: true });
  }
}

export { runBench as run };
