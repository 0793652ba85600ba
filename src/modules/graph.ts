import { ROLES, type Config, type RoleName } from '../config/schema.js';

// Module names and who depends on whom, in one readable map (Grafana Loki's modules.go, in TypeScript).
// Roles are user-facing (`--role`); the rest are internal building blocks started only when a role needs them.

export const M = {
  db: 'db',
  blobs: 'blobs',
  jobs: 'jobs',
  llm: 'llm',
  embedder: 'embedder',
  reranker: 'reranker',
  http: 'http',
  auth: 'auth',
  ingestClient: 'ingest-client',
  retrievalClient: 'retrieval-client',
  chatClient: 'chat-client',
  modelsClient: 'models-client',
  internalApi: 'internal-api',
  gateway: 'gateway',
  ingest: 'ingest',
  retrieval: 'retrieval',
  chat: 'chat',
  models: 'models',
  web: 'web',
  all: 'all',
} as const;

export type ModuleName = (typeof M)[keyof typeof M];

export const USER_FACING: readonly ModuleName[] = [...ROLES, M.all];

export const DEPS: Record<ModuleName, readonly ModuleName[]> = {
  [M.db]: [],
  [M.blobs]: [M.db],
  [M.jobs]: [M.db],
  [M.llm]: [],
  [M.embedder]: [],
  [M.reranker]: [],
  [M.http]: [],
  [M.auth]: [M.db, M.http],
  // A client module is the in-process role when that role runs here, an HTTP client otherwise.
  [M.ingestClient]: [],
  [M.retrievalClient]: [],
  [M.chatClient]: [],
  [M.modelsClient]: [],
  // Serves /internal/<role>/… for the roles here whose callers run elsewhere; started after those roles (see below).
  [M.internalApi]: [M.http],
  // The gateway writes uploads to the shared blob store and hands the ingest role only their keys.
  [M.gateway]: [M.db, M.blobs, M.http, M.auth, M.ingestClient, M.retrievalClient, M.chatClient, M.modelsClient],
  [M.ingest]: [M.db, M.blobs, M.jobs, M.embedder, M.http],
  [M.retrieval]: [M.db, M.embedder, M.http],
  // The embedder serves /v1/embeddings through the chat role.
  // The reranker reorders what retrieval found before the answer; only the chat role uses it.
  [M.chat]: [M.db, M.retrievalClient, M.llm, M.embedder, M.reranker, M.http],
  [M.models]: [M.http],
  [M.web]: [M.http],
  [M.all]: [M.gateway, M.ingest, M.retrieval, M.chat, M.models, M.web],
};

/**
 * Extra ordering edges that apply only when both modules share a process: the in-process client must start after
 * the role it wraps. Loki does the same when targets are combined.
 */
const CLIENT_OF: Partial<Record<ModuleName, RoleName>> = {
  [M.ingestClient]: 'ingest',
  [M.retrievalClient]: 'retrieval',
  [M.chatClient]: 'chat',
  [M.modelsClient]: 'models',
};

export function roleOfClient(name: ModuleName): RoleName | undefined {
  return CLIENT_OF[name];
}

/**
 * Ordering edges that apply only when both modules run in the process, for optional collaborators: the models role
 * checks admins' logins with the gateway's auth when the gateway runs here, and works without it otherwise.
 */
const AFTER_IF_PRESENT: Partial<Record<ModuleName, readonly ModuleName[]>> = {
  [M.models]: [M.auth],
};

/**
 * What in the configuration changes the graph. Only one thing does: a models role that must check callers but has no
 * gateway beside it verifies users itself against the shared database (a models pod on Kubernetes, where the ingress
 * routes /models to it straight).
 */
export interface GraphOptions {
  /** DATABASE_URL is set (a database other processes share) and DOCUPOD_MODELS_INFERENCE=authenticated. */
  modelsVerifyUsers?: boolean;
}

export function graphOptions(config: Pick<Config, 'storage' | 'models'>): GraphOptions {
  return { modelsVerifyUsers: Boolean(config.storage.databaseUrl) && config.models.inference === 'authenticated' };
}

/**
 * Dependencies that exist only under an option: the `auth` module (AuthService over the database, no routes; the
 * gateway registers /api) then starts with the models role, wherever it runs.
 */
const DEPS_WHEN: { [K in keyof Required<GraphOptions>]: Partial<Record<ModuleName, readonly ModuleName[]>> } = {
  modelsVerifyUsers: { [M.models]: [M.auth] },
};

/** DEPS plus the dependencies the options switch on. */
export function depsOf(name: ModuleName, opts: GraphOptions = {}): ModuleName[] {
  const extra = (Object.keys(DEPS_WHEN) as Array<keyof GraphOptions>).flatMap((o) => (opts[o] ? (DEPS_WHEN[o][name] ?? []) : []));
  return [...new Set([...DEPS[name], ...extra])];
}

/** Roles with an internal contract (the ones other roles call through a client module). */
export const CONTRACT_ROLES = Object.values(CLIENT_OF) as RoleName[];

/** Who calls a role's contract: the user-facing roles that depend on its client module (derived from DEPS). */
export function callersOf(role: RoleName): ModuleName[] {
  const client = (Object.keys(CLIENT_OF) as ModuleName[]).find((c) => CLIENT_OF[c] === role);
  return client ? USER_FACING.filter((r) => DEPS[r].includes(client)) : [];
}

/**
 * The internal HTTP surface of a process. A role's `/internal/<role>/…` is served exactly when this process listens
 * for other processes (`docupod serve`) and at least one role that calls it runs elsewhere: with `--role all`, or
 * with a role together with every caller, all calls stay in process and nothing is served. `remote` lists the roles
 * this process calls over HTTP.
 */
export interface InternalLayout {
  served: RoleName[];
  remote: RoleName[];
}

export function internalLayout(active: ReadonlySet<ModuleName>, listens: boolean): InternalLayout {
  const served = listens ? CONTRACT_ROLES.filter((r) => active.has(r) && callersOf(r).some((c) => !active.has(c))) : [];
  const remote = (Object.keys(CLIENT_OF) as ModuleName[]).filter((c) => active.has(c) && !active.has(CLIENT_OF[c]!)).map((c) => CLIENT_OF[c]!);
  return { served, remote };
}

/** A split layout needs the shared token on both ends of every internal call: refuse to start without it. */
export function requireInternalToken(layout: InternalLayout, token: string | undefined): void {
  if (token || (layout.served.length === 0 && layout.remote.length === 0)) return;
  const why = [
    layout.served.length > 0 &&
      `serves the internal API of ${layout.served.join(', ')} to ${[...new Set(layout.served.flatMap(callersOf))].join(', ')} in other processes`,
    layout.remote.length > 0 && `calls ${layout.remote.join(', ')} in other processes`,
  ].filter(Boolean);
  throw new RoleError(
    `DOCUPOD_INTERNAL_TOKEN is not set, and this process ${why.join(' and ')}. ` +
      'Set DOCUPOD_INTERNAL_TOKEN (or DOCUPOD_INTERNAL_TOKEN_FILE) to one shared secret of at least 16 characters in every docupod process ' +
      '(e.g. openssl rand -hex 32); only a process that runs every role it calls and is called by (--role all) starts without it.',
  );
}

export class RoleError extends Error {
  override name = 'RoleError';
}

/** Parses `--role all` or `--role gateway,retrieval`; unknown names fail with the list of valid ones. */
export function parseRoles(spec: string): ModuleName[] {
  const names = spec
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (names.length === 0) throw new RoleError(`no role given; choose from: ${USER_FACING.join(', ')}`);
  for (const n of names)
    if (!(USER_FACING as readonly string[]).includes(n))
      throw new RoleError(`unknown role "${n}"; choose from: ${USER_FACING.join(', ')} (comma-separated for several)`);
  return [...new Set(names)] as ModuleName[];
}

/** Every module the targets need, dependencies first (a topological order; stable for equal inputs). */
export function resolveModules(targets: readonly ModuleName[], opts: GraphOptions = {}): ModuleName[] {
  const wanted = new Set<ModuleName>();
  const visit = (n: ModuleName) => {
    if (wanted.has(n)) return;
    wanted.add(n);
    for (const d of depsOf(n, opts)) visit(d);
  };
  targets.forEach(visit);
  // The internal API comes with any role that has a contract, and starts after all of them (it serves their values).
  if (CONTRACT_ROLES.some((r) => wanted.has(r))) wanted.add(M.internalApi);

  const order: ModuleName[] = [];
  const state = new Map<ModuleName, 'visiting' | 'done'>();
  const edges = (n: ModuleName): ModuleName[] => {
    const role = CLIENT_OF[n];
    const out = role && wanted.has(role) ? [...depsOf(n, opts), role] : depsOf(n, opts);
    for (const m of AFTER_IF_PRESENT[n] ?? []) if (wanted.has(m)) out.push(m);
    if (n === M.internalApi) out.push(...CONTRACT_ROLES.filter((r) => wanted.has(r)));
    return out;
  };
  const sort = (n: ModuleName, path: ModuleName[]) => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'visiting') throw new RoleError(`module dependency cycle: ${[...path, n].join(' -> ')}`);
    state.set(n, 'visiting');
    for (const d of edges(n)) sort(d, [...path, n]);
    state.set(n, 'done');
    order.push(n);
  };
  [...wanted].sort().forEach((n) => sort(n, []));
  return order;
}

/** Human-readable listing for `docupod list-roles`; a role whose graph an option changes shows both. */
export function describeRoles(): string {
  const lines: string[] = [];
  const verify: GraphOptions = { modelsVerifyUsers: true };
  for (const r of USER_FACING) {
    const all = resolveModules([r]).filter((m) => m !== r);
    lines.push(`${r}\n  depends on: ${DEPS[r].join(', ') || '(nothing)'}\n  starts:     ${all.join(', ') || '(nothing else)'}`);
    const more = resolveModules([r], verify).filter((m) => m !== r && !all.includes(m));
    if (more.length > 0)
      lines.push(`  with DATABASE_URL and DOCUPOD_MODELS_INFERENCE=authenticated (checks API keys and logins itself), also: ${more.join(', ')}`);
  }
  return lines.join('\n');
}
