import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, CHART, IMAGE, k8sTools, podmanEnv, run, uniqueName } from './tools.js';
import { buildTinyGguf } from '../fixtures/tiny-gguf.js';
import { readmeJourney } from '../journeys/readme-journey.js';

// The container image, built with podman from the working tree and run for real (shared/docs/containers.md):
// read-only root, no capabilities, non-root; then the chart's embedded Deployment under `podman kube play`.
// In CI (CI=true) a missing podman fails the run — .ci/run installs it; on a developer machine without podman the
// image tests are skipped (said loudly) so `npm test` stays usable there.
const havePodman = spawnSync('podman', ['--version']).status === 0;
const enabled = havePodman || Boolean(process.env.CI);
if (!enabled) console.warn('test/deploy/image.test.ts: podman is not installed — image tests SKIPPED (run .ci/run to install it)');
const suite = enabled ? describe : describe.skip;

let env: NodeJS.ProcessEnv;
const containers: string[] = [];
const cleanups: Array<() => void> = [];

async function waitFor(url: string, ms: number): Promise<Response> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (r.ok) return r;
      last = `${r.status} ${await r.text()}`;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within ${ms} ms: ${String(last)}`);
}

const freePort = () => 20000 + Math.floor(Math.random() * 20000);

beforeAll(() => {
  if (!enabled) return;
  env = podmanEnv();
  const b = buildImage(env);
  const size = run('podman', ['image', 'inspect', IMAGE, '--format', '{{.Size}}'], { env }).stdout.trim();
  console.log(`image ${IMAGE}: ${(Number(size) / 1e6).toFixed(0)} MB, build ${b.seconds.toFixed(1)} s`);
}, 900_000);

afterAll(() => {
  for (const c of containers) run('podman', ['rm', '-f', '-v', '-t', '0', c], { env });
  for (const f of cleanups.reverse()) f();
});

suite('container image', () => {
  it('has the runtime contract: uid 1000, entrypoint docupod serve --role all, healthcheck, OCI labels', () => {
    const image = JSON.parse(run('podman', ['image', 'inspect', IMAGE], { env }).stdout)[0];
    const cfg = image.Config;
    expect(cfg.User).toBe('1000:1000');
    expect(cfg.Entrypoint).toEqual(['node', '/app/bin/docupod.js']);
    expect(cfg.Cmd).toEqual(['serve', '--role', 'all']);
    expect((image.Healthcheck ?? cfg.Healthcheck)?.Test?.join(' ')).toMatch(/healthz/);
    expect(cfg.Labels['org.opencontainers.image.title']).toBe('docupod');
    expect(cfg.Labels['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}$|^unknown$/);
    expect(JSON.stringify(cfg.Env)).not.toMatch(/NODE_EXTRA_CA_CERTS/);
  });

  it('runs llama.cpp in process (llamacpp adapters) from the pruned image: read-only, non-root, CPU prebuilt binary', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'docupod-image-gguf-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'tiny-llama.gguf'), buildTinyGguf());
    // A file, not `node -e`: node-llama-cpp re-runs process.execArgv to test its binary.
    writeFileSync(
      path.join(dir, 'check.mjs'),
      `import { getLlama, LlamaChat } from '/app/node_modules/node-llama-cpp/dist/index.js';
const llama = await getLlama({ gpu: false, build: 'never' });
const model = await llama.loadModel({ modelPath: '/models/tiny-llama.gguf' });
const context = await model.createContext({ contextSize: 256, threads: 1 });
const chat = new LlamaChat({ contextSequence: context.getSequence() });
const r = await chat.generateResponse([{ type: 'user', text: 'hello' }, { type: 'model', response: [] }], { temperature: 0, maxTokens: 5 });
console.log(JSON.stringify({ gpu: llama.gpu, buildType: llama.buildType, text: r.response }));
`,
    );
    // Readable by the container's uid 1000 (mkdtemp makes the directory 0700).
    chmodSync(dir, 0o755);
    for (const f of ['tiny-llama.gguf', 'check.mjs']) chmodSync(path.join(dir, f), 0o644);
    const r = run('podman', [
      'run', '--rm', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', '1000:1000', '--network', 'none',
      '-v', `${dir}:/models:ro`, '-w', '/app', '--entrypoint', 'node', IMAGE, '/models/check.mjs',
    ], { env });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(out).toMatchObject({ gpu: false, buildType: 'prebuilt' });
    expect(out.text.trim().length).toBeGreaterThan(0);
  }, 180_000);

  it('runs read-only, without capabilities, as non-root: the README journey (four formats indexed, search, chat, /v1, /models), SIGTERM within 10 s', async () => {
    const name = uniqueName('docupod-image-test');
    const port = freePort();
    const r = run('podman', [
      'run', '-d', '--name', name, '--network', 'slirp4netns', '-p', `127.0.0.1:${port}:8080`,
      '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', '1000:1000', '--memory', '1g',
      '-e', 'DOCUPOD_JWT_SECRET=image-test-secret-0123456789-abcdefghij', IMAGE,
    ], { env });
    expect(r.status, r.stderr).toBe(0);
    containers.push(name);
    const base = `http://127.0.0.1:${port}`;
    const logs = () => run('podman', ['logs', name], { env }).stdout.slice(-3000);
    try {
      await waitFor(`${base}/healthz`, 90_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${logs()}`);
    }
    expect((await waitFor(`${base}/readyz`, 30_000)).status).toBe(200);

    // Security defaults of `docker run -p 8080:8080` (README): no internal API, no anonymous inference (the journey
    // below predicts with an API key).
    const json = { method: 'POST', headers: { 'content-type': 'application/json' } };
    expect((await fetch(`${base}/internal/retrieval/status`, { ...json, body: '{}' })).status).toBe(404);
    expect((await fetch(`${base}/models/intent-classifier/predict`, { ...json, body: '{"text":"I forgot my password"}' })).status).toBe(401);

    expect(run('podman', ['exec', name, 'id', '-u'], { env }).stdout.trim()).toBe('1000');
    expect(run('podman', ['exec', name, 'sh', '-c', 'touch /app/x'], { env }).status).not.toBe(0);
    expect(run('podman', ['exec', name, 'sh', '-c', 'grep CapEff /proc/1/status'], { env }).stdout).toMatch(/0000000000000000/);

    // The same journey as `npm start`'s (test/journeys): the intent classifier trained while the image was built
    // answers under /models.
    const steps: string[] = [];
    try {
      await readmeJourney(base, { log: (l) => steps.push(l), indexTimeoutMs: 90_000, model: { name: 'intent-classifier', text: 'I forgot my password and cannot log in', expectIntent: 'reset_password' } });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n-- steps done: ${steps.join('; ') || '(none)'}\n-- container log:\n${logs()}`, { cause: err });
    }

    const t0 = performance.now();
    const stop = run('podman', ['stop', '-t', '10', name], { env });
    const stopMs = performance.now() - t0;
    expect(stop.status, stop.stderr).toBe(0);
    const exit = run('podman', ['inspect', name, '--format', '{{.State.ExitCode}}'], { env }).stdout.trim();
    console.log(`SIGTERM → exit ${exit} in ${stopMs.toFixed(0)} ms`);
    expect(exit).toBe('0');
    expect(stopMs).toBeLessThan(10_000);
  }, 180_000);

  it("runs the chart's embedded Deployment under podman kube play as the configured user, read-only", async () => {
    const release = uniqueName('dpkp').replace(/[^a-z0-9-]/g, '');
    const port = freePort();
    const { helm } = k8sTools();
    const r = run(helm, ['template', release, CHART, '--show-only', 'templates/deployment.yaml', '--show-only', 'templates/configmap.yaml',
      '--set', `image.repository=${IMAGE.split(':')[0]}`, '--set', `image.tag=${IMAGE.split(':')[1]}`, '--set', 'image.pullPolicy=Never']);
    expect(r.status, r.stderr).toBe(0);
    // Publish on loopback (podman 4.3's kube play has no --publish): hostIP/hostPort on the container port.
    const yaml = r.stdout.replace(/- \{ name: http, containerPort: 8080, protocol: TCP \}/, `- { name: http, containerPort: 8080, protocol: TCP, hostPort: ${port}, hostIP: 127.0.0.1 }`);
    expect(yaml).toContain(`hostPort: ${port}`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'docupod-kube-'));
    const file = path.join(dir, 'embedded.yaml');
    writeFileSync(file, yaml);
    // secretKeyRef reads a podman secret holding a JSON map of base64 values.
    const secretName = `${release}-docupod`;
    const secretFile = path.join(dir, 'secret.json');
    writeFileSync(secretFile, JSON.stringify({ 'jwt-secret': Buffer.from('kube-play-secret-0123456789-abcdefghijkl').toString('base64'), 'internal-token': Buffer.from('internal-token-0123456789').toString('base64'), 'metrics-token': Buffer.from('metrics-token-0123456789').toString('base64') }));
    expect(run('podman', ['secret', 'create', secretName, secretFile], { env }).status).toBe(0);
    cleanups.push(() => {
      run('podman', ['kube', 'down', file], { env });
      run('podman', ['secret', 'rm', secretName], { env });
      run('podman', ['volume', 'rm', '-f', `${release}-docupod-data`], { env });
      rmSync(dir, { recursive: true, force: true });
    });
    const play = run('podman', ['kube', 'play', '--replace', '--network', 'slirp4netns', file], { env });
    expect(play.status, play.stderr).toBe(0);
    const ctr = run('podman', ['ps', '--format', '{{.Names}}', '--filter', `name=${release}-docupod-server`], { env }).stdout.split('\n').find((n) => n.endsWith('-docupod'));
    expect(ctr, play.stdout).toBeTruthy();
    await waitFor(`http://127.0.0.1:${port}/healthz`, 90_000);
    expect(run('podman', ['exec', ctr!, 'id', '-u'], { env }).stdout.trim()).toBe('1000');
    const rootMount = run('podman', ['exec', ctr!, 'sh', '-c', "awk '$2==\"/\" {print $4}' /proc/mounts"], { env }).stdout;
    expect(rootMount).toMatch(/^ro[,\n]/);
    expect(run('podman', ['exec', ctr!, 'sh', '-c', 'touch /should-fail'], { env }).status).not.toBe(0);
    expect(run('podman', ['exec', ctr!, 'sh', '-c', 'touch /data/ok && touch /tmp/ok'], { env }).status).toBe(0);
    expect(run('podman', ['exec', ctr!, 'sh', '-c', 'grep NoNewPrivs /proc/1/status'], { env }).stdout).toMatch(/1/);
  }, 180_000);
});
