import { roleStatus } from '../../core/role-status.js';
import type { ChatClient } from './contract.js';

export interface ChatDeps {
  version: string;
  /** Readiness of what this role depends on (database, model backends). */
  ready: () => Promise<true | string>;
}

/** The chat role's in-process implementation of its contract. */
export function createChatService(deps: ChatDeps): ChatClient {
  return { status: () => roleStatus('chat', deps.version, deps.ready) };
}
