import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readmeJourney } from './readme-journey.js';

// The README journey through `npm start` exactly as package.json defines it: the test reads the start script and
// runs it with the shell, as npm would (after `npm test` has built dist/, which is what prestart does). Parts tests
// start the server another way, which is how a V8 flag in this script once stopped every upload from indexing.

const ROOT = path.resolve(import.meta.dirname, '../..');
const startScript = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

let child: ChildProcess;
let output = '';
let dataDir: string;
let url: string;

beforeAll(async () => {
  expect(existsSync(path.join(ROOT, 'dist/main.js')), 'dist/ is missing: run `npm run build` (npm test does)').toBe(true);
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'docupod-npm-start-'));
  // The README's models step: train the intent classifier into the data directory's model repository.
  const train = spawnSync(process.execPath, ['bin/docupod.js', 'models', 'train-intent', 'deploy/models/intents.csv', '--out', path.join(dataDir, 'models/intent-classifier/1')], { cwd: ROOT, encoding: 'utf8' });
  expect(train.status, train.stderr).toBe(0);
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  child = spawn('sh', ['-c', startScript], {
    cwd: ROOT,
    detached: true,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DOCUPOD_DATA_DIR: dataDir, DOCUPOD_PORT: String(port), DOCUPOD_HOST: '127.0.0.1' },
  });
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const end = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > end) throw new Error(`npm start did not serve /healthz within 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 90_000);

afterAll(async () => {
  if (child?.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the README journey through `npm start`', () => {
  it(`runs \`${startScript}\`: sign-up, upload four formats, indexed, search, chat with citations, /v1 with the openai client, /models`, async () => {
    const steps: string[] = [];
    try {
      const r = await readmeJourney(url, { log: (l) => steps.push(l), model: { name: 'intent-classifier', text: 'I forgot my password', expectIntent: 'reset_password' } });
      expect(r.documentIds).toHaveLength(4);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n-- steps done: ${steps.join('; ') || '(none)'}\n-- server output (tail):\n${output.slice(-3000)}`, { cause: err });
    }
  }, 120_000);
});
