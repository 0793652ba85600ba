// Intent classification served by docupod (`--role models`, built dist) vs the seed's stack (scikit-learn behind
// gunicorn, bench/models/sklearn_app.py), on the same CSV and the same held-out split, driven by wrk over loopback.
// Prints requests/s and p99 latency for POST /predict {"text"}, their ratio (goal ≥ 3×), and both accuracies.
//
// Needs: wrk (apt-get install wrk), Debian's /usr/bin/python3 with python3-sklearn, python3-flask, gunicorn.
// Environment: BENCH_RUNS (default 3), BENCH_DURATION (seconds per run, default 10), BENCH_CONNECTIONS (default 32),
// BENCH_THREADS (wrk threads, default 1), GUNICORN_WORKERS (default: the number of CPUs).
// Runs alternate between the two servers so drifting machine load hits both alike; medians are reported.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const BIN = path.join(ROOT, 'dist/main.js');
const CSV = path.join(ROOT, 'deploy/models/intents.csv');
const LUA = path.join(ROOT, 'bench/models/predict.lua');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const THREADS = Number(process.env.BENCH_THREADS ?? 1);
const WORKERS = Number(process.env.GUNICORN_WORKERS ?? availableParallelism());
const SEED = 42;
const TEST_FRACTION = 0.2;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function waitFor(url, child, what, timeoutMs = 30_000) {
  const t0 = Date.now();
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not listening yet */
    }
    if (child.exitCode !== null) throw new Error(`${what} exited during start (code ${child.exitCode})`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what} did not answer ${url} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stop(child) {
  if (child.exitCode !== null) return Promise.resolve();
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  return exited;
}

/** wrk's latency lines ("99%  1.23ms") → milliseconds. */
function toMs(v) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v);
  if (!m) return NaN;
  return Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3 }[m[2]];
}

async function wrk(url, seconds) {
  const { stdout } = await exec('wrk', [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', LUA, url], { maxBuffer: 1 << 20 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p50 = toMs(/\s50%\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const socketErrors = /Socket errors:.*/.exec(stdout)?.[0];
  if (!Number.isFinite(rps)) throw new Error(`could not read wrk's output:\n${stdout}`);
  if (non2xx > 0) throw new Error(`${url}: ${non2xx} answers were not 2xx`);
  return { rps, p50, p99, socketErrors };
}

export async function run() {
  await exec('wrk', ['--version']).catch((err) => {
    // wrk --version exits 1 after printing; only a missing binary is fatal.
    if (err.code === 'ENOENT') throw new Error('wrk is not installed: apt-get install wrk');
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'docupod-bench-models-'));
  const children = [];
  try {
    // 1. Train docupod's classifier with the CLI, into a model repository.
    const repo = path.join(dir, 'models');
    const { stdout } = await exec(process.execPath, [BIN, 'models', 'train-intent', CSV, '--out', path.join(repo, 'intent-classifier', '1'), '--seed', String(SEED), '--test-fraction', String(TEST_FRACTION), '--json'], {
      maxBuffer: 16 << 20,
    });
    const report = JSON.parse(stdout);

    // 2. docupod, models role only, from the built dist.
    const dPort = 18700 + Math.floor(Math.random() * 100);
    const docupod = spawn(process.execPath, [BIN, 'serve', '--role', 'models', '--port', String(dPort), '--host', '127.0.0.1'], {
      // A role on its own needs the internal token; inference is opened like the seed's unauthenticated Flask app.
      env: { PATH: process.env.PATH, DOCUPOD_DATA_DIR: dir, DOCUPOD_MODELS_REPOSITORY: repo, DOCUPOD_LOG_LEVEL: 'warn', DOCUPOD_INTERNAL_TOKEN: randomBytes(24).toString('hex'), DOCUPOD_MODELS_INFERENCE: 'open' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(docupod);
    await waitFor(`http://127.0.0.1:${dPort}/models/v2/models/intent-classifier/ready`, docupod, 'docupod');

    // 3. The seed's stack: sklearn + Flask behind gunicorn, trained at import on the same CSV and split.
    const gPort = dPort + 100;
    let gunicornErr = '';
    const gunicorn = spawn('/usr/bin/gunicorn', ['-w', String(WORKERS), '-b', `127.0.0.1:${gPort}`, '--chdir', path.join(ROOT, 'bench/models'), 'sklearn_app:app'], {
      env: { PATH: '/usr/bin:/bin', INTENTS_CSV: CSV, INTENTS_SEED: String(SEED), INTENTS_TEST_FRACTION: String(TEST_FRACTION) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    gunicorn.stderr.on('data', (d) => (gunicornErr += d));
    children.push(gunicorn);
    await waitFor(`http://127.0.0.1:${gPort}/healthz`, gunicorn, 'gunicorn', 60_000);
    const sk = /held-out accuracy ([\d.]+) \(n_test=(\d+), n_train=(\d+)/.exec(gunicornErr);
    if (!sk) throw new Error(`gunicorn did not report its accuracy:\n${gunicornErr}`);

    // 4. Both answer the same question the same way (a sanity check, not a benchmark).
    const probe = async (url) => (await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"i forgot my pasword again"}' })).json()).intent;
    const targets = {
      docupod: `http://127.0.0.1:${dPort}/models/intent-classifier/predict`,
      sklearn: `http://127.0.0.1:${gPort}/predict`,
    };
    const probes = { docupod: await probe(targets.docupod), sklearn: await probe(targets.sklearn) };

    // 5. Warm up, then alternate measured runs.
    for (const url of Object.values(targets)) await wrk(url, 2);
    const results = { docupod: [], sklearn: [] };
    for (let i = 0; i < RUNS; i++) for (const [name, url] of Object.entries(targets)) results[name].push(await wrk(url, DURATION));

    const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
    const summary = Object.fromEntries(
      Object.entries(results).map(([name, rs]) => [name, { rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), runs: rs }]),
    );
    const commit = await exec('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).then((r) => r.stdout.trim(), () => '?');
    console.log(
      `machine: ${cpus()[0]?.model ?? '?'} × ${availableParallelism()}, node ${process.version}, commit ${commit}; wrk -t${THREADS} -c${CONNECTIONS}, ` +
        `${RUNS} × ${DURATION} s per server (medians), loopback; gunicorn -w ${WORKERS} (sync workers), docupod one process (--role models)`,
    );
    const row = (name, s, acc, extra) =>
      console.log(
        `${name.padEnd(34)} ${s.rps.toFixed(0).padStart(7)} req/s   p50 ${s.p50.toFixed(2).padStart(6)} ms   p99 ${s.p99.toFixed(2).padStart(6)} ms   ` +
          `accuracy ${acc.toFixed(4)}   ${extra}   runs: ${s.runs.map((r) => r.rps.toFixed(0)).join(', ')} req/s`,
      );
    row('docupod /models/{name}/predict', summary.docupod, report.accuracy, `(n_test=${report.nTest}, RSS ${rssMb(docupod.pid).toFixed(0)} MB)`);
    row('sklearn + flask + gunicorn', summary.sklearn, Number(sk[1]), `(n_test=${sk[2]})`);
    const ratio = summary.docupod.rps / summary.sklearn.rps;
    console.log(`probe "i forgot my pasword again": docupod → ${probes.docupod}, sklearn → ${probes.sklearn}`);
    console.log(
      `ratio: ${ratio.toFixed(2)}× the requests/s, p99 ${(summary.sklearn.p99 / summary.docupod.p99).toFixed(2)}× lower; ` +
        `goal ≥ 3× at equal or better accuracy: ${ratio >= 3 && report.accuracy >= Number(sk[1]) ? 'met' : 'MISSED'}`,
    );
    for (const [name, rs] of Object.entries(results)) {
      const errs = rs.map((r) => r.socketErrors).filter(Boolean);
      if (errs.length) console.log(`${name}: ${errs.join('; ')}`);
    }
  } finally {
    for (const c of children.reverse()) await stop(c);
    rmSync(dir, { recursive: true, force: true });
  }
}
