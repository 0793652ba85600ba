import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MODEL_NAME, ServingManifest, VERSION_NAME } from './manifest.js';
import { compareVersions } from './serving.js';

// Reading a model repository without loading any model: what `docupod models list` prints.

export interface RepositoryEntry {
  name: string;
  version: string;
  framework?: string;
  task?: string;
  /** Held-out accuracy recorded in the manifest (the intent classifier writes it), if any. */
  accuracy?: number | null;
  /** Why the folder cannot be served, when its manifest is missing or invalid. */
  problem?: string;
}

async function dirs(path: string, pattern: RegExp): Promise<string[]> {
  const entries = await readdir(path, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  return entries.filter((e) => e.isDirectory() && pattern.test(e.name)).map((e) => e.name);
}

export async function listRepository(repository: string): Promise<RepositoryEntry[]> {
  const out: RepositoryEntry[] = [];
  for (const name of (await dirs(repository, MODEL_NAME)).sort()) {
    for (const version of (await dirs(join(repository, name), VERSION_NAME)).sort(compareVersions)) {
      const path = join(repository, name, version, 'manifest.json');
      try {
        const raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
        const parsed = ServingManifest.safeParse(raw);
        const metrics = raw.metrics as { accuracy?: number | null } | undefined;
        out.push({
          name,
          version,
          framework: typeof raw.framework === 'string' ? raw.framework : undefined,
          task: typeof raw.task === 'string' ? raw.task : undefined,
          ...(metrics && 'accuracy' in metrics ? { accuracy: metrics.accuracy ?? null } : {}),
          ...(parsed.success ? {} : { problem: `manifest.json: ${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}` }),
        });
      } catch (err) {
        out.push({ name, version, problem: `manifest.json: ${(err as Error).message}` });
      }
    }
  }
  return out;
}
