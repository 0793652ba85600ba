import { CLI_USER } from './ingest.js';
import type { Command } from 'commander';
import pino from 'pino';
import { loadConfig } from '../config/schema.js';
import { readEnv } from '../config/env.js';
import { M } from '../modules/graph.js';
import { startRuntime } from '../modules/runtime.js';
import { createMetricsRegistry } from '../observability/metrics.js';
import type { AnswerResult, ChatClient } from '../roles/chat/contract.js';
import { WorkspacesRepo, isUuid } from '../roles/gateway/workspaces/repository.js';
import { slugify } from '../roles/gateway/workspaces/service.js';
import type { Database } from '../storage/database.js';

// `docupod ask "<question>" [--workspace NAME] [--json]`: one grounded answer with numbered citations, from the local
// data directory (the chat and retrieval roles in this process, no server) or from a server with --url/--api-key.

interface AskOptions {
  workspace?: string;
  json?: boolean;
  url?: string;
  apiKey?: string;
}


async function askEmbedded(question: string, wsName: string, onToken: (t: string) => void): Promise<AnswerResult> {
  const env = readEnv();
  env.DOCUPOD_ROLE = 'retrieval,chat';
  const config = loadConfig(env);
  const log = pino({ level: env.DOCUPOD_LOG_LEVEL ? config.log.level : 'error', base: { role: 'cli' } }, pino.destination(2));
  const runtime = await startRuntime(config, log, { metrics: createMetricsRegistry({ defaultMetrics: false }) });
  try {
    const db = runtime.get<Database>(M.db).db;
    const repo = new WorkspacesRepo(db);
    const ws = (await repo.byRef(wsName)) ?? (isUuid(wsName) ? undefined : await repo.byRef(slugify(wsName)));
    if (!ws) throw new Error(`no workspace "${wsName}" in ${config.storage.databaseUrl ? 'the database' : config.storage.dataDir}; ingest something into it first (docupod ingest <files> --workspace ${wsName})`);
    const chat = runtime.get<ChatClient>(M.chat);
    for await (const ev of chat.stream('answer', { workspaceId: ws.id, userId: CLI_USER, messages: [{ role: 'user', content: question }] })) {
      if (ev.type === 'token') onToken(ev.text);
      else if (ev.type === 'error') throw new Error(ev.problem.detail);
      else return ev.result as AnswerResult;
    }
    throw new Error('the answer ended without a result');
  } finally {
    await runtime.stop();
  }
}

async function askRemote(question: string, wsName: string, url: string, apiKey: string, onToken: (t: string) => void): Promise<AnswerResult> {
  const base = url.replace(/\/+$/, '');
  const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
  const call = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) }).catch((err: Error) => {
      throw new Error(`cannot reach ${base}: ${(err.cause as Error | undefined)?.message ?? err.message}`);
    });
    if (!res.ok) {
      const p = (await res.json().catch(() => ({}))) as { detail?: string };
      throw new Error(`${path}: ${res.status} ${p.detail ?? res.statusText}${res.status === 401 ? ' (check --api-key / DOCUPOD_API_KEY)' : ''}`);
    }
    return res;
  };
  const ws = encodeURIComponent(isUuid(wsName) ? wsName : slugify(wsName));
  const chat = (await (await call(`/api/workspaces/${ws}/chats`, { title: question.slice(0, 80) })).json()) as { id: string };
  const res = await call(`/api/workspaces/${ws}/chats/${chat.id}/messages`, { content: question, stream: true });
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const event = /^event: (\w+)/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!event || !data) continue;
      const parsed = JSON.parse(data) as { text?: string; detail?: string } & AnswerResult;
      if (event === 'token') onToken(parsed.text ?? '');
      else if (event === 'error') throw new Error(parsed.detail ?? 'the answer failed');
      else if (event === 'final') return parsed;
    }
  }
  throw new Error('the server ended the answer without a result');
}

export async function askCommand(question: string, opts: AskOptions): Promise<void> {
  const wsName = opts.workspace ?? 'default';
  const url = opts.url ?? process.env.DOCUPOD_URL;
  // Tokens go to the terminal as they arrive; with --json only the final object is printed.
  const onToken = opts.json ? () => {} : (t: string) => process.stdout.write(t);
  let result: AnswerResult;
  if (url) {
    const key = opts.apiKey ?? process.env.DOCUPOD_API_KEY;
    if (!key) throw new Error('--url needs an API key: pass --api-key or set DOCUPOD_API_KEY (create one with `docupod apikey create`)');
    result = await askRemote(question, wsName, url, key, onToken);
  } else {
    result = await askEmbedded(question, wsName, onToken);
  }
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
    .option('--url <url>', 'a docupod server to use instead of the local data directory (env DOCUPOD_URL)')
    .option('--api-key <key>', 'API key for --url (env DOCUPOD_API_KEY)')
    .action(askCommand);
}
