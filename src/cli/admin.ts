import { loadConfig, redactedConfig, type Config } from '../config/schema.js';
import { readEnv } from '../config/env.js';
import { describeRoles } from '../modules/graph.js';
import { openDatabase, redactUrl, type Database } from '../storage/database.js';
import { DataDirLockedError } from '../storage/data-dir-lock.js';

/** Config for one-shot commands that work on the local data directory or the configured database. */
export function commandConfig(): Config {
  return loadConfig(readEnv());
}

export async function withDatabase<T>(config: Config, fn: (db: Database) => Promise<T>): Promise<T> {
  const { storage } = config;
  const database = await openDatabase({ url: storage.databaseUrl, dataDir: storage.dataDir, poolMax: 2, pgliteSharedBuffers: storage.pgliteSharedBuffers, pgliteWasmTiering: storage.pgliteWasmTiering });
  try {
    return await fn(database);
  } finally {
    await database.close();
  }
}

/** `docupod migrate`: apply the checked-in migrations (the Helm chart runs this as a pre-install/upgrade hook). */
export async function migrateCommand(): Promise<void> {
  const config = commandConfig();
  await withDatabase(config, async (database) => {
    const t0 = performance.now();
    await database.migrate();
    const where = config.storage.databaseUrl ? redactUrl(config.storage.databaseUrl) : config.storage.dataDir;
    console.log(`migrations applied to ${database.kind} (${where}) in ${Math.round(performance.now() - t0)} ms; pgvector: ${database.vectorEnabled ? 'on' : 'off (lexical-only)'}`);
  }).catch((err: unknown) => {
    // Embedded: the owner of the data directory migrated it when it started (DOCUPOD_MIGRATE_ON_START).
    if (err instanceof DataDirLockedError) throw new Error(`${err.message}. A server applies the migrations when it starts; stop it first to run docupod migrate by hand`, { cause: err });
    throw err;
  });
}

export function configCommand(): void {
  console.log(JSON.stringify(redactedConfig(commandConfig()), null, 2));
}

export function listRolesCommand(): void {
  console.log(describeRoles());
}
