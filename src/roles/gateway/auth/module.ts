import type { Config } from '../../../config/schema.js';
import type { Logger } from '../../../observability/logger.js';
import type { Database } from '../../../storage/database.js';
import { AuthService } from './service.js';
import { newLocalToken } from './local-operator.js';

export { AuthService };

/** What initAuth takes from the module context (roles do not import the module manager). */
interface AuthModuleContext {
  config: Config;
  log: Logger;
  get<T>(name: 'db'): T;
  isActive(name: 'gateway'): boolean;
}

/**
 * The `auth` module: the service the gateway's routes authenticate with, and the models role's check of API keys and
 * logins (on a models pod without the gateway it is started alone: the same caches and JWT secret, no /api routes).
 * With the gateway, each start makes a new local operator token; it never leaves the process unless the owner of an
 * embedded data directory writes it to server.json. Without it nobody could learn one, so none is made.
 */
export const initAuth = async (ctx: AuthModuleContext): Promise<AuthService> =>
  new AuthService({
    database: ctx.get<Database>('db'),
    config: ctx.config,
    log: ctx.log.child({ module: 'auth' }),
    localToken: ctx.isActive('gateway') ? newLocalToken() : undefined,
  });
