import { Option, type Command } from 'commander';
import { SearchMode } from '../roles/retrieval/contract.js';
import { evalCommand } from './eval.js';
import { ingestCommand, parseK, parseMode, withBackend, type ConnectionOptions } from './ingest.js';

// `docupod search`, and the registration of the three retrieval commands (ingest, search, eval) on the program.

export interface SearchCommandOptions extends ConnectionOptions {
  k?: string;
  mode?: string;
  json?: boolean;
  source?: string[];
}

const oneLine = (s: string, max: number) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

/** `docupod search "<query>" [--workspace NAME] [--k 10] [--mode lexical|vector|hybrid] [--json]` */
export async function searchCommand(query: string, opts: SearchCommandOptions): Promise<void> {
  const k = parseK(opts.k);
  const mode = parseMode(opts.mode);
  const res = await withBackend(opts, async (backend) => {
    const ws = await backend.workspace(opts.workspace ?? 'default', false);
    return backend.search(ws, { query, k, ...(mode ? { mode } : {}), ...(opts.source?.length ? { sources: opts.source } : {}) });
  });
  if (opts.json) {
    console.log(JSON.stringify(res));
    return;
  }
  if (res.results.length === 0) {
    console.log(`no results (${res.mode}, ${res.tookMs} ms)`);
    return;
  }
  const width = Math.max(60, Math.min(process.stdout.columns ?? 100, 160) - 6);
  res.results.forEach((r, i) => {
    const where = [r.source, ...r.headingPath.filter((h) => h !== r.title)].join(' › ');
    console.log(`${String(i + 1).padStart(2)}. ${oneLine(where, width)}  (score ${r.score.toFixed(3)}${r.page ? `, page ${r.page}` : ''})`);
    console.log(`    ${oneLine(r.text, width * 2)}`);
  });
  console.log(`${res.results.length} result(s), ${res.mode}, ${res.tookMs} ms`);
}

const remoteOptions = (c: Command) =>
  c
    .option('--url <url>', 'a docupod server to use instead of the local data directory’s (env DOCUPOD_URL)')
    .option('--api-key <key>', 'API key for --url (env DOCUPOD_API_KEY)');

export function registerSearchCommands(program: Command): void {
  remoteOptions(
    program
      .command('ingest')
      .description('add files, directories or globs to a workspace (created if missing); without a running server: waits until indexed')
      .argument('<paths...>', 'files, directories (walked for PDF, DOCX, HTML, Markdown, text, CSV) or globs such as "docs/**/*.md"')
      .option('--workspace <name>', 'workspace slug, id or name', 'default')
      .option('--wait', 'with a running server (found from the data directory, or --url): wait until every document is indexed or failed')
      .option('--json', 'print one JSON object when done'),
  ).action(ingestCommand);

  remoteOptions(
    program
      .command('search')
      .description('search a workspace’s indexed chunks')
      .argument('<query>', 'what to look for')
      .option('--workspace <name>', 'workspace slug, id or name', 'default')
      .option('--k <n>', 'number of results (1–100)', '10')
      .addOption(new Option('--mode <mode>', 'ranking; default hybrid with an embedder, lexical otherwise').choices(SearchMode.options))
      .option('--source <glob...>', 'only documents whose source matches (repeatable)')
      .option('--json', 'print the response as JSON'),
  ).action(searchCommand);

  remoteOptions(
    program
      .command('eval')
      .description('retrieval quality on a question set: recall@5, MRR@10, answer in top-5 chunks, latency')
      .argument('<qa.jsonl>', 'questions: {id, question, relevant: [file…], answer} per line')
      .requiredOption('--corpus <dir>', 'the documents the questions are about (a directory, or a glob such as "dir/*.html"); ingested into a scratch workspace, or reused')
      .option('--workspace <name>', 'scratch workspace (default: eval-<corpus directory>-<chunk tokens>t)')
      .option('--k <n>', 'chunks retrieved per question (1–100)', '10')
      .addOption(new Option('--mode <mode>', 'ranking; default hybrid with an embedder, lexical otherwise').choices(SearchMode.options))
      .option('--fresh', 'delete the scratch workspace’s documents first and ingest again')
      .option('--details', 'print every question with the rank of its first relevant file and answer chunk')
      .option('--off-topic <jsonl>', 'questions the corpus does not answer ({id, question} per line): reports the share answered with "The documents don\'t say"')
      .option('--strict', 'fail when any corpus file fails to ingest (default: report those files and score the rest)')
      .option('--json', 'print one JSON object'),
  ).action(evalCommand);
}
