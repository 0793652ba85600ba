// Module hooks that let a worker thread run the TypeScript sources directly (tests only).
//
// Why this exists: vitest runs src/**/*.ts through its own transform, but a worker thread is a plain Node isolate
// that cannot import .ts on Node 20 (no --experimental-strip-types). Running the parser in-thread in tests would not
// test the pool, and testing against dist/ would test whatever was built last, not the code under test. So the pool,
// when it finds itself loaded from a .ts file, starts the worker through ts-worker-entry.mjs, which registers these
// hooks: `./x.js` imports from a .ts file resolve to `./x.ts` when no .js exists (NodeNext style), and .ts files are
// transpiled with the project's own TypeScript compiler (a devDependency; transpileModule, no type check).
// Compiled code in dist/ never goes through here: there the pool starts dist/.../worker.js directly.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Every worker registers its own hooks, and loading the TypeScript compiler plus a first transpile costs ~2.5 s.
// Transpiled output is therefore cached on disk by content hash, and the compiler is loaded only on a cache miss.
const cacheDir = join(tmpdir(), 'docupod-ts-hooks');
let tsPromise;

export async function resolve(specifier, context, nextResolve) {
  if (context.parentURL?.endsWith('.ts') && /^\.\.?\//.test(specifier) && specifier.endsWith('.js')) {
    const url = new URL(specifier, context.parentURL);
    if (!existsSync(fileURLToPath(url))) return nextResolve(specifier.slice(0, -3) + '.ts', context);
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const source = await readFile(path, 'utf8');
  const key = createHash('sha256').update(path).update('\0').update(source).digest('hex');
  const cached = join(cacheDir, `${key}.js`);
  try {
    return { format: 'module', source: await readFile(cached, 'utf8'), shortCircuit: true };
  } catch {
    // miss: transpile below
  }
  tsPromise ??= import('typescript').then((m) => m.default);
  const ts = await tsPromise;
  const out = ts.transpileModule(source, {
    fileName: path,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      inlineSourceMap: true,
    },
  });
  await mkdir(cacheDir, { recursive: true });
  // Write then rename, so a concurrently starting worker never reads half a file.
  const tmp = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  await writeFile(tmp, out.outputText);
  await rename(tmp, cached);
  return { format: 'module', source: out.outputText, shortCircuit: true };
}
