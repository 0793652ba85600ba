#!/usr/bin/env node
// `npm run bench -- <name>…`: runs the named benchmarks (all when none is named). Benchmarks are never part of
// `npm test`: they run for minutes and print numbers that a shared, noisy runner cannot gate on.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .map((f) => f.replace(/\.bench\.js$/, ''))
  .sort();
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : available) {
  console.log(`\n## ${name}`);
  const mod = await import(pathToFileURL(path.join(here, `${name}.bench.js`)).href);
  await mod.run(process.argv.slice(2));
}
