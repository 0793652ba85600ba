import type { Command } from 'commander';
import type { AnswerResult } from '../roles/chat/contract.js';
import { withBackend } from './ingest.js';

// `docupod ask "<question>" [--workspace NAME] [--json]`: one grounded answer with numbered citations, asked in a
// workspace chat through the API: of the server owning the local data directory, one this command starts on it, or
// a server given with --url/--api-key (see local-server.ts).

interface AskOptions {
  workspace?: string;
  json?: boolean;
  url?: string;
  apiKey?: string;
}

export async function askCommand(question: string, opts: AskOptions): Promise<void> {
  const wsName = opts.workspace ?? 'default';
  // Tokens go to the terminal as they arrive; with --json only the final object is printed.
  const onToken = opts.json ? () => {} : (t: string) => process.stdout.write(t);
  const result: AnswerResult = await withBackend(opts, async (backend) => backend.ask(await backend.workspace(wsName, false), question, onToken));
  if (opts.json) {
    console.log(JSON.stringify({ answer: result.answer, citations: result.citations, usage: result.usage, model: result.model, query: result.trace.query, relevant: result.trace.relevant }));
    return;
  }
  process.stdout.write('\n');
  if (result.citations.length > 0) {
    console.log('\nSources:');
    for (const c of result.citations) {
      const where = [c.source, c.heading && c.heading !== c.title ? c.heading : '', c.page ? `page ${c.page}` : ''].filter(Boolean).join(' › ');
      console.log(`  [${c.n}] ${where}\n      “${c.quote.length > 200 ? `${c.quote.slice(0, 199)}…` : c.quote}”`);
    }
  }
}

export function registerAskCommand(program: Command): void {
  program
    .command('ask')
    .description('answer a question from a workspace’s documents, with numbered citations')
    .argument('<question>', 'the question, in quotes')
    .option('--workspace <name>', 'workspace slug, id or name', 'default')
    .option('--json', 'print one JSON object: answer, citations, usage')
    .option('--url <url>', 'a docupod server to use instead of the local data directory’s (env DOCUPOD_URL)')
    .option('--api-key <key>', 'API key for --url (env DOCUPOD_API_KEY)')
    .action(askCommand);
}
