import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { k8sTools, run } from '../deploy/tools.js';
import { writeTinyBert } from '../fixtures/tiny-bert.js';
import { readmeJourney } from '../journeys/readme-journey.js';
import { scratchDir, tailLogs } from './helpers.js';
// @ts-expect-error -- a plain ESM script (deploy/local/stack.mjs), no type declarations
import { alive, missingBinaries, nginxLocations, readRoutes } from '../../deploy/local/stack.mjs';
import { exportedSeriesNames, shippedExpressions, unknownMetrics } from './promql.js';

// The Kubernetes topology on one machine, as `npm run stack` starts it: every role its own process (two ingest, two
// chat) on a throwaway PostgreSQL 15, nginx in front, Prometheus scraping. The README journey runs through nginx
// only; then Prometheus must show every target up, and the stack must stop cleanly. The script is spawned exactly as
// package.json's "stack" script runs it (after the build, which `npm test` has done).

const ROOT = path.resolve(import.meta.dirname, '../..');
const CHART = path.join(ROOT, 'deploy/helm/docupod');
const stackScript = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.stack!;
const missing: string[] = missingBinaries();
if (missing.length && process.env.CI === 'true') throw new Error(`the stack test needs ${missing.join(', ')}: run .ci/run (it installs them)`);
if (missing.length) console.warn(`test/stack: SKIPPED, missing ${missing.join(', ')} (apt-get install postgresql-15 nginx prometheus; CI fails instead)`);

interface StackState { url: string; prometheusUrl: string; startMs: number; processes: Array<{ name: string; pid: number }>; pgData: string; ports: Record<string, { http: number; metrics: number }> }

describe('the routing table', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered Kubernetes objects, checked field by field
  const render = (args: string[]): any[] => {
    const r = run(k8sTools().helm, ['template', 'rel', CHART, ...args]);
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.split(/^---$/m).map((d) => parseYaml(d)).filter(Boolean);
  };

  it('the chart Ingress routes exactly the paths routes.json gives the stack’s nginx', () => {
    const routes = readRoutes();
    const objs = render(['--set', 'mode=distributed', '--set', 'ingress.enabled=true', '--set', 'postgres.enabled=true']);
    const ingress = objs.find((o) => o.kind === 'Ingress');
    const rendered = ingress.spec.rules[0].http.paths.map((p: { path: string; pathType: string; backend: { service: { name: string } } }) => ({
      path: p.path,
      type: p.pathType,
      component: p.backend.service.name.replace(/^rel-docupod-/, ''),
    }));
    expect(rendered).toEqual(routes.ingress);
    // and nginx gets a location for each (Prefix: the path itself and what is under it)
    const locations = nginxLocations(routes).join('\n');
    for (const r of routes.ingress) expect(locations).toContain(r.type === 'Exact' ? `location = ${r.path} { proxy_pass http://${r.component}; }` : `location ${r.path === '/' ? '/' : `${r.path}/`} { proxy_pass http://${r.component}; }`);
  });

  it('the chart HTTPRoute (Gateway API) routes the same table', () => {
    const routes = readRoutes();
    const objs = render(['-f', path.join(ROOT, 'test/deploy/values/httproute.yaml')]);
    const route = objs.find((o) => o.kind === 'HTTPRoute');
    const rendered = route.spec.rules.flatMap((r: { matches: Array<{ path: { type: string; value: string } }>; backendRefs: Array<{ name: string }> }) =>
      r.matches.map((m) => ({ path: m.path.value, type: m.path.type === 'PathPrefix' ? 'Prefix' : m.path.type, component: r.backendRefs[0]!.name.replace(/^rel-docupod-/, '') })),
    );
    expect(rendered).toEqual(routes.ingress);
  });

  it('the chart ServiceMonitor scrapes the components, port and path the stack’s Prometheus does', () => {
    const { scrape } = readRoutes();
    const objs = render(['--set', 'monitoring.enabled=true']);
    const sm = objs.find((o) => o.kind === 'ServiceMonitor');
    expect(sm.spec.selector.matchExpressions[0].values).toEqual(scrape.components);
    expect(sm.spec.endpoints[0]).toMatchObject({ port: scrape.port, path: scrape.path, authorization: { type: 'Bearer' } });
  });
});

interface RunningStack { child: ChildProcess; dir: string; state: StackState; output: () => string }
const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;
const exited = (child: ChildProcess) => new Promise<void>((resolve) => (running(child) ? child.once('exit', () => resolve()) : resolve()));

/** Runs package.json's "stack" script (minus its build step, which `npm test` has done) and waits for its URL. */
async function startStack(dir: string, env: NodeJS.ProcessEnv = {}): Promise<RunningStack> {
  const script = stackScript.replace(/^npm run build --silent && /, '');
  expect(script).toMatch(/^node deploy\/local\/stack\.mjs$/);
  // Inference stays `authenticated`: the models process shares DATABASE_URL, so it checks the journey's API key itself.
  // Spawned without a shell, so the signals below reach the script itself.
  const child = spawn(process.execPath, ['deploy/local/stack.mjs', '--dir', dir, '--scrape-interval', '1s'], { cwd: ROOT, env: { ...process.env, ...env } });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const end = Date.now() + 60_000;
  while (!/^docupod: http/m.test(output)) {
    if (!running(child)) throw new Error(`npm run stack exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > end) throw new Error(`npm run stack did not print its URL within 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const state = JSON.parse(readFileSync(path.join(dir, 'stack.json'), 'utf8')) as StackState;
  return { child, dir, state, output: () => output };
}

async function cleanUp(stack: RunningStack | undefined, dir: string) {
  if (stack && running(stack.child)) {
    stack.child.kill('SIGKILL');
    await exited(stack.child);
  }
  spawnSync(process.execPath, ['deploy/local/stack.mjs', '--down', '--dir', dir], { cwd: ROOT });
  rmSync(path.dirname(dir), { recursive: true, force: true });
}

describe.skipIf(missing.length > 0)('npm run stack', () => {
  let dir: string;
  let stack: RunningStack;
  let child: ChildProcess;
  let state: StackState;
  let journey: Awaited<ReturnType<typeof readmeJourney>> | undefined;
  const stackExited = () => exited(child);

  beforeAll(async () => {
    expect(existsSync(path.join(ROOT, 'dist/main.js')), 'dist/ is missing: run `npm run build` (npm test does)').toBe(true);
    dir = scratchDir();
    stack = await startStack(dir);
    ({ child, state } = stack);
    console.log(`stack up in ${state.startMs} ms at ${state.url}`);
  }, 90_000);

  afterAll(() => dir && cleanUp(stack, dir), 60_000);

  it('runs every role as its own process, two ingest and two chat, all on 127.0.0.1 only', () => {
    expect(state.processes.map((p) => p.name).sort()).toEqual(['chat-1', 'chat-2', 'gateway', 'ingest-1', 'ingest-2', 'models', 'nginx', 'prometheus', 'retrieval', 'web'].sort());
    for (const p of state.processes) expect(alive(p.pid), p.name).toBe(true);
    const ss = spawnSync('ss', ['-Hltnp'], { encoding: 'utf8' });
    if (ss.status === 0) {
      const ours = new Set(state.processes.map((p) => p.pid));
      const exposed = ss.stdout.split('\n').filter((l) => [...l.matchAll(/pid=(\d+)/g)].some((m) => ours.has(Number(m[1]))) && !/\s127\.0\.0\.1:\d+\s/.test(l));
      expect(exposed, 'sockets of the stack beyond 127.0.0.1').toEqual([]);
    }
  });

  it('carries the README journey through nginx, then Prometheus shows every target up', async () => {
    const lines: string[] = [];
    const result = await readmeJourney(state.url, {
      log: (l) => lines.push(l),
      model: { name: 'intent-classifier', text: 'I forgot my password', expectIntent: 'reset_password' },
    }).catch((err: Error) => {
      throw new Error(`${err.message}\njourney so far: ${lines.join(' / ')}\n${tailLogs(dir)}`);
    });
    console.log(`journey through nginx: ${lines.join(' / ')}; upload to indexed ${result.indexMs} ms`);
    journey = result;

    // First token through nginx, measured on its own (the journey reads whole bodies).
    const chat = await fetch(`${state.url}/api/workspaces/${result.workspace.slug}/chats`, {
      method: 'POST',
      headers: { authorization: `Bearer ${result.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'first token' }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    const t0 = Date.now();
    const res = await fetch(`${state.url}/api/workspaces/${result.workspace.slug}/chats/${chat.id}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${result.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'How often does the heron backup job run?', stream: true }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let seen = '';
    let firstTokenMs = -1;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += Buffer.from(value).toString();
      if (firstTokenMs < 0 && seen.includes('event: token')) firstTokenMs = Date.now() - t0;
    }
    expect(firstTokenMs).toBeGreaterThanOrEqual(0);
    expect(seen).toContain('17 minutes');
    console.log(`first token through nginx: ${firstTokenMs} ms`);

    // The gateway reaches the two chat processes through the internal nginx upstream: both served the journey.
    for (const name of ['chat-1', 'chat-2']) expect(readFileSync(path.join(dir, 'logs', `${name}.log`), 'utf8'), `${name} served no chat`).toMatch(/"route":"\/internal\/chat\//);

    // Every target the ServiceMonitor's components give this topology, up (scrape interval 1 s).
    const expected = readRoutes().scrape.components.filter((c: string) => c !== 'server');
    let targets: Array<{ labels: { job: string }; health: string; lastError: string }> = [];
    const end = Date.now() + 15_000;
    for (;;) {
      const body = (await fetch(`${state.prometheusUrl}/api/v1/targets`).then((r) => r.json())) as { data: { activeTargets: typeof targets } };
      targets = body.data.activeTargets;
      if (targets.length === 8 && targets.every((t) => t.health === 'up')) break;
      if (Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(targets.map((t) => `${t.labels.job} ${t.health} ${t.lastError}`).sort()).toEqual(
      ['chat', 'chat', 'gateway', 'ingest', 'ingest', 'models', 'retrieval', 'web'].map((j) => `${j} up `),
    );
    expect([...new Set(targets.map((t) => t.labels.job))].sort()).toEqual([...expected].sort());
  }, 120_000);

  /** Prometheus's instant query API: the result vector as `labels → value` lines. */
  const promQuery = async (query: string) => {
    const body = (await fetch(`${state.prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`).then((r) => r.json())) as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    expect(body.status, `${query}: ${body.error}`).toBe('success');
    return body.data.result;
  };

  it('after the journey, Prometheus holds samples of the RAG metrics from the roles that make them, and evaluates every shipped rule', async () => {
    expect(journey, 'the journey test ran first').toBeDefined();
    // This stack has no embedder, so its searches are lexical (the embedder stack below checks vector's samples).
    // Each check: a query, what its samples must show. Scraped every second; the searches above need a scrape or two.
    const checks: Array<[string, string, (rows: Awaited<ReturnType<typeof promQuery>>) => string]> = [
      ['retrieval latency by mode', 'sum by (job, mode) (docupod_retrieval_seconds_count) > 0', (rows) => rows.map((r) => `${r.metric.job} ${r.metric.mode}`).sort().join(', ')],
      ['time to first token', 'sum by (job) (docupod_llm_time_to_first_token_seconds_count) > 0', (rows) => rows.map((r) => r.metric.job).join(', ')],
      // The extractive answerer runs no model and counts no tokens: its series are there, at 0 (a model's would grow).
      ['tokens', 'sum by (job, direction) (docupod_llm_tokens_total{provider="extractive"}) == 0', (rows) => rows.map((r) => `${r.metric.job} ${r.metric.direction}`).sort().join(', ')],
      // Every ingest process reports the depth of the shared queue (0 now: everything is indexed).
      ['ingestion queue depth', 'count by (job, instance) (docupod_jobs_queue_depth{state="queued"})', (rows) => `${rows.length} ingest targets, ${rows.map((r) => r.metric.job).join(', ')}`],
      ['ingestion step durations by state', 'sum by (job, state) (docupod_ingest_step_seconds_count) > 0', (rows) => rows.map((r) => `${r.metric.job} ${r.metric.state}`).sort().join(', ')],
      ['job run durations', 'sum by (job, outcome) (docupod_jobs_run_seconds_count) > 0', (rows) => rows.map((r) => `${r.metric.job} ${r.metric.outcome}`).sort().join(', ')],
      // The chart's recording rule, evaluated by this Prometheus over the stack's namespace label.
      ['recorded retrieval p99', 'count by (mode) (docupod:retrieval_seconds:p99_5m{namespace="docupod-stack"})', (rows) => rows.map((r) => r.metric.mode).sort().join(', ')],
    ];
    const want: Record<string, string> = {
      'retrieval latency by mode': 'retrieval lexical',
      'time to first token': 'chat',
      tokens: 'chat completion, chat prompt',
      'ingestion queue depth': '2 ingest targets, ingest, ingest',
      'ingestion step durations by state': 'ingest chunking, ingest indexing, ingest parsing',
      'job run durations': 'ingest done',
      'recorded retrieval p99': 'lexical',
    };
    let seen: Record<string, string> = {};
    const end = Date.now() + 15_000;
    for (;;) {
      seen = Object.fromEntries(await Promise.all(checks.map(async ([name, q, show]) => [name, show(await promQuery(q))] as const)));
      if (Object.entries(want).every(([k, v]) => seen[k] === v) || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(seen).toEqual(want);

    // Every rule of the chart loaded and evaluated without error (Prometheus's own parser and evaluator).
    const rules = (await fetch(`${state.prometheusUrl}/api/v1/rules`).then((r) => r.json())) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).toEqual(shippedExpressions().filter((e) => e.where.startsWith('rules/')).map((e) => e.where.replace(/^.*: /, '')).sort());
    expect(loaded.filter((r) => r.health !== 'ok').map((r) => `${r.name} ${r.health} ${r.lastError}`)).toEqual([]);
  }, 60_000);

  it('every metric the shipped dashboards and rules select is one the running roles export (or a recording rule makes)', async () => {
    // Each process's own /metrics (metrics port, bearer token), not Prometheus's name list: a family declared but
    // never observed yet (an error counter) has no stored series, yet a dashboard may rightly select it.
    const token = readFileSync(path.join(dir, 'secrets/metrics-token'), 'utf8');
    const exported = new Set<string>();
    for (const [name, { metrics }] of Object.entries(state.ports)) {
      const res = await fetch(`http://127.0.0.1:${metrics}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status, name).toBe(200);
      for (const n of exportedSeriesNames(await res.text())) exported.add(n);
    }
    const expressions = shippedExpressions();
    expect(expressions.length).toBeGreaterThan(0);
    expect(unknownMetrics(expressions, exported)).toEqual([]);
  });

  it('a stack left behind (the script killed) is cleaned up by --down: every process and the cluster stopped', async () => {
    child.kill('SIGKILL');
    await stackExited();
    for (const p of state.processes) expect(alive(p.pid), `${p.name} survives its script until --down`).toBe(true);
    const r = spawnSync(process.execPath, ['deploy/local/stack.mjs', '--down', '--dir', dir], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    for (const p of state.processes) expect(alive(p.pid), `${p.name} after --down`).toBe(false);
    expect(existsSync(path.join(state.pgData, 'postmaster.pid')), 'postgres still running').toBe(false);
    expect(existsSync(dir)).toBe(false);
    await expect(fetch(state.url, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
  }, 60_000);
});

describe.skipIf(missing.length > 0)('npm run stack with an embedder, then Ctrl-C', () => {
  let dir: string | undefined;
  let stack: RunningStack | undefined;
  afterAll(() => dir && cleanUp(stack, dir), 60_000);

  it('vector search runs on the real server\'s pgvector through nginx; SIGINT then stops every process and the cluster', async () => {
    // A tiny transformers.js BERT the test writes (no download): ingest embeds chunks with it, retrieval the query.
    dir = scratchDir();
    const modelDir = await writeTinyBert(path.dirname(dir));
    stack = await startStack(dir, { DOCUPOD_EMBED_PROVIDER: 'transformers', DOCUPOD_EMBED_MODEL: modelDir });
    const { child, state } = stack;
    const api = async (method: string, route: string, opts: { token?: string; json?: unknown; form?: FormData } = {}) => {
      const res = await fetch(state.url + route, {
        method,
        headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.json ? { 'content-type': 'application/json' } : {}) },
        body: opts.form ?? (opts.json ? JSON.stringify(opts.json) : undefined),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      return { status: res.status, text, body: JSON.parse(text || 'null') };
    };
    const email = `vector-${Date.now()}@example.com`;
    expect((await api('POST', '/api/auth/signup', { json: { email, password: 'correct horse battery staple', name: 'V' } })).status).toBe(201);
    const token = (await api('POST', '/api/auth/login', { json: { email, password: 'correct horse battery staple' } })).body.accessToken as string;
    const ws = await api('POST', '/api/workspaces', { token, json: { name: 'Vectors' } });
    expect(ws.status, ws.text).toBe(201);
    const form = new FormData();
    form.append('file', new Blob(['# Cats\n\nThe cat sat on the mat.\n'], { type: 'text/markdown' }), 'cat.md');
    form.append('file', new Blob(['# Greetings\n\nHello world!\n'], { type: 'text/markdown' }), 'hello.md');
    const up = await api('POST', `/api/workspaces/${ws.body.slug}/documents`, { token, form });
    expect(up.status, up.text).toBe(202);
    const end = Date.now() + 30_000;
    for (;;) {
      const docs = (await api('GET', `/api/workspaces/${ws.body.slug}/documents`, { token })).body.documents as Array<{ state: string }>;
      expect(docs.filter((d) => d.state === 'failed')).toEqual([]);
      if (docs.length === 2 && docs.every((d) => d.state === 'indexed')) break;
      if (Date.now() > end) throw new Error(`not indexed: ${JSON.stringify(docs)}\n${tailLogs(dir)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const s = await api('POST', `/api/workspaces/${ws.body.slug}/search`, { token, json: { query: 'the cat sat', mode: 'vector', k: 5 } });
    expect(s.status, s.text).toBe(200);
    expect(s.body.mode).toBe('vector');
    expect(s.body.results.length, s.text).toBe(2); // both chunks have vectors; lexical would find only the cat
    expect(s.body.results.map((r: { source: string }) => r.source).sort()).toEqual(['cat.md', 'hello.md']);
    expect(readFileSync(path.join(dir, 'logs/retrieval.log'), 'utf8')).toMatch(/"driver":"postgres".*"vector":true/);
    // …and Prometheus has its latency under mode="vector" (scraped every second).
    const vectorSamples = async () => {
      const q = encodeURIComponent('sum by (job) (docupod_retrieval_seconds_count{mode="vector"})');
      const body = (await fetch(`${state.prometheusUrl}/api/v1/query?query=${q}`).then((r) => r.json())) as { data: { result: Array<{ metric: { job: string }; value: [number, string] }> } };
      return body.data.result.map((r) => `${r.metric.job} ${r.value[1]}`);
    };
    let vectorSeen: string[] = [];
    for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 300))) if ((vectorSeen = await vectorSamples()).length) break;
    expect(vectorSeen).toEqual(['retrieval 1']);

    for (const p of state.processes) expect(alive(p.pid), p.name).toBe(true);
    child.kill('SIGINT');
    await exited(child);
    expect(child.exitCode, stack.output()).toBe(0);
    // reverse order: the front (nginx, prometheus) first, the database last
    const order = [...stack.output().matchAll(/stopping (\S+)/g)].map((m) => m[1]);
    expect(order.slice(0, 2)).toEqual(['prometheus', 'nginx']);
    expect(order.at(-1)).toBe('PostgreSQL');
    for (const p of state.processes) expect(alive(p.pid), `${p.name} after Ctrl-C`).toBe(false);
    expect(existsSync(dir)).toBe(false);
  }, 90_000);
});
