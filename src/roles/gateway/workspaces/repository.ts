import { randomUUID } from 'node:crypto';
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../../../storage/database.js';
import { users, workspaceMembers, workspaces } from '../../../storage/schema.js';

// Workspace and membership tables. Every membership query names its workspace_id: no method reads across workspaces.

export type WorkspaceRow = typeof workspaces.$inferSelect;
export type WorkspaceRole = 'owner' | 'editor' | 'viewer';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string) => UUID.test(s);

export class WorkspacesRepo {
  constructor(private readonly db: Db) {}

  /** `{ws}` in routes is a slug or an id; slugs can never look like a uuid, so the two cannot collide. */
  async byRef(ref: string): Promise<WorkspaceRow | undefined> {
    const where = isUuid(ref) ? eq(workspaces.id, ref.toLowerCase()) : eq(workspaces.slug, ref);
    const [row] = await this.db.select().from(workspaces).where(where).limit(1);
    return row;
  }

  async bySlug(slug: string): Promise<WorkspaceRow | undefined> {
    const [row] = await this.db.select().from(workspaces).where(eq(workspaces.slug, slug)).limit(1);
    return row;
  }

  async insert(w: { slug: string; name: string; description: string; createdBy: string }): Promise<WorkspaceRow> {
    const [row] = await this.db.insert(workspaces).values({ id: randomUUID(), ...w }).returning();
    return row!;
  }

  async update(id: string, patch: { name?: string; description?: string }): Promise<WorkspaceRow | undefined> {
    const [row] = await this.db.update(workspaces).set(patch).where(eq(workspaces.id, id)).returning();
    return row;
  }

  async delete(id: string): Promise<void> {
    await this.db.delete(workspaces).where(eq(workspaces.id, id));
  }

  /** Workspaces a user belongs to (optionally only some ids), with their role in each. */
  async listForUser(userId: string, onlyIds?: readonly string[]): Promise<Array<{ workspace: WorkspaceRow; role: WorkspaceRole }>> {
    if (onlyIds && onlyIds.length === 0) return [];
    const rows = await this.db
      .select({ workspace: workspaces, role: workspaceMembers.role })
      .from(workspaceMembers)
      .innerJoin(workspaces, eq(workspaces.id, workspaceMembers.workspaceId))
      .where(and(eq(workspaceMembers.userId, userId), onlyIds ? inArray(workspaces.id, [...onlyIds]) : undefined))
      .orderBy(asc(workspaces.name), asc(workspaces.slug));
    return rows;
  }
}

export interface MemberView {
  userId: string;
  email: string;
  name: string;
  role: WorkspaceRole;
  createdAt: Date;
}

export class MembersRepo {
  constructor(private readonly db: Db) {}

  async role(workspaceId: string, userId: string): Promise<WorkspaceRole | undefined> {
    const [row] = await this.db
      .select({ role: workspaceMembers.role })
      .from(workspaceMembers)
      .where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.userId, userId)));
    return row?.role;
  }

  async list(workspaceId: string): Promise<MemberView[]> {
    return this.db
      .select({ userId: users.id, email: users.email, name: users.name, role: workspaceMembers.role, createdAt: workspaceMembers.createdAt })
      .from(workspaceMembers)
      .innerJoin(users, eq(users.id, workspaceMembers.userId))
      .where(eq(workspaceMembers.workspaceId, workspaceId))
      .orderBy(asc(workspaceMembers.createdAt), asc(users.email));
  }

  async get(workspaceId: string, userId: string): Promise<MemberView | undefined> {
    const [row] = await this.db
      .select({ userId: users.id, email: users.email, name: users.name, role: workspaceMembers.role, createdAt: workspaceMembers.createdAt })
      .from(workspaceMembers)
      .innerJoin(users, eq(users.id, workspaceMembers.userId))
      .where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.userId, userId)));
    return row;
  }

  /** false when the user is already a member. */
  async add(workspaceId: string, userId: string, role: WorkspaceRole): Promise<boolean> {
    const rows = await this.db
      .insert(workspaceMembers)
      .values({ workspaceId, userId, role })
      .onConflictDoNothing()
      .returning({ userId: workspaceMembers.userId });
    return rows.length === 1;
  }

  async setRole(workspaceId: string, userId: string, role: WorkspaceRole): Promise<void> {
    await this.db
      .update(workspaceMembers)
      .set({ role })
      .where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.userId, userId)));
  }

  async remove(workspaceId: string, userId: string): Promise<void> {
    await this.db.delete(workspaceMembers).where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.userId, userId)));
  }

  /**
   * The owners of a workspace, row-locked until the transaction ends, so two owners demoting each other at once
   * cannot leave the workspace without one.
   */
  async lockOwners(workspaceId: string): Promise<string[]> {
    const rows = await this.db
      .select({ userId: workspaceMembers.userId })
      .from(workspaceMembers)
      .where(and(eq(workspaceMembers.workspaceId, workspaceId), eq(workspaceMembers.role, 'owner')))
      .for('update');
    return rows.map((r) => r.userId);
  }
}
