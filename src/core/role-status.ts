import { z } from 'zod';

/** What every role answers to `status`: the gateway aggregates these for split deployments. */
export const RoleStatus = z.object({
  role: z.string(),
  version: z.string(),
  ready: z.boolean(),
  detail: z.string().optional(),
});
export type RoleStatus = z.infer<typeof RoleStatus>;

export const statusMethod = { input: z.object({}).default({}), output: RoleStatus, description: 'role health and version' };

/** Builds a role's status answer from its readiness probe. */
export async function roleStatus(role: string, version: string, ready: () => Promise<true | string>): Promise<RoleStatus> {
  const r = await ready().catch((err: Error) => err.message);
  return { role, version, ready: r === true, ...(r === true ? {} : { detail: r }) };
}
