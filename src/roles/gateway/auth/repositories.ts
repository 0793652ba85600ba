import { randomUUID } from 'node:crypto';
import { and, asc, eq, gt, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../../../storage/database.js';
import { apiKeys, instanceSettings, invites, rateCounters, refreshTokens, users } from '../../../storage/schema.js';

// One small repository per table. Each takes the Drizzle handle (or a transaction, which is also a Db).

export type UserRow = typeof users.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type RefreshTokenRow = typeof refreshTokens.$inferSelect;

export class UsersRepo {
  constructor(private readonly db: Db) {}

  async byEmail(email: string): Promise<UserRow | undefined> {
    const [row] = await this.db.select().from(users).where(sql`lower(${users.email}) = lower(${email})`).limit(1);
    return row;
  }

  async byId(id: string): Promise<UserRow | undefined> {
    const [row] = await this.db.select().from(users).where(eq(users.id, id)).limit(1);
    return row;
  }

  /** Every account, or every one but `exceptEmail`. */
  async count(exceptEmail?: string): Promise<number> {
    const [row] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(users)
      .where(exceptEmail === undefined ? undefined : sql`lower(${users.email}) <> lower(${exceptEmail})`);
    return row?.n ?? 0;
  }

  async insert(u: { email: string; name: string; passwordHash: string; role: 'admin' | 'member' }): Promise<UserRow> {
    const [row] = await this.db.insert(users).values({ id: randomUUID(), ...u }).returning();
    return row!;
  }

  /** Inserts the account unless its e-mail exists, and returns the row that is there (safe against a concurrent insert). */
  async insertIfAbsent(u: { email: string; name: string; passwordHash: string; role: 'admin' | 'member' }): Promise<UserRow> {
    await this.db.insert(users).values({ id: randomUUID(), ...u }).onConflictDoNothing();
    return (await this.byEmail(u.email))!;
  }

  /** The oldest enabled admin other than `exceptEmail`. */
  async firstAdmin(exceptEmail: string): Promise<UserRow | undefined> {
    const [row] = await this.db
      .select()
      .from(users)
      .where(and(eq(users.role, 'admin'), eq(users.disabled, false), sql`lower(${users.email}) <> lower(${exceptEmail})`))
      .orderBy(asc(users.createdAt), asc(users.email))
      .limit(1);
    return row;
  }

  async list(): Promise<UserRow[]> {
    return this.db.select().from(users).orderBy(asc(users.createdAt), asc(users.email));
  }

  async update(id: string, patch: { disabled?: boolean; role?: 'admin' | 'member' }): Promise<UserRow | undefined> {
    if (patch.disabled === undefined && patch.role === undefined) return this.byId(id);
    const [row] = await this.db.update(users).set(patch).where(eq(users.id, id)).returning();
    return row;
  }

  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.db.update(users).set({ passwordHash }).where(eq(users.id, id));
  }
}

export class RefreshTokensRepo {
  constructor(private readonly db: Db) {}

  async insert(t: { userId: string; familyId: string; tokenHash: string; expiresAt: Date }): Promise<void> {
    await this.db.insert(refreshTokens).values({ id: randomUUID(), ...t });
  }

  async byHash(tokenHash: string): Promise<RefreshTokenRow | undefined> {
    const [row] = await this.db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash)).limit(1);
    return row;
  }

  /** Marks a token used only if nobody did first; false means it was already used (or revoked) meanwhile. */
  async markUsed(id: string): Promise<boolean> {
    const rows = await this.db
      .update(refreshTokens)
      .set({ usedAt: sql`now()` })
      .where(and(eq(refreshTokens.id, id), isNull(refreshTokens.usedAt), isNull(refreshTokens.revokedAt)))
      .returning({ id: refreshTokens.id });
    return rows.length === 1;
  }

  async revokeFamily(familyId: string): Promise<void> {
    await this.db.update(refreshTokens).set({ revokedAt: sql`now()` }).where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt)));
  }

  /** Tokens expired for a day are useless even for reuse detection. */
  async deleteExpired(): Promise<void> {
    await this.db.delete(refreshTokens).where(lt(refreshTokens.expiresAt, sql`now() - interval '1 day'`));
  }
}

export class ApiKeysRepo {
  constructor(private readonly db: Db) {}

  async insert(k: { userId: string; name: string; prefix: string; keyHash: string; workspaceIds: string[] | null; expiresAt: Date | null }): Promise<ApiKeyRow> {
    const [row] = await this.db.insert(apiKeys).values({ id: randomUUID(), ...k }).returning();
    return row!;
  }

  async byHash(keyHash: string): Promise<ApiKeyRow | undefined> {
    const [row] = await this.db.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash)).limit(1);
    return row;
  }

  async listForUser(userId: string): Promise<ApiKeyRow[]> {
    return this.db.select().from(apiKeys).where(eq(apiKeys.userId, userId)).orderBy(asc(apiKeys.createdAt));
  }

  /** Revokes only the caller's own key (idempotent); false when they have no such key. */
  async revoke(userId: string, id: string): Promise<boolean> {
    const rows = await this.db
      .update(apiKeys)
      .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
      .where(and(eq(apiKeys.id, id), eq(apiKeys.userId, userId)))
      .returning({ id: apiKeys.id });
    return rows.length === 1;
  }

  /** At most one write a minute per key; the condition also keeps concurrent pods from all writing. */
  async touch(id: string): Promise<void> {
    await this.db
      .update(apiKeys)
      .set({ lastUsedAt: sql`now()` })
      .where(and(eq(apiKeys.id, id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, sql`now() - interval '1 minute'`))));
  }
}

export class InvitesRepo {
  constructor(private readonly db: Db) {}

  async insert(i: { email: string; tokenHash: string; createdBy: string; expiresAt: Date }): Promise<{ id: string }> {
    const [row] = await this.db.insert(invites).values({ id: randomUUID(), ...i }).returning({ id: invites.id });
    return row!;
  }

  /** Consumes a valid invite for this e-mail; false when missing, used, expired or for another address. */
  async consume(tokenHash: string, email: string): Promise<boolean> {
    const rows = await this.db
      .update(invites)
      .set({ usedAt: sql`now()` })
      .where(
        and(
          eq(invites.tokenHash, tokenHash),
          isNull(invites.usedAt),
          gt(invites.expiresAt, sql`now()`),
          sql`lower(${invites.email}) = lower(${email})`,
        ),
      )
      .returning({ id: invites.id });
    return rows.length === 1;
  }
}

export class SettingsRepo {
  constructor(private readonly db: Db) {}

  /** Stores `value` unless the key exists, then returns what is stored, so concurrent pods agree on one value. */
  async getOrInit(key: string, value: string): Promise<string> {
    await this.db.insert(instanceSettings).values({ key, value }).onConflictDoNothing({ target: instanceSettings.key });
    const [row] = await this.db.select({ value: instanceSettings.value }).from(instanceSettings).where(eq(instanceSettings.key, key));
    return row!.value;
  }
}

export class RateCountersRepo {
  constructor(private readonly db: Db) {}

  async increment(key: string, windowStart: Date): Promise<number> {
    const [row] = await this.db
      .insert(rateCounters)
      .values({ key, windowStart, count: 1 })
      .onConflictDoUpdate({ target: [rateCounters.key, rateCounters.windowStart], set: { count: sql`${rateCounters.count} + 1` } })
      .returning({ count: rateCounters.count });
    return row!.count;
  }

  async clear(key: string): Promise<void> {
    await this.db.delete(rateCounters).where(eq(rateCounters.key, key));
  }

  async deleteOlderThan(before: Date): Promise<void> {
    await this.db.delete(rateCounters).where(lt(rateCounters.windowStart, before));
  }
}
