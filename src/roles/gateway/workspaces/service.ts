import { fail } from '../../../core/errors.js';
import type { Database, Db } from '../../../storage/database.js';
import { UsersRepo } from '../auth/repositories.js';
import { isUniqueViolation, type Principal } from '../auth/service.js';
import { MembersRepo, WorkspacesRepo, isUuid, type MemberView, type WorkspaceRole, type WorkspaceRow } from './repository.js';

/** A URL-safe slug from a display name: "Q3 Reports (EU)" → "q3-reports-eu". */
export function slugify(name: string): string {
  const s = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/g, '');
  return s || 'workspace';
}

export const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Workspaces and their members. Authorisation (who may call what) is decided by the routes via requireWorkspace. */
export class WorkspaceService {
  private readonly db: Db;
  private readonly workspaces: WorkspacesRepo;
  private readonly members: MembersRepo;

  /**
   * `changed` runs after every change to workspaces or memberships, before it is acknowledged: auth caches who may
   * reach which workspace, and a removed member must be locked out on the next request.
   */
  constructor(
    database: Database,
    private readonly changed: () => void = () => {},
  ) {
    this.db = database.db;
    this.workspaces = new WorkspacesRepo(this.db);
    this.members = new MembersRepo(this.db);
  }

  /** The creator becomes its owner. The slug comes from the name unless given; a taken slug is a 409. */
  async create(principal: Principal, input: { name: string; slug?: string; description?: string }): Promise<{ workspace: WorkspaceRow; role: WorkspaceRole }> {
    if (principal.workspaceIds) throw fail.forbidden('this API key is limited to some workspaces and cannot create new ones');
    const slug = input.slug ?? slugify(input.name);
    if (!SLUG.test(slug) || isUuid(slug)) throw fail.badRequest(`"${slug}" is not a valid slug: use a-z, 0-9 and dashes`);
    const taken = () => fail.conflict(`the workspace slug "${slug}" is taken; choose another name or pass a slug`);
    if (await this.workspaces.bySlug(slug)) throw taken();
    try {
      return await this.db.transaction(async (tx) => {
        const workspace = await new WorkspacesRepo(tx).insert({ slug, name: input.name.trim(), description: input.description ?? '', createdBy: principal.userId });
        await new MembersRepo(tx).add(workspace.id, principal.userId, 'owner');
        return { workspace, role: 'owner' as const };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw taken();
      throw err;
    } finally {
      this.changed();
    }
  }

  async list(principal: Principal): Promise<Array<{ workspace: WorkspaceRow; role: WorkspaceRole }>> {
    return this.workspaces.listForUser(principal.userId, principal.workspaceIds ?? undefined);
  }

  async update(workspaceId: string, patch: { name?: string; description?: string }): Promise<WorkspaceRow> {
    const row = await this.workspaces.update(workspaceId, { ...patch, ...(patch.name !== undefined ? { name: patch.name.trim() } : {}) }).finally(this.changed);
    if (!row) throw fail.notFound(`workspace ${workspaceId}`);
    return row;
  }

  async delete(workspaceId: string): Promise<void> {
    await this.workspaces.delete(workspaceId).finally(this.changed);
  }

  async listMembers(workspaceId: string): Promise<MemberView[]> {
    return this.members.list(workspaceId);
  }

  async addMember(workspaceId: string, email: string, role: WorkspaceRole): Promise<MemberView> {
    const user = await new UsersRepo(this.db).byEmail(email.trim());
    if (!user) throw fail.notFound(`user with e-mail ${email}`);
    if (!(await this.members.add(workspaceId, user.id, role).finally(this.changed))) throw fail.conflict(`${email} is already a member of this workspace`);
    return (await this.members.get(workspaceId, user.id))!;
  }

  async setMemberRole(workspaceId: string, userId: string, role: WorkspaceRole): Promise<MemberView> {
    const change = this.db.transaction(async (tx) => {
      const members = new MembersRepo(tx);
      const owners = await members.lockOwners(workspaceId);
      const current = await members.role(workspaceId, userId);
      if (!current) throw fail.notFound(`member ${userId}`);
      if (current === 'owner' && role !== 'owner' && owners.length <= 1)
        throw fail.conflict('this is the last owner of the workspace: make someone else owner first');
      await members.setRole(workspaceId, userId, role);
      return (await members.get(workspaceId, userId))!;
    });
    return change.finally(this.changed); // after the commit: a reload before it would cache the old role
  }

  async removeMember(workspaceId: string, userId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const members = new MembersRepo(tx);
      const owners = await members.lockOwners(workspaceId);
      const current = await members.role(workspaceId, userId);
      if (!current) throw fail.notFound(`member ${userId}`);
      if (current === 'owner' && owners.length <= 1)
        throw fail.conflict('this is the last owner of the workspace: make someone else owner first, or delete the workspace');
      await members.remove(workspaceId, userId);
    }).finally(this.changed);
  }
}
