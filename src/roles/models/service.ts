import { roleStatus } from '../../core/role-status.js';
import type { ModelsClient } from './contract.js';

export interface ModelsDeps {
  version: string;
  /** Readiness of what this role depends on (database, model backends). */
  ready: () => Promise<true | string>;
}

/** The models role's in-process implementation of its contract. */
export function createModelsService(deps: ModelsDeps): ModelsClient {
  return { status: () => roleStatus('models', deps.version, deps.ready) };
}
