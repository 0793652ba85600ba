import type { Init } from '../../../modules/manager.js';
import type { Database } from '../../../storage/database.js';
import { M } from '../../../modules/graph.js';
import { AuthService } from './service.js';

export { AuthService };

/** The `auth` module: the service the gateway's routes authenticate with. */
export const initAuth: Init = async (ctx) => new AuthService({ database: ctx.get<Database>(M.db), config: ctx.config, log: ctx.log.child({ module: 'auth' }) });
