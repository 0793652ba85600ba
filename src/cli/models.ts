import type { Command } from 'commander';
import { listRepository } from '../roles/models/repository.js';
import { runTrainIntent } from '../roles/models/intent/index.js';
import { listGgufFiles } from '../adapters/llm/gguf.js';
import { commandConfig } from './admin.js';

// `docupod models train-intent`, `docupod models list` and `docupod models local` (GGUF files for llamacpp).

function number(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number in [${min}, ${max}], got "${v}"`);
    return n;
  };
}

export function registerModelsCommands(program: Command): void {
  const models = program.command('models').description('model serving: train the intent classifier, list the model repository; list local GGUF models');

  models
    .command('train-intent <csv>')
    .description('train the TF-IDF + logistic-regression intent classifier on a text,intent CSV and write a model folder')
    .requiredOption('--out <dir>', 'model folder to write (serve it from <repository>/<name>/<version>)')
    .option('--test-fraction <f>', 'share of each intent held out for the accuracy report (0 trains on everything)', number('--test-fraction', 0, 0.9), 0.2)
    .option('--seed <n>', 'seed of the held-out split', number('--seed', 0, 2 ** 32 - 1), 42)
    .option('--name <name>', 'model name written to the manifest', 'intent-classifier')
    .option('--model-version <v>', 'model version written to the manifest', '1')
    .option('--json', 'print the full report as JSON')
    .action(async (csv: string, opts: { out: string; testFraction: number; seed: number; name: string; modelVersion: string; json?: boolean }) => {
      const report = await runTrainIntent(csv, opts.out, { testFraction: opts.testFraction, seed: opts.seed, name: opts.name, version: opts.modelVersion });
      if (opts.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      const acc = report.accuracy === null ? 'n/a (no held-out split)' : report.accuracy.toFixed(4);
      console.log(`trained ${report.name} version ${report.version}: ${report.labels.length} intents, ${report.nTrain} training rows, ${report.nFeatures} features, ${report.trainMs.toFixed(0)} ms`);
      console.log(`held-out accuracy ${acc} (n_test=${report.nTest}, seed=${opts.seed})${report.macroF1 === null ? '' : `, macro-F1 ${report.macroF1.toFixed(4)}`}`);
      console.log(`wrote ${report.files.model} and ${report.files.manifest}`);
    });

  models
    .command('list')
    .description('list the model repository (DOCUPOD_MODELS_REPOSITORY), or a running server\'s models with --url')
    .option('--url <url>', "a docupod server running the models role (env DOCUPOD_URL); needs an instance admin's DOCUPOD_API_KEY (server with the gateway) or DOCUPOD_INTERNAL_TOKEN")
    .option('--json', 'print JSON')
    .action(async (opts: { url?: string; json?: boolean }) => {
      const url = opts.url ?? process.env.DOCUPOD_URL;
      if (url) {
        // An admin's API key where the gateway runs beside the models role; the internal token for the role on its own.
        const token = process.env.DOCUPOD_API_KEY || process.env.DOCUPOD_INTERNAL_TOKEN;
        const res = await fetch(new URL('/models/v2/repository/index', url), { headers: token ? { authorization: `Bearer ${token}` } : {} });
        const body = (await res.json().catch(() => undefined)) as Array<{ name: string; version?: string; state: string; reason?: string }> | { detail?: string } | undefined;
        if (!res.ok || !Array.isArray(body)) throw new Error(`${url} answered HTTP ${res.status}${body && !Array.isArray(body) && body.detail ? `: ${body.detail}` : ''}`);
        if (opts.json) return console.log(JSON.stringify(body, null, 2));
        if (body.length === 0) return console.log('no models');
        for (const m of body) console.log(`${m.name.padEnd(28)} ${String(m.version ?? '-').padEnd(8)} ${m.state}${m.reason ? `  (${m.reason})` : ''}`);
        return;
      }
      const repository = commandConfig().models.repository;
      if (!repository) throw new Error('no model repository: set DOCUPOD_MODELS_REPOSITORY');
      const entries = await listRepository(repository);
      if (opts.json) return console.log(JSON.stringify({ repository, models: entries }, null, 2));
      if (entries.length === 0) return console.log(`no models in ${repository}`);
      console.log(`models in ${repository}:`);
      for (const e of entries) {
        const acc = e.accuracy === undefined ? '' : `  accuracy ${e.accuracy === null ? 'n/a' : e.accuracy.toFixed(4)}`;
        console.log(`${e.name.padEnd(28)} ${e.version.padEnd(8)} ${(e.framework ?? '?').padEnd(22)} ${e.task ?? ''}${acc}${e.problem ? `  PROBLEM: ${e.problem}` : ''}`);
      }
    });

  models
    .command('local')
    .description('list the GGUF files in the local model directory (DOCUPOD_LLAMACPP_MODELS_DIR) for DOCUPOD_LLM_PROVIDER=llamacpp')
    .option('--dir <dir>', 'another directory to look in')
    .option('--json', 'print JSON')
    .action(async (opts: { dir?: string; json?: boolean }) => {
      const dir = opts.dir ?? commandConfig().llamacpp.modelsDir;
      const found = await listGgufFiles(dir);
      if (opts.json) return console.log(JSON.stringify({ dir, models: found }, null, 2));
      if (found.length === 0) return console.log(`no .gguf files in ${dir} (set DOCUPOD_LLAMACPP_MODELS_DIR, or pass --dir)`);
      console.log(`GGUF models in ${dir}:`);
      console.log(`${'file'.padEnd(40)} ${'name'.padEnd(28)} ${'architecture'.padEnd(14)} ${'size'.padStart(9)} ${'context'.padStart(8)}  quantisation`);
      for (const m of found) {
        if ('problem' in m) {
          console.log(`${m.file.padEnd(40)} PROBLEM: ${m.problem}`);
          continue;
        }
        console.log(`${m.file.padEnd(40)} ${m.name.slice(0, 28).padEnd(28)} ${m.architecture.padEnd(14)} ${formatBytes(m.sizeBytes).padStart(9)} ${String(m.contextLength).padStart(8)}  ${m.quantisation}`);
      }
    });
}

function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e3).toFixed(1)} KB`;
}
