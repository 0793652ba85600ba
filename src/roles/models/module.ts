import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../observability/logger.js';
import type { Registry } from '../../observability/metrics.js';
import { modelsRoutes, type UserAuth } from './routes.js';
import { ModelServing } from './serving.js';

/** What the models role takes from the module context (roles do not import the module manager). */
export interface ModelsModuleContext {
  config: Config;
  log: Logger;
  metrics: Registry;
  version: string;
  app: FastifyInstance;
  ready(): Promise<true | string>;
  onStop(fn: () => Promise<void> | void): void;
  /** The gateway's authentication when it runs in this process (admins for the repository, users for inference). */
  auth?: UserAuth;
}

/** Loads the model repository and registers the /models routes. */
export async function startModelServing(ctx: ModelsModuleContext): Promise<ModelServing> {
  const log = ctx.log.child({ module: 'models' });
  const serving = new ModelServing(ctx.config.models, log, ctx.metrics);
  ctx.onStop(() => serving.close());
  await serving.loadAll();
  await ctx.app.register(modelsRoutes, {
    serving,
    version: ctx.version,
    ready: () => ctx.ready(),
    internalToken: ctx.config.auth.internalToken,
    auth: ctx.auth,
    inference: ctx.config.models.inference,
  });
  return serving;
}
