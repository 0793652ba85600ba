import type { Init } from '../../../modules/manager.js';

// Placeholder: the auth service (users, tokens, API keys) is built in src/roles/gateway/auth/.
export interface AuthService {
  readonly kind: 'auth';
}

export const initAuth: Init = async (): Promise<AuthService> => ({ kind: 'auth' });
