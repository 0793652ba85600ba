import { z } from 'zod';
import type { MemberView, WorkspaceRole, WorkspaceRow } from './repository.js';

export const WorkspaceRoleSchema = z.enum(['owner', 'editor', 'viewer']);

export const Workspace = z.object({
  id: z.uuid(),
  slug: z.string(),
  name: z.string(),
  description: z.string(),
  createdAt: z.string().describe('ISO 8601 timestamp'),
  role: WorkspaceRoleSchema.describe("the caller's role in it"),
});
export type Workspace = z.infer<typeof Workspace>;

export const toWorkspace = (w: WorkspaceRow, role: WorkspaceRole): Workspace => ({
  id: w.id,
  slug: w.slug,
  name: w.name,
  description: w.description,
  createdAt: w.createdAt.toISOString(),
  role,
});

export const CreateWorkspaceRequest = z.object({
  name: z.string().trim().min(1).max(200),
  slug: z.string().min(1).max(63).optional().describe('default: derived from the name'),
  description: z.string().max(2000).optional(),
});

export const UpdateWorkspaceRequest = z
  .object({ name: z.string().trim().min(1).max(200).optional(), description: z.string().max(2000).optional() })
  .refine((v) => v.name !== undefined || v.description !== undefined, 'give name or description');

export const WsParams = z.object({ ws: z.string().min(1).max(100).describe('workspace slug or id') });
export const MemberParams = WsParams.extend({ userId: z.uuid() });

export const Member = z.object({
  userId: z.uuid(),
  email: z.string(),
  name: z.string(),
  role: WorkspaceRoleSchema,
  createdAt: z.string(),
});
export const toMember = (m: MemberView) => ({ ...m, createdAt: m.createdAt.toISOString() });

export const AddMemberRequest = z.object({ email: z.email().max(254), role: WorkspaceRoleSchema });
export const UpdateMemberRequest = z.object({ role: WorkspaceRoleSchema });
