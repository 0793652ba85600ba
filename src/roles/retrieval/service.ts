import { roleStatus } from '../../core/role-status.js';
import type { RetrievalClient } from './contract.js';

export interface RetrievalDeps {
  version: string;
  /** Readiness of what this role depends on (database, model backends). */
  ready: () => Promise<true | string>;
}

/** The retrieval role's in-process implementation of its contract. */
export function createRetrievalService(deps: RetrievalDeps): RetrievalClient {
  return { status: () => roleStatus('retrieval', deps.version, deps.ready) };
}
