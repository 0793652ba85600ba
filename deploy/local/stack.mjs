#!/usr/bin/env node
// `npm run stack`: docupod's Kubernetes topology on one machine, from real parts, in one scratch directory.
//   a throwaway PostgreSQL 15 cluster (initdb + pg_ctl), `docupod migrate`, every role its own process (`--role`;
//   two ingest, two chat), nginx in front with the routes of the Helm chart's Ingress, and Prometheus scraping the
//   targets of the chart's ServiceMonitor. Both come from deploy/helm/docupod/files/routes.json, which the chart's
//   templates read too (test/stack/stack.test.ts checks they agree).
// Everything listens on 127.0.0.1 only. Ctrl-C (SIGINT/SIGTERM) stops the children in reverse order, then the cluster.
// `npm run stack -- --down [--dir D]` stops a stack left behind (its pids are recorded in D/stack.json).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ROUTES_FILE = path.join(ROOT, 'deploy/helm/docupod/files/routes.json');
export const DEFAULT_DIR = path.join(os.tmpdir(), 'docupod-stack');
const STATE = 'stack.json';

export const BINARIES = {
  pgBin: process.env.DOCUPOD_STACK_PG_BIN ?? '/usr/lib/postgresql/15/bin',
  nginx: process.env.DOCUPOD_STACK_NGINX ?? '/usr/sbin/nginx',
  prometheus: process.env.DOCUPOD_STACK_PROMETHEUS ?? '/usr/bin/prometheus',
};

/** Binaries this machine lacks (the test skips, or fails under CI, when any is missing). */
export function missingBinaries() {
  return [path.join(BINARIES.pgBin, 'initdb'), path.join(BINARIES.pgBin, 'pg_ctl'), BINARIES.nginx, BINARIES.prometheus].filter((b) => !fs.existsSync(b));
}

/** One process per entry, `ingest` and `chat` of each (the benchmark compares one with two ingest processes). */
export function processList({ ingest = 2, chat = 2 } = {}) {
  const n = (role, count) => Array.from({ length: count }, (_, i) => ({ name: `${role}-${i + 1}`, role }));
  return [{ name: 'retrieval', role: 'retrieval' }, { name: 'models', role: 'models' }, ...n('ingest', ingest), ...n('chat', chat), { name: 'web', role: 'web' }, { name: 'gateway', role: 'gateway' }];
}
export const PROCESSES = processList();
// Roles with more than one process: other roles reach them through an internal nginx port that balances over them,
// as a Kubernetes Service does (DOCUPOD_<ROLE>_URL names that port; /internal/<role>/… selects the upstream).
const BALANCED = ['chat', 'ingest'];

export function readRoutes() {
  return JSON.parse(fs.readFileSync(ROUTES_FILE, 'utf8'));
}

/** A port the OS says is free on 127.0.0.1 (listen on 0, close). */
export function freePort() {
  return freePorts(1).then(([port]) => port);
}

/** n distinct free ports: all are held open until the last is found, so the OS cannot hand out one twice. */
export async function freePorts(n) {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise((resolve, reject) => {
      const s = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

// Ports are found free, closed, and bound by the processes seconds later. Two stacks starting at once (the test files
// run in parallel) could be handed the same closed port in between, and one stack's nginx would then ask another
// stack's process. One machine-wide lock from the first port found to the last one bound keeps their starts apart.
const PORTS_LOCK = path.join(os.tmpdir(), 'docupod-stack-ports');
async function lockPorts() {
  const { default: lockfile } = await import('proper-lockfile');
  fs.mkdirSync(PORTS_LOCK, { recursive: true });
  return lockfile.lock(PORTS_LOCK, { realpath: false, stale: 30_000, retries: { retries: 1_000, minTimeout: 100, maxTimeout: 500 } });
}

/** nginx locations for the chart's Ingress table (Prefix = the path and everything under it, Exact = the path). */
export function nginxLocations(routes) {
  const lines = [];
  for (const r of routes.ingress) {
    const to = `proxy_pass http://${r.component};`;
    if (r.type === 'Exact') lines.push(`location = ${r.path} { ${to} }`);
    else if (r.type === 'Prefix' && r.path === '/') lines.push(`location / { ${to} }`);
    else if (r.type === 'Prefix') lines.push(`location = ${r.path} { ${to} }`, `location ${r.path}/ { ${to} }`);
    else throw new Error(`routes.json: unknown path type ${r.type} for ${r.path}`);
  }
  return lines;
}

export function nginxConfig({ dir, publicPort, internalPort, ports, processes = PROCESSES, workerConnections = 1024 }) {
  const routes = readRoutes();
  const n = path.join(dir, 'nginx');
  const upstreams = {};
  for (const p of processes) (upstreams[p.role] ??= []).push(`127.0.0.1:${ports[p.name].http}`);
  const upstreamBlocks = Object.entries(upstreams).map(([role, servers]) => `  upstream ${role} {\n${servers.map((s) => `    server ${s};`).join('\n')}\n    keepalive 16;\n  }`);
  const indent = (ls, pad) => ls.map((l) => pad + l).join('\n');
  return `# Generated by deploy/local/stack.mjs from deploy/helm/docupod/files/routes.json; do not edit.
daemon off;
worker_processes 1;
worker_rlimit_nofile ${2 * workerConnections + 64};
pid ${n}/nginx.pid;
error_log ${path.join(dir, 'logs/nginx-error.log')} warn;
events { worker_connections ${workerConnections}; }
http {
  access_log ${path.join(dir, 'logs/nginx-access.log')};
  client_body_temp_path ${n}/body;
  proxy_temp_path ${n}/proxy;
  fastcgi_temp_path ${n}/fastcgi;
  uwsgi_temp_path ${n}/uwsgi;
  scgi_temp_path ${n}/scgi;
${upstreamBlocks.join('\n')}
  # What the chart's nginx Ingress annotations ask for: SSE unbuffered, uploads streamed up to 100 MB, long timeouts.
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $http_host;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_buffering off;
  proxy_request_buffering off;
  client_max_body_size 100m;
  proxy_read_timeout 3600s;
  proxy_send_timeout 3600s;
  server {
    listen 127.0.0.1:${publicPort};
${indent(nginxLocations(routes), '    ')}
  }
  # Internal: the Services of the roles that run more than one process.
  server {
    listen 127.0.0.1:${internalPort};
${indent(BALANCED.map((r) => `location /internal/${r}/ { proxy_pass http://${r}; }`), '    ')}
    location / { return 404; }
  }
}
`;
}

/** The namespace label the stack's targets carry, so the chart's rules (which select on it) match them. */
export const STACK_NAMESPACE = 'docupod-stack';
export const RULES_DIR = path.join(ROOT, 'deploy/helm/docupod/files/rules');

/** The chart's rule files (a list of rules each), joined as its PrometheusRule template joins them into one group. */
export function ruleText(namespace = STACK_NAMESPACE) {
  return fs.readdirSync(RULES_DIR).filter((f) => f.endsWith('.yaml')).sort()
    .map((f) => fs.readFileSync(path.join(RULES_DIR, f), 'utf8').replaceAll('$NAMESPACE', namespace)).join('\n');
}

/** Prometheus: one job per ServiceMonitor component that runs here, on its metrics port, with the metrics token. */
export function prometheusConfig({ ports, tokenFile, interval, processes = PROCESSES, ruleFiles = [] }) {
  const { scrape } = readRoutes();
  const jobs = scrape.components
    .map((component) => ({ component, targets: processes.filter((p) => p.role === component).map((p) => `127.0.0.1:${ports[p.name].metrics}`) }))
    .filter((j) => j.targets.length > 0); // `server` is the embedded mode's one process: none in this topology
  return {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: ruleFiles,
    scrape_configs: jobs.map((j) => ({
      job_name: j.component,
      metrics_path: scrape.path,
      authorization: { type: 'Bearer', credentials_file: tokenFile },
      static_configs: [{ targets: j.targets, labels: { component: j.component, namespace: STACK_NAMESPACE } }],
    })),
  };
}

// ---- processes ---------------------------------------------------------------------------------------------------

const isRoot = process.getuid?.() === 0;
// initdb refuses root: the cluster then runs as Debian's `postgres` user in a directory it owns.
const asPostgres = (cmd, args) => (isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.error}):\n${(r.stdout ?? '') + (r.stderr ?? '')}`);
  return r.stdout;
}

function readState(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, STATE), 'utf8'));
  } catch {
    return undefined;
  }
}

export const alive = (pid) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // After --down, the children of a killed script are someone else's: an exited one can linger as a zombie until its
  // new parent reaps it, which is not a running process.
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc (not Linux): kill(0) is all we know
  }
};

async function stopPid(pid, graceMs = 10_000) {
  // Children run in their own process group (detached) so Ctrl-C reaches only this script, which stops them in order.
  const signal = (s) => {
    try {
      process.kill(-pid, s);
    } catch {
      try {
        process.kill(pid, s);
      } catch {
        /* gone */
      }
    }
  };
  signal('SIGTERM');
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) signal('SIGKILL');
}

/** Stops what dir/stack.json records, newest first, then the cluster; removes the directory unless keep. */
export async function down(dir = DEFAULT_DIR, { keep = false, log = () => {} } = {}) {
  const state = readState(dir);
  if (!state) return false;
  for (const p of [...state.processes].reverse()) {
    if (alive(p.pid)) log(`stopping ${p.name} (pid ${p.pid})`);
    await stopPid(p.pid);
  }
  if (state.pgData && fs.existsSync(path.join(state.pgData, 'postmaster.pid'))) {
    log('stopping PostgreSQL');
    const [cmd, args] = asPostgres(path.join(state.pgBin, 'pg_ctl'), ['-D', state.pgData, '-m', 'fast', '-w', 'stop']);
    spawnSync(cmd, args, { stdio: 'ignore' });
  }
  if (keep) fs.rmSync(path.join(dir, STATE), { force: true });
  else fs.rmSync(dir, { recursive: true, force: true });
  return true;
}

async function waitFor(url, { child, name, logFile, timeoutMs = 60_000, headers } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${tail(logFile)}`);
    try {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > end) throw new Error(`${name} did not answer ${url} within ${timeoutMs} ms:\n${tail(logFile)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file, n = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Starts the stack in dir and resolves once nginx answers. Returns its URLs and stop(). The caller owns signals.
 * opts.env: extra environment for every role (e.g. DOCUPOD_EMBED_PROVIDER); opts.roleEnv: per role ({ models: {...} });
 * opts.ingest, opts.chat: how many processes of each (2); opts.nginxConnections: nginx's worker_connections (1024; a
 * proxied stream holds two, and the benchmark holds hundreds).
 */
export async function up({ dir = DEFAULT_DIR, scrapeInterval = '5s', env = {}, roleEnv = {}, ingest = 2, chat = 2, nginxConnections = 1024, log = () => {} } = {}) {
  const processes = processList({ ingest, chat });
  const t0 = Date.now();
  const missing = missingBinaries();
  if (missing.length) throw new Error(`missing: ${missing.join(', ')} (Debian: apt-get install postgresql-15 nginx prometheus)`);
  if (!fs.existsSync(path.join(ROOT, 'dist/main.js'))) throw new Error('dist/ is missing: run `npm run build` (npm run stack does)');
  const previous = readState(dir);
  if (previous) {
    if (previous.processes.some((p) => alive(p.pid))) throw new Error(`a stack is already running in ${dir} (${previous.url}): stop it with \`npm run stack -- --down\``);
    await down(dir);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  for (const d of ['logs', 'nginx', 'secrets', 'data', 'prometheus']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.chmodSync(dir, 0o755); // the postgres user and nginx's workers must traverse it
  fs.chmodSync(path.join(dir, 'secrets'), 0o700);

  const state = { dir, url: undefined, prometheusUrl: undefined, processes: [], pgBin: BINARIES.pgBin, pgData: undefined };
  const save = () => fs.writeFileSync(path.join(dir, STATE), JSON.stringify(state, null, 2));
  save();
  let stopping = false;
  let unlockPorts = async () => {};
  const stop = async () => {
    stopping = true;
    await down(dir, { keep: true, log });
  };

  try {
    // PostgreSQL 15 (fsync off: a throwaway cluster).
    const pgData = path.join(dir, 'pg');
    fs.mkdirSync(pgData, { mode: 0o700 });
    if (isRoot) {
      run('chown', ['postgres:postgres', pgData]);
      const [cmd, args] = asPostgres('test', ['-w', pgData]);
      if (spawnSync(cmd, args).status !== 0) throw new Error(`the postgres user cannot reach ${pgData}: every directory above it must be searchable by others (chmod o+x), or pick another --dir`);
    }
    unlockPorts = await lockPorts();
    const [pgPort, publicPort, internalPort, promPort, ...rolePorts] = await freePorts(4 + 2 * processes.length);
    const pgLog = path.join(dir, 'logs/postgres.log');
    fs.writeFileSync(pgLog, '');
    if (isRoot) run('chown', ['postgres:postgres', pgLog]);
    run(...asPostgres(path.join(BINARIES.pgBin, 'initdb'), ['-D', pgData, '-U', 'docupod', '--auth=trust', '-E', 'UTF8', '--no-sync']));
    state.pgData = pgData;
    save();
    run(...asPostgres(path.join(BINARIES.pgBin, 'pg_ctl'), [
      '-D', pgData, '-l', pgLog, '-w', '-o',
      `-c listen_addresses=127.0.0.1 -p ${pgPort} -c unix_socket_directories=${pgData} -c fsync=off -c max_connections=200`,
      'start',
    ]));
    run(path.join(BINARIES.pgBin, 'createdb'), ['-h', '127.0.0.1', '-p', String(pgPort), '-U', 'docupod', 'docupod']);
    const databaseUrl = `postgres://docupod@127.0.0.1:${pgPort}/docupod`;
    log(`PostgreSQL 15 on 127.0.0.1:${pgPort}`);

    // Secrets, each generated for this stack and never printed.
    const secret = () => randomBytes(32).toString('base64url');
    const internalToken = secret();
    const metricsToken = secret();
    const tokenFile = path.join(dir, 'secrets/metrics-token');
    fs.writeFileSync(tokenFile, metricsToken, { mode: 0o600 });

    const ports = {};
    processes.forEach((p, i) => (ports[p.name] = { http: rolePorts[2 * i], metrics: rolePorts[2 * i + 1] }));
    state.ports = ports; // each process's HTTP and metrics port (tests scrape /metrics, benchmarks bypass nginx)
    save();
    const internalUrl = `http://127.0.0.1:${internalPort}`;
    const roleUrl = (role) => (BALANCED.includes(role) ? internalUrl : `http://127.0.0.1:${ports[processes.find((p) => p.role === role).name].http}`);
    const modelsRepository = path.join(dir, 'models');

    const passThrough = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('DOCUPOD_') && !k.startsWith('DOCUPOD_STACK_') && !k.startsWith('DOCUPOD_TEST_')));
    const common = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...passThrough,
      ...env,
      DATABASE_URL: databaseUrl,
      DOCUPOD_BLOB_STORE: 'postgres',
      DOCUPOD_HOST: '127.0.0.1',
      DOCUPOD_MIGRATE_ON_START: 'false',
      DOCUPOD_INTERNAL_TOKEN: internalToken,
      DOCUPOD_METRICS_TOKEN: metricsToken,
      DOCUPOD_JWT_SECRET: secret(),
      DOCUPOD_MODELS_REPOSITORY: modelsRepository,
      ...Object.fromEntries(['gateway', 'ingest', 'retrieval', 'chat', 'models'].map((r) => [`DOCUPOD_${r.toUpperCase()}_URL`, roleUrl(r)])),
    };

    const t = Date.now();
    run(process.execPath, [path.join(ROOT, 'dist/main.js'), 'migrate'], { cwd: ROOT, env: { ...common, DOCUPOD_DATA_DIR: path.join(dir, 'data/migrate') } });
    log(`migrated in ${Date.now() - t} ms`);
    // The README's model: the intent classifier, trained into the models role's repository.
    if (!fs.existsSync(path.join(modelsRepository, 'intent-classifier'))) {
      run(process.execPath, [path.join(ROOT, 'bin/docupod.js'), 'models', 'train-intent', path.join(ROOT, 'deploy/models/intents.csv'), '--out', path.join(modelsRepository, 'intent-classifier/1')], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
    }

    const specs = {};
    const spawnChild = (name, cmd, args, childEnv) => {
      specs[name] = { cmd, args, env: childEnv };
      const logFile = path.join(dir, `logs/${name}.log`);
      const fd = fs.openSync(logFile, 'a');
      const child = spawn(cmd, args, { cwd: ROOT, env: childEnv, detached: true, stdio: ['ignore', fd, fd] });
      fs.closeSync(fd);
      // A process started again (respawn) keeps its one entry, with its new pid.
      const entry = state.processes.find((p) => p.name === name);
      if (entry) entry.pid = child.pid;
      else state.processes.push({ name, pid: child.pid });
      save();
      // A process that dies on its own is said at once (e.g. `--down` from another shell, or a crash).
      child.once('exit', (code, sig) => stopping || log(`${name} exited (${code ?? sig}); its log: ${logFile}`));
      return { child, logFile };
    };

    const started = processes.map((p) => {
      const dataDir = path.join(dir, 'data', p.name);
      fs.mkdirSync(dataDir, { recursive: true });
      const childEnv = { ...common, ...roleEnv[p.role], DOCUPOD_PORT: String(ports[p.name].http), DOCUPOD_METRICS_PORT: String(ports[p.name].metrics), DOCUPOD_DATA_DIR: dataDir };
      return { ...p, ...spawnChild(p.name, process.execPath, [path.join(ROOT, 'dist/main.js'), 'serve', '--role', p.role], childEnv) };
    });
    await Promise.all(started.map((s) => waitFor(`http://127.0.0.1:${ports[s.name].http}/healthz`, { child: s.child, name: s.name, logFile: s.logFile })));
    log(`roles up: ${processes.map((p) => `${p.name}=:${ports[p.name].http}`).join(' ')}`);

    const nginxConf = path.join(dir, 'nginx/nginx.conf');
    fs.writeFileSync(nginxConf, nginxConfig({ dir, publicPort, internalPort, ports, processes, workerConnections: nginxConnections }));
    run(BINARIES.nginx, ['-t', '-q', '-p', path.join(dir, 'nginx'), '-c', nginxConf, '-e', path.join(dir, 'logs/nginx-error.log')]);
    const nginx = spawnChild('nginx', BINARIES.nginx, ['-p', path.join(dir, 'nginx'), '-c', nginxConf, '-e', path.join(dir, 'logs/nginx-error.log')], { PATH: process.env.PATH });

    const { parse, stringify } = await import('yaml');
    const promConf = path.join(dir, 'prometheus/prometheus.yml');
    // The chart's alert and recording rules too (files/rules/), evaluated on the stack's own series.
    const rulesFile = path.join(dir, 'prometheus/rules.yml');
    fs.writeFileSync(rulesFile, stringify({ groups: [{ name: 'docupod.rules', rules: parse(ruleText()) }] }));
    fs.writeFileSync(promConf, `# Generated by deploy/local/stack.mjs from deploy/helm/docupod/files/routes.json; do not edit.\n${stringify(prometheusConfig({ ports, tokenFile, interval: scrapeInterval, processes, ruleFiles: [rulesFile] }))}`);
    const prometheus = spawnChild('prometheus', BINARIES.prometheus, [
      `--config.file=${promConf}`, `--storage.tsdb.path=${path.join(dir, 'prometheus/data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn',
    ], { PATH: process.env.PATH });

    state.url = `http://127.0.0.1:${publicPort}`;
    state.prometheusUrl = `http://127.0.0.1:${promPort}`;
    await Promise.all([
      waitFor(`${state.url}/readyz`, { ...nginx, name: 'nginx → gateway', timeoutMs: 30_000 }),
      waitFor(`${state.prometheusUrl}/-/ready`, { ...prometheus, name: 'prometheus', timeoutMs: 30_000 }),
    ]);
    state.startMs = Date.now() - t0;
    save();
    await unlockPorts();
    unlockPorts = async () => {};
    // For fault tests (test/stack/faults.test.ts): start a role's process again exactly as before (same port, env
    // and log), and restart the cluster the way an operator would. Neither touches the other processes.
    const respawn = async (name) => {
      const spec = specs[name];
      const proc = PROCESSES.find((p) => p.name === name);
      if (!spec || !proc) throw new Error(`no process named ${name}`);
      const entry = state.processes.find((p) => p.name === name);
      if (entry && alive(entry.pid)) throw new Error(`${name} is still running (pid ${entry.pid})`);
      const started = spawnChild(name, spec.cmd, spec.args, spec.env);
      await waitFor(`http://127.0.0.1:${ports[name].http}/healthz`, { ...started, name });
      return started.child.pid;
    };
    // Asynchronous, so the caller's own load keeps running while the cluster is down.
    const restartPostgres = () =>
      new Promise((resolve, reject) => {
        const [cmd, args] = asPostgres(path.join(BINARIES.pgBin, 'pg_ctl'), ['-D', pgData, '-l', pgLog, '-m', 'fast', '-w', 'restart']);
        const p = spawn(cmd, args, { stdio: 'ignore' });
        p.once('error', reject).once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pg_ctl restart exited with ${code}`))));
      });
    return { ...state, databaseUrl, ports, stop, respawn, restartPostgres };
  } catch (err) {
    await unlockPorts().catch(() => {});
    await stop();
    throw err;
  }
}

// ---- CLI ---------------------------------------------------------------------------------------------------------

async function main() {
  const { values } = parseArgs({
    options: {
      down: { type: 'boolean', default: false },
      dir: { type: 'string', default: DEFAULT_DIR },
      'scrape-interval': { type: 'string', default: '5s' },
      'models-inference': { type: 'string' },
      ingest: { type: 'string', default: '2' },
      chat: { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
    },
  });
  const dir = path.resolve(values.dir);
  const log = (line) => console.log(`stack: ${line}`);
  if (values.down) {
    if (!(await down(dir, { keep: values.keep, log }))) log(`nothing to stop in ${dir}`);
    else log(`stopped the stack in ${dir}`);
    return;
  }
  let stack;
  let stopping;
  const shutdown = (sig) => {
    stopping ??= (async () => {
      log(`${sig}: stopping`);
      if (stack) await stack.stop();
      else await down(dir, { keep: true, log });
      if (!values.keep) fs.rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    })();
  };
  process.on('SIGINT', shutdown).on('SIGTERM', shutdown);
  const roleEnv = values['models-inference'] ? { models: { DOCUPOD_MODELS_INFERENCE: values['models-inference'] } } : {};
  try {
    stack = await up({ dir, scrapeInterval: values['scrape-interval'], roleEnv, ingest: Number(values.ingest), chat: Number(values.chat), log });
  } catch (err) {
    console.error(`stack: ${err.message}`);
    process.exit(1);
  }
  if (stopping) return;
  log(`up in ${stack.startMs} ms (logs in ${path.join(dir, 'logs')})`);
  log(`Prometheus: ${stack.prometheusUrl}`);
  // The last line is the URL (the test reads it).
  console.log(`docupod: ${stack.url}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
