import { roleStatus } from '../../core/role-status.js';
import type { IngestClient } from './contract.js';

export interface IngestDeps {
  version: string;
  /** Readiness of what this role depends on (database, model backends). */
  ready: () => Promise<true | string>;
}

/** The ingest role's in-process implementation of its contract. */
export function createIngestService(deps: IngestDeps): IngestClient {
  return { status: () => roleStatus('ingest', deps.version, deps.ready) };
}
