import { z } from 'zod';
import { fastResponse } from '../../../http/serializer.js';
import type { ApiKeyRow, UserRow } from './repositories.js';

// Request and response bodies of the auth routes; they also produce the OpenAPI document.

const Email = z.email().max(254);
const Timestamp = z.string().describe('ISO 8601 timestamp');

export const User = z.object({
  id: z.uuid(),
  email: z.string(),
  name: z.string(),
  role: z.enum(['admin', 'member']),
  disabled: z.boolean(),
  createdAt: Timestamp,
});
export type User = z.infer<typeof User>;

export const toUser = (u: UserRow): User => ({ id: u.id, email: u.email, name: u.name, role: u.role, disabled: u.disabled, createdAt: u.createdAt.toISOString() });

export const SignupRequest = z.object({
  email: Email,
  password: z.string().min(8, 'at least 8 characters').max(1024),
  name: z.string().max(200).optional(),
  invite: z.string().max(200).optional().describe('invite token (when DOCUPOD_SIGNUP=invite)'),
});
export type SignupRequest = z.infer<typeof SignupRequest>;

export const LoginRequest = z.object({ email: Email, password: z.string().min(1).max(1024) });
export type LoginRequest = z.infer<typeof LoginRequest>;

export const TokenResponse = z.object({
  accessToken: z.string(),
  refreshToken: z.string().describe('opaque; works once: each refresh returns a new one'),
  tokenType: z.literal('Bearer'),
  expiresIn: z.number().int().describe('access token lifetime in seconds'),
  user: User,
});
export type TokenResponse = z.infer<typeof TokenResponse>;

export const RefreshRequest = z.object({ refreshToken: z.string().min(1).max(200) });
export type RefreshRequest = z.infer<typeof RefreshRequest>;

export const Membership = z.object({
  workspace: z.object({ id: z.uuid(), slug: z.string(), name: z.string() }),
  role: z.enum(['owner', 'editor', 'viewer']),
});

// Every client asks for this on start and often after: serialised by fast-json-stringify (see http/serializer.ts).
export const MeResponse = fastResponse(z.object({
  user: User,
  via: z.enum(['jwt', 'apikey', 'local']),
  keyId: z.uuid().optional(),
  /** null: not limited; otherwise the API key reaches only these workspaces. */
  workspaceIds: z.array(z.uuid()).nullable(),
  memberships: z.array(Membership),
}));

export const InviteRequest = z.object({ email: Email });
export const InviteResponse = z.object({ email: z.string(), token: z.string().describe('shown once'), expiresAt: Timestamp });

export const CreateUserRequest = z.object({
  email: Email,
  password: z.string().min(8, 'at least 8 characters').max(1024),
  name: z.string().max(200).optional(),
  role: z.enum(['admin', 'member']).default('member'),
});

export const UpdateUserRequest = z.object({
  disabled: z.boolean().optional(),
  role: z.enum(['admin', 'member']).optional(),
});

export const ApiKey = z.object({
  id: z.uuid(),
  name: z.string(),
  prefix: z.string().describe('the first characters of the key, to tell keys apart'),
  workspaceIds: z.array(z.uuid()).nullable().describe('null: every workspace the owner can reach'),
  expiresAt: Timestamp.nullable(),
  lastUsedAt: Timestamp.nullable(),
  revokedAt: Timestamp.nullable(),
  createdAt: Timestamp,
});
export type ApiKey = z.infer<typeof ApiKey>;

export const toApiKey = (k: ApiKeyRow): ApiKey => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  workspaceIds: k.workspaceIds ?? null,
  expiresAt: k.expiresAt?.toISOString() ?? null,
  lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
  revokedAt: k.revokedAt?.toISOString() ?? null,
  createdAt: k.createdAt.toISOString(),
});

export const CreateApiKeyRequest = z.object({
  name: z.string().trim().min(1).max(100),
  workspaces: z.array(z.string().min(1).max(100)).max(100).optional().describe('slugs or ids; omitted: every workspace you can reach'),
  expiresInDays: z.number().int().min(1).max(3650).optional(),
});
export const CreatedApiKey = ApiKey.extend({ key: z.string().describe('dp_…; shown once, store it now') });

export const IdParams = z.object({ id: z.string().min(1).max(100) });
