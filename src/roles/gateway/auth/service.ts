import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Config } from '../../../config/schema.js';
import { DocupodError, Problems, fail } from '../../../core/errors.js';
import type { Logger } from '../../../observability/logger.js';
import type { Database, Db } from '../../../storage/database.js';
import { isUniqueViolation } from '../../../storage/errors.js';
import { MembersRepo, WorkspacesRepo, isUuid, type WorkspaceRole, type WorkspaceRow } from '../workspaces/repository.js';
import { hashPassword, needsRehash, verifyPassword } from './password.js';
import {
  ApiKeysRepo,
  InvitesRepo,
  RateCountersRepo,
  RefreshTokensRepo,
  SettingsRepo,
  UsersRepo,
  type ApiKeyRow,
  type UserRow,
} from './repositories.js';
import { API_KEY_PREFIX, newApiKey, randomToken, sha256 } from './secrets.js';
import { AccessTokens } from './tokens.js';
import { TtlCache } from './cache.js';
import { LOCAL_TOKEN_PREFIX, LocalOperatorToken, NO_PASSWORD, OPERATOR_EMAIL } from './local-operator.js';

/** Who is calling: set on every authenticated request. */
export interface Principal {
  userId: string;
  role: 'admin' | 'member';
  /** local: the local operator token of server.json (local-operator.ts). */
  via: 'jwt' | 'apikey' | 'local';
  keyId?: string;
  /** null: every workspace the user belongs to; otherwise the API key is limited to these. */
  workspaceIds: string[] | null;
}

export interface WorkspaceAccess {
  workspace: WorkspaceRow;
  role: WorkspaceRole;
}

/** A user's workspaces as /api/me and /v1/models list them. */
export type Memberships = Array<{ workspace: WorkspaceRow; role: WorkspaceRole }>;

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  user: UserRow;
}

const ROLE_RANK: Record<WorkspaceRole, number> = { viewer: 1, editor: 2, owner: 3 };
export const roleAtLeast = (role: WorkspaceRole, min: WorkspaceRole) => ROLE_RANK[role] >= ROLE_RANK[min];

const INVITE_TTL_MS = 7 * 86400e3;
// Serialises sign-ups so two at once on an empty instance cannot both become admin.
const SIGNUP_LOCK_KEY = 7_305_118_234;

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

/** An authenticated caller and their user row. */
export interface Authenticated {
  principal: Principal;
  user: UserRow;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const bearerToken = (header: string | undefined) => (header === undefined ? undefined : BEARER.exec(header)?.[1]);
const jwtPrincipal = (user: UserRow): Authenticated => ({ principal: { userId: user.id, role: user.role, via: 'jwt', workspaceIds: null }, user });
const keyPrincipal = (user: UserRow, row: ApiKeyRow): Authenticated => ({
  principal: { userId: user.id, role: user.role, via: 'apikey', keyId: row.id, workspaceIds: row.workspaceIds ?? null },
  user,
});
const localPrincipal = (user: UserRow): Authenticated => ({ principal: { userId: user.id, role: 'admin', via: 'local', workspaceIds: null }, user });
const membershipKey = (p: Principal) => `${p.userId}|${p.workspaceIds?.join(',') ?? '*'}`;

export interface AuthDeps {
  database: Database;
  config: Config;
  log?: Logger;
  /** Accept this token as the local operator (see local-operator.ts); the data directory's owner writes it out. */
  localToken?: string;
}

/** Users, sessions (access + refresh tokens), API keys, invites and the login rate limit. */
export class AuthService {
  readonly kind = 'auth' as const;
  readonly config: Config;
  private readonly db: Db;
  private readonly users: UsersRepo;
  private readonly refreshTokens: RefreshTokensRepo;
  private readonly apiKeys: ApiKeysRepo;
  private readonly rate: RateCountersRepo;
  readonly accessTokens: AccessTokens;
  private dummyHash?: Promise<string>;
  // In-process caches of what every request looks up; see cache.ts for how long a change made elsewhere can take.
  private readonly userCache: TtlCache<string, UserRow>;
  private readonly keyCache: TtlCache<string, ApiKeyRow>;
  private readonly membershipCache: TtlCache<string, Memberships>;
  private readonly accessCache: TtlCache<string, WorkspaceAccess | null>;
  private readonly operatorCache: TtlCache<'operator', UserRow>;
  private readonly local?: LocalOperatorToken;

  constructor(private readonly deps: AuthDeps) {
    this.config = deps.config;
    this.db = deps.database.db;
    this.users = new UsersRepo(this.db);
    this.refreshTokens = new RefreshTokensRepo(this.db);
    this.apiKeys = new ApiKeysRepo(this.db);
    this.rate = new RateCountersRepo(this.db);
    this.accessTokens = new AccessTokens({ secret: deps.config.auth.jwtSecret, ttlMs: deps.config.auth.accessTokenTtlMs, settings: new SettingsRepo(this.db) });
    const ttl = deps.config.auth.cacheTtlMs;
    this.userCache = new TtlCache(ttl);
    this.keyCache = new TtlCache(ttl);
    this.membershipCache = new TtlCache(ttl);
    this.accessCache = new TtlCache(ttl);
    this.operatorCache = new TtlCache(ttl);
    if (deps.localToken) this.local = new LocalOperatorToken(deps.localToken);
  }

  /** The local operator token this gateway accepts, if any (written to server.json by the process that serves). */
  get localToken(): string | undefined {
    return this.local?.token;
  }

  // ── cache invalidation: call after every change that must apply to the next request ───────────────────────────

  /** After a change to a user (disabled, role) or to what they may reach: their cached user, keys and access go. */
  invalidateUser(userId: string): void {
    this.userCache.delete(userId);
    this.keyCache.deleteWhere((k) => k.userId === userId);
    this.membershipCache.deleteWhere((_, key) => key.startsWith(`${userId}|`));
    this.accessCache.deleteWhere((_, key) => key.startsWith(`${userId}|`));
    this.operatorCache.clear();
  }

  /**
   * After any change to workspaces or memberships (created, renamed, deleted, member added, re-roled, removed). These
   * are rare next to reads, so everything membership-related is dropped rather than tracked precisely.
   */
  invalidateWorkspaces(): void {
    this.membershipCache.clear();
    this.accessCache.clear();
  }

  /** Everything; for changes made behind this process's back (tests that write SQL, an admin tool). */
  invalidateAll(): void {
    this.userCache.clear();
    this.keyCache.clear();
    this.operatorCache.clear();
    this.invalidateWorkspaces();
  }

  /** A user by id for authentication, through the cache. */
  private async cachedUser(id: string): Promise<UserRow | undefined> {
    const hit = this.userCache.get(id);
    if (hit) return hit;
    const gen = this.userCache.generation;
    const user = await this.users.byId(id);
    if (user) this.userCache.set(id, user, gen);
    return user;
  }

  // ── users ──────────────────────────────────────────────────────────────────────────────────────────────────────

  /** Public sign-up: the first user becomes admin; later ones per DOCUPOD_SIGNUP (open, invite or closed). */
  async signup(input: { email: string; password: string; name?: string; invite?: string }): Promise<UserRow> {
    const email = normalizeEmail(input.email);
    if (email === OPERATOR_EMAIL) throw fail.badRequest(`${OPERATOR_EMAIL} is reserved for the local operator`);
    const passwordHash = await hashPassword(input.password); // before the transaction: it takes a while
    const mode = this.config.auth.signup;
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${SIGNUP_LOCK_KEY})`);
      const users = new UsersRepo(tx);
      // The built-in local operator is nobody: the first person to sign up still becomes the admin.
      const first = (await users.count(OPERATOR_EMAIL)) === 0;
      if (!first || mode !== 'open') {
        if (mode === 'closed')
          throw fail.forbidden('sign-up is closed on this instance: an admin must create the account (docupod user create, or POST /api/users)');
        if (mode === 'invite') {
          if (!input.invite) throw fail.forbidden('sign-up needs an invite on this instance: ask an admin for one (POST /api/invites)');
          if (!(await new InvitesRepo(tx).consume(sha256(input.invite), email)))
            throw fail.forbidden('the invite is invalid, already used, expired or for another e-mail address');
        }
      }
      if (await users.byEmail(email)) throw fail.conflict('an account with this e-mail address already exists');
      try {
        return await users.insert({ email, name: input.name?.trim() ?? '', passwordHash, role: first ? 'admin' : 'member' });
      } catch (err) {
        if (isUniqueViolation(err)) throw fail.conflict('an account with this e-mail address already exists');
        throw err;
      }
    }).finally(() => this.operatorCache.clear()); // a first admin may have appeared: the local operator acts as them
  }

  /** Admin/CLI path: no sign-up policy applies. */
  async createUser(input: { email: string; password: string; name?: string; role: 'admin' | 'member' }): Promise<UserRow> {
    const email = normalizeEmail(input.email);
    if (email === OPERATOR_EMAIL) throw fail.badRequest(`${OPERATOR_EMAIL} is reserved for the local operator`);
    const passwordHash = await hashPassword(input.password);
    if (await this.users.byEmail(email)) throw fail.conflict('an account with this e-mail address already exists');
    try {
      return await this.users.insert({ email, name: input.name?.trim() ?? '', passwordHash, role: input.role });
    } catch (err) {
      if (isUniqueViolation(err)) throw fail.conflict('an account with this e-mail address already exists');
      throw err;
    } finally {
      this.operatorCache.clear();
    }
  }

  /**
   * Disables or re-enables an account, or changes its instance role. Applies at once on this pod (its tokens, keys
   * and refresh tokens stop working), within DOCUPOD_AUTH_CACHE_TTL on other replicas.
   */
  async updateUser(id: string, patch: { disabled?: boolean; role?: 'admin' | 'member' }): Promise<UserRow> {
    if (!isUuid(id)) throw fail.notFound(`user ${id}`);
    const row = await this.users.update(id, patch);
    this.invalidateUser(id);
    if (!row) throw fail.notFound(`user ${id}`);
    return row;
  }

  async listUsers(): Promise<UserRow[]> {
    return this.users.list();
  }

  async userById(id: string): Promise<UserRow | undefined> {
    return this.users.byId(id);
  }

  async userByEmail(email: string): Promise<UserRow | undefined> {
    return this.users.byEmail(normalizeEmail(email));
  }

  async createInvite(createdBy: string, email: string): Promise<{ token: string; email: string; expiresAt: Date }> {
    const token = randomToken(32);
    const expiresAt = new Date(Date.now() + INVITE_TTL_MS);
    await new InvitesRepo(this.db).insert({ email: normalizeEmail(email), tokenHash: sha256(token), createdBy, expiresAt });
    return { token, email: normalizeEmail(email), expiresAt };
  }

  // ── sessions ───────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Failed attempts are counted per (e-mail, client address) in a fixed window shared by every gateway pod; past the
   * limit the caller gets 429 until the window ends, even with the right password. The counter is bumped before the
   * password is checked (and cleared on success), so parallel guesses cannot slip past the limit.
   */
  async login(input: { email: string; password: string }, ip: string): Promise<TokenPair> {
    const email = normalizeEmail(input.email);
    const { loginWindowMs, loginMaxAttempts } = this.config.auth;
    const now = Date.now();
    const windowStart = new Date(Math.floor(now / loginWindowMs) * loginWindowMs);
    const key = `login:${email}:${ip}`;
    if ((await this.rate.increment(key, windowStart)) > loginMaxAttempts) {
      const retryAfter = Math.max(1, Math.ceil((windowStart.getTime() + loginWindowMs - now) / 1000));
      throw new DocupodError(Problems.rateLimited, `too many failed logins for this account from your address; try again in ${retryAfter} s`, { retryAfter });
    }
    const user = await this.users.byEmail(email);
    // Hash even for an unknown e-mail so the response time does not reveal which addresses have accounts.
    const ok = await verifyPassword(input.password, user?.passwordHash ?? (await this.dummy()));
    if (!user || !ok) {
      if (Math.random() < 0.02) await this.rate.deleteOlderThan(new Date(windowStart.getTime() - loginWindowMs));
      throw fail.unauthorized('invalid e-mail or password');
    }
    await this.rate.clear(key);
    if (Math.random() < 0.01) await this.refreshTokens.deleteExpired(); // occasional sweep; no scheduler needed
    if (user.disabled) throw fail.forbidden('this account is disabled');
    if (needsRehash(user.passwordHash)) await this.users.setPasswordHash(user.id, await hashPassword(input.password));
    return this.issue(user, randomUUID());
  }

  /** A new login session (refresh token family) for a user who just proved who they are, e.g. at sign-up. */
  async startSession(user: UserRow): Promise<TokenPair> {
    return this.issue(user, randomUUID());
  }

  private dummy(): Promise<string> {
    this.dummyHash ??= hashPassword(randomToken(16));
    return this.dummyHash;
  }

  private async issue(user: UserRow, familyId: string, tokens: RefreshTokensRepo = this.refreshTokens): Promise<TokenPair> {
    const refreshToken = randomToken(32);
    await tokens.insert({ userId: user.id, familyId, tokenHash: sha256(refreshToken), expiresAt: new Date(Date.now() + this.config.auth.refreshTokenTtlMs) });
    return { accessToken: await this.accessTokens.sign(user.id), refreshToken, tokenType: 'Bearer', expiresIn: this.accessTokens.ttlSeconds, user };
  }

  /**
   * Rotation with reuse detection: each refresh token works once. Presenting one that was already used means it
   * leaked (or a client raced itself), so the whole family is revoked and the legitimate holder must log in again.
   */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const invalid = () => fail.unauthorized('invalid or expired refresh token');
    const row = await this.refreshTokens.byHash(sha256(refreshToken));
    if (!row || row.revokedAt) throw invalid();
    if (row.usedAt) {
      await this.refreshTokens.revokeFamily(row.familyId);
      this.deps.log?.warn({ userId: row.userId, familyId: row.familyId }, 'refresh token reused: session family revoked');
      throw fail.unauthorized('refresh token already used: every session from that login is now revoked; log in again');
    }
    if (row.expiresAt.getTime() <= Date.now()) throw invalid();
    const user = await this.users.byId(row.userId);
    if (!user || user.disabled) throw invalid();
    return this.db.transaction(async (tx) => {
      const tokens = new RefreshTokensRepo(tx);
      if (!(await tokens.markUsed(row.id))) {
        // Lost a race with another refresh of the same token: treat it as reuse too.
        await tokens.revokeFamily(row.familyId);
        throw fail.unauthorized('refresh token already used: every session from that login is now revoked; log in again');
      }
      return this.issue(user, row.familyId, tokens);
    });
  }

  /** Ends the session the refresh token belongs to (its whole family). Unknown tokens are ignored. */
  async logout(refreshToken: string): Promise<void> {
    const row = await this.refreshTokens.byHash(sha256(refreshToken));
    if (row) await this.refreshTokens.revokeFamily(row.familyId);
  }

  // ── authentication of requests ─────────────────────────────────────────────────────────────────────────────────

  /** A principal for an `Authorization: Bearer …` header carrying an access token or an API key; 401 otherwise. */
  async authenticate(header: string | undefined): Promise<Principal> {
    return (await this.authenticateWithUser(header)).principal;
  }

  /** authenticate, plus the user row it loaded, so a handler that needs the user (/api/me) does not load it again. */
  async authenticateWithUser(header: string | undefined): Promise<Authenticated> {
    const token = bearerToken(header);
    if (!token) throw fail.unauthorized('authentication required: send Authorization: Bearer <access token or API key>');
    if (this.local?.matches(token)) return localPrincipal(await this.operatorUser());
    if (token.startsWith(API_KEY_PREFIX)) return this.authenticateKey(token);
    const userId = await this.accessTokens.verify(token);
    const user = userId && isUuid(userId) ? await this.cachedUser(userId) : undefined;
    if (!user || user.disabled) throw fail.unauthorized('invalid or expired access token');
    return jwtPrincipal(user);
  }

  /**
   * authenticateWithUser's answer when everything it needs is in the caches (the token verified before, the key and
   * user loaded within DOCUPOD_AUTH_CACHE_TTL, no last-used touch due): the same checks, without a promise. Undefined
   * means "ask authenticateWithUser", which also gives every 401; never a different verdict.
   */
  authenticateFromCache(header: string | undefined): Authenticated | undefined {
    const token = bearerToken(header);
    if (!token) return undefined;
    if (token.startsWith(LOCAL_TOKEN_PREFIX)) {
      const user = this.operatorCache.get('operator');
      return user && this.local?.matches(token) ? localPrincipal(user) : undefined;
    }
    if (token.startsWith(API_KEY_PREFIX)) {
      const row = this.keyCache.get(sha256(token));
      const now = Date.now();
      if (!row || row.revokedAt || (row.expiresAt && row.expiresAt.getTime() <= now)) return undefined;
      if (!row.lastUsedAt || now - row.lastUsedAt.getTime() > 60e3) return undefined; // a touch is due
      const user = this.userCache.get(row.userId);
      return user && !user.disabled ? keyPrincipal(user, row) : undefined;
    }
    const userId = this.accessTokens.verifiedSubject(token);
    // No isUuid(userId) here: the user cache holds only rows loaded by their (uuid) id, so any other subject misses.
    const user = userId === undefined ? undefined : this.userCache.get(userId);
    return user && !user.disabled ? jwtPrincipal(user) : undefined;
  }

  /** Who the local operator acts as: the first admin, else the built-in operator user (created on first use). */
  private async operatorUser(): Promise<UserRow> {
    const hit = this.operatorCache.get('operator');
    if (hit) return hit;
    const gen = this.operatorCache.generation;
    const user =
      (await this.users.firstAdmin(OPERATOR_EMAIL)) ??
      (await this.users.insertIfAbsent({ email: OPERATOR_EMAIL, name: 'local operator', passwordHash: NO_PASSWORD, role: 'admin' }));
    this.operatorCache.set('operator', user, gen);
    return user;
  }

  private async authenticateKey(key: string): Promise<Authenticated> {
    const hash = sha256(key);
    let row = this.keyCache.get(hash);
    if (!row) {
      const gen = this.keyCache.generation;
      row = await this.apiKeys.byHash(hash);
      if (row) this.keyCache.set(hash, row, gen);
    }
    const now = Date.now();
    if (!row || row.revokedAt || (row.expiresAt && row.expiresAt.getTime() <= now)) throw fail.unauthorized('invalid, revoked or expired API key');
    const user = await this.cachedUser(row.userId);
    if (!user || user.disabled) throw fail.unauthorized('invalid, revoked or expired API key');
    if (!row.lastUsedAt || now - row.lastUsedAt.getTime() > 60e3) {
      // At most one write a minute per key: the cached row remembers the touch, so the next minute of requests
      // (on this pod) skips it without a query.
      row.lastUsedAt = new Date(now);
      await this.apiKeys.touch(row.id);
    }
    return keyPrincipal(user, row);
  }

  /** The principal's workspaces and roles (an API key's scope applied), through the cache. */
  async memberships(principal: Principal): Promise<Memberships> {
    const key = membershipKey(principal);
    const hit = this.membershipCache.get(key);
    if (hit) return hit;
    const gen = this.membershipCache.generation;
    const list = await new WorkspacesRepo(this.db).listForUser(principal.userId, principal.workspaceIds ?? undefined);
    this.membershipCache.set(key, list, gen);
    return list;
  }

  /** memberships() when the cache holds them (no promise), else undefined. */
  membershipsFromCache(principal: Principal): Memberships | undefined {
    return this.membershipCache.get(membershipKey(principal));
  }

  /**
   * The workspace `ref` (slug or id) as this principal sees it: undefined when it does not exist, the user is not a
   * member, or an API key is not scoped to it. Callers answer all three with the same 404.
   */
  async workspaceAccess(principal: Principal, ref: string): Promise<WorkspaceAccess | undefined> {
    // The local operator owns the data directory and so every workspace in it (as the embedded CLI always could).
    if (principal.via === 'local') {
      const workspace = await new WorkspacesRepo(this.db).byRef(ref);
      return workspace ? { workspace, role: 'owner' } : undefined;
    }
    // Cached per user and ref; the key's scope is applied after the cache, so keys of one user share entries.
    const key = `${principal.userId}|${ref}`;
    let access = this.accessCache.get(key);
    if (access === undefined) {
      const gen = this.accessCache.generation;
      access = await this.loadWorkspaceAccess(principal.userId, ref);
      this.accessCache.set(key, access, gen);
    }
    if (!access) return undefined;
    if (principal.workspaceIds && !principal.workspaceIds.includes(access.workspace.id)) return undefined;
    return access;
  }

  private async loadWorkspaceAccess(userId: string, ref: string): Promise<WorkspaceAccess | null> {
    const workspace = await new WorkspacesRepo(this.db).byRef(ref);
    if (!workspace) return null;
    const role = await new MembersRepo(this.db).role(workspace.id, userId);
    return role ? { workspace, role } : null;
  }

  // ── API keys ───────────────────────────────────────────────────────────────────────────────────────────────────

  /** Creates a key for `userId`; the key itself is returned only here. `workspaces` are slugs or ids the user belongs to. */
  async createApiKey(
    userId: string,
    input: { name: string; workspaces?: string[]; expiresInDays?: number },
    /** When the caller is itself a scoped key, the new key cannot reach further than it. */
    within: string[] | null = null,
  ): Promise<{ key: string; row: ApiKeyRow }> {
    let workspaceIds: string[] | null = within;
    if (input.workspaces && input.workspaces.length > 0) {
      workspaceIds = [];
      for (const ref of input.workspaces) {
        const access = await this.workspaceAccess({ userId, role: 'member', via: 'jwt', workspaceIds: within }, ref);
        if (!access) throw fail.notFound(`workspace ${ref}`);
        if (!workspaceIds.includes(access.workspace.id)) workspaceIds.push(access.workspace.id);
      }
    }
    const { key, prefix, hash } = newApiKey();
    const expiresAt = input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86400e3) : null;
    const row = await this.apiKeys.insert({ userId, name: input.name.trim(), prefix, keyHash: hash, workspaceIds, expiresAt });
    return { key, row };
  }

  async listApiKeys(userId: string): Promise<ApiKeyRow[]> {
    return this.apiKeys.listForUser(userId);
  }

  async revokeApiKey(userId: string, id: string): Promise<void> {
    if (!isUuid(id)) throw fail.notFound(`API key ${id}`);
    const revoked = await this.apiKeys.revoke(userId, id);
    this.keyCache.deleteWhere((k) => k.id === id);
    if (!revoked) throw fail.notFound(`API key ${id}`);
  }
}

// Re-exported for the gateway's other services; the check itself lives with the storage layer that raises it.
export { isUniqueViolation };
