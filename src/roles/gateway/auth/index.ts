// What other gateway routes (documents, search, chats under /api/workspaces/{ws}/…) use from auth.
export { authenticate, guardWorkspaceRoutes, principalOf, requireAdmin, requireWorkspace } from './plugin.js';
export { AuthService, roleAtLeast, type Principal, type WorkspaceAccess } from './service.js';
export { initAuth } from './module.js';
export type { WorkspaceRole } from '../workspaces/repository.js';
