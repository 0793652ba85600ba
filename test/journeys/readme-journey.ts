import OpenAI from 'openai';
import { expect } from 'vitest';
import { makePdf } from '../fixtures/ingest/pdf.js';
import { makeDocx } from '../fixtures/ingest/zip.js';

// The README's first journey as a newcomer makes it, over real HTTP against a running docupod (npm start, the
// container image, the split-role stack): first sign-up, a workspace, an upload of Markdown, HTML, PDF and DOCX files
// made here, every one `indexed`, a search that finds a fact, a workspace chat answered with a citation over SSE, the
// official `openai` client streaming from /v1 with an API key, and a prediction under /models.
// Every step asserts on what a person would look at, so a journey that breaks anywhere fails here.

export interface JourneyOptions {
  /** A model the server's models role serves (e.g. the intent classifier); the prediction step needs one. */
  model?: { name: string; text: string; expectIntent: string };
  /** Prints one line per step (the test's log), so a failure shows how far the journey got. */
  log?: (line: string) => void;
  indexTimeoutMs?: number;
}

export interface JourneyResult {
  accessToken: string;
  apiKey: string;
  workspace: { id: string; slug: string };
  documentIds: string[];
  indexMs: number;
}

/** The facts each file carries; the search and the answers are checked against them. */
export const FACTS = {
  md: 'The heron backup job runs every 17 minutes and keeps 9 copies.',
  html: 'The kestrel gateway rotates its TLS certificates every 45 days.',
  pdf: 'The osprey cluster stores its snapshots in the vault bucket for 30 days.',
  docx: 'The plover queue drops messages older than 72 hours.',
};

async function call(base: string, method: string, path: string, opts: { token?: string; json?: unknown; form?: FormData } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, {
    method,
    headers,
    body: opts.form ?? (opts.json !== undefined ? JSON.stringify(opts.json) : undefined),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- checked by the assertions that follow
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, text, headers: res.headers };
}

/** Parses an SSE body into events (event name + JSON data). */
export function parseSse(text: string): Array<{ event: string; data: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const events: Array<{ event: string; data: unknown }> = [];
  for (const block of text.split(/\n\n+/)) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    if (data.length) events.push({ event, data: JSON.parse(data.join('\n')) });
  }
  return events as Array<{ event: string; data: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function readmeJourney(base: string, opts: JourneyOptions = {}): Promise<JourneyResult> {
  const log = opts.log ?? (() => {});
  const url = base.replace(/\/+$/, '');

  const health = await call(url, 'GET', '/readyz');
  expect(health.status, `readyz: ${health.text}`).toBe(200);

  const email = `newcomer-${Date.now()}@example.com`;
  const password = 'correct horse battery staple';
  const signup = await call(url, 'POST', '/api/auth/signup', { json: { email, password, name: 'Newcomer' } });
  expect(signup.status, `sign-up: ${signup.text}`).toBe(201);
  const login = await call(url, 'POST', '/api/auth/login', { json: { email, password } });
  expect(login.status, `login: ${login.text}`).toBe(200);
  const accessToken: string = login.body.accessToken;
  log('signed up and logged in');

  const ws = await call(url, 'POST', '/api/workspaces', { token: accessToken, json: { name: 'Journey' } });
  expect(ws.status, `create workspace: ${ws.text}`).toBe(201);
  const workspace = { id: ws.body.id as string, slug: ws.body.slug as string };

  const form = new FormData();
  form.append('file', new Blob([`# Heron operations\n\n## Backups\n\n${FACTS.md}\n\n## Alerts\n\nAlerts page the on-call engineer.\n`], { type: 'text/markdown' }), 'heron.md');
  form.append(
    'file',
    new Blob([`<!doctype html><html><head><title>Kestrel</title></head><body><h1>Kestrel gateway</h1><h2>Certificates</h2><p>${FACTS.html}</p></body></html>`], { type: 'text/html' }),
    'kestrel.html',
  );
  form.append('file', new Blob([makePdf([{ paragraphs: ['Osprey cluster runbook.'] }, { paragraphs: [FACTS.pdf] }])], { type: 'application/pdf' }), 'osprey.pdf');
  form.append(
    'file',
    new Blob([makeDocx([{ heading: 1, text: 'Plover queue' }, { paragraph: FACTS.docx }])], { type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' }),
    'plover.docx',
  );
  const upload = await call(url, 'POST', `/api/workspaces/${workspace.slug}/documents`, { token: accessToken, form });
  expect(upload.status, `upload: ${upload.text}`).toBe(202);
  const documentIds: string[] = upload.body.documents.map((d: { id: string }) => d.id);
  expect(documentIds).toHaveLength(4);
  log('uploaded Markdown, HTML, PDF and DOCX');

  const t0 = Date.now();
  const deadline = t0 + (opts.indexTimeoutMs ?? 60_000);
  let docs: Array<{ id: string; source: string; state: string; error?: string | null }> = [];
  for (;;) {
    const list = await call(url, 'GET', `/api/workspaces/${workspace.slug}/documents`, { token: accessToken });
    expect(list.status, list.text).toBe(200);
    docs = list.body.documents;
    const failed = docs.filter((d) => d.state === 'failed');
    expect(failed, `documents failed: ${JSON.stringify(failed)}`).toEqual([]);
    if (docs.length === 4 && docs.every((d) => d.state === 'indexed')) break;
    if (Date.now() > deadline) throw new Error(`documents not indexed within ${opts.indexTimeoutMs ?? 60_000} ms: ${JSON.stringify(docs)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const indexMs = Date.now() - t0;
  log(`all 4 documents indexed in ${indexMs} ms`);

  for (const [query, fact] of [
    ['how long are osprey snapshots kept in the vault bucket', FACTS.pdf],
    ['plover queue message age', FACTS.docx],
    ['kestrel TLS certificate rotation', FACTS.html],
  ] as const) {
    const s = await call(url, 'POST', `/api/workspaces/${workspace.slug}/search`, { token: accessToken, json: { query, k: 5 } });
    expect(s.status, s.text).toBe(200);
    expect(s.body.results[0]?.text, `search "${query}": ${s.text.slice(0, 300)}`).toContain(fact);
  }
  log('search finds the facts of the PDF, the DOCX and the HTML');

  const chat = await call(url, 'POST', `/api/workspaces/${workspace.slug}/chats`, { token: accessToken, json: { title: 'journey' } });
  expect(chat.status, chat.text).toBe(201);
  const asked = await call(url, 'POST', `/api/workspaces/${workspace.slug}/chats/${chat.body.id}/messages`, {
    token: accessToken,
    json: { content: 'How often does the heron backup job run?', stream: true },
  });
  expect(asked.status, asked.text).toBe(200);
  expect(asked.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events = parseSse(asked.text);
  expect(events.filter((e) => e.event === 'token').length).toBeGreaterThan(0);
  const final = events.find((e) => e.event === 'final')?.data;
  expect(final, `no final event in: ${asked.text.slice(0, 400)}`).toBeDefined();
  expect(final.answer).toContain('17 minutes');
  expect(final.citations.length).toBeGreaterThan(0);
  expect(final.citations[0]).toMatchObject({ source: 'heron.md' });
  expect(final.answer).toMatch(/\[1\]/);
  log('the workspace chat streams an answer with a citation over SSE');

  const key = await call(url, 'POST', '/api/keys', { token: accessToken, json: { name: 'journey' } });
  expect(key.status, key.text).toBe(201);
  const apiKey: string = key.body.key;
  const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0, timeout: 30_000 });
  const models = await openai.models.list();
  expect(models.data.map((m) => m.id)).toContain(`docupod:${workspace.slug}`);
  const stream = await openai.chat.completions.create({
    model: `docupod:${workspace.slug}`,
    stream: true,
    messages: [{ role: 'user', content: 'How long does the plover queue keep messages?' }],
  });
  let text = '';
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  expect(chunks).toBeGreaterThan(1);
  expect(text).toContain('72 hours');
  log('the official openai client streams an answer from /v1');

  if (opts.model) {
    const p = await call(url, 'POST', `/models/${opts.model.name}/predict`, { token: apiKey, json: { text: opts.model.text } });
    expect(p.status, p.text).toBe(200);
    expect(p.body.intent).toBe(opts.model.expectIntent);
    log(`the ${opts.model.name} model predicts under /models`);
  }
  return { accessToken, apiKey, workspace, documentIds, indexMs };
}
