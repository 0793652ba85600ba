import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';

// One owner per embedded data directory (docs/architecture.md §2): PGlite serves one process, and a second process
// opening the same files destroys them. Whoever opens PGlite on a directory holds an exclusive lock on it; everyone
// else (a second `docupod serve`, the CLI) goes through the owner's HTTP API, found from `server.json`.
//
// The lock is proper-lockfile's: an atomic mkdir of `<dataDir>/owner.lock` whose mtime the owner refreshes every
// LOCK_UPDATE_MS; a lock not refreshed for LOCK_STALE_MS belongs to a dead process and is taken over. Next to it,
// `owner.json` names the owner (pid, host, start time), so a refusal can say who holds the directory, and a live
// owner on this host is never displaced even when its event loop stalled past the stale threshold.

export const LOCK_STALE_MS = 10_000;
export const LOCK_UPDATE_MS = 2_000;
const LOCK_DIR = 'owner.lock';
const OWNER_FILE = 'owner.json';
export const SERVER_FILE = 'server.json';

export interface DataDirOwner {
  pid: number;
  hostname: string;
  /** ISO 8601. */
  started: string;
  /** The docupod subcommand that opened it (serve, ingest, migrate…): never its arguments, which may hold secrets. */
  command?: string;
  /** Linux: the boot and the process start time, so a pid reused after a reboot or a crash is not taken for it. */
  bootId?: string;
  pidStart?: string;
  /** It runs the gateway, so it writes server.json once it listens: a command may wait for that while it starts. */
  servesApi?: boolean;
}

/** What the owner serving HTTP writes to `<dataDir>/server.json` (mode 0600): how the CLI reaches it. */
export interface ServerInfo {
  pid: number;
  started: string;
  /** Reachable from this host (a wildcard bind address is written as 127.0.0.1). */
  url: string;
  /** The local operator token (see roles/gateway/auth/local-operator.ts); new at every start. */
  token: string;
}

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
  constructor(
    readonly dataDir: string,
    readonly owner: DataDirOwner | undefined,
    readonly server: Pick<ServerInfo, 'url'> | undefined,
  ) {
    super(`the data directory ${dataDir} is in use by ${describeOwner(owner, server)}; PGlite serves one process, so this one does not open it`);
  }
}

/** "docupod serve (pid 123 on host h, started …, serving http://127.0.0.1:8080)" */
export function describeOwner(owner: DataDirOwner | undefined, server?: Pick<ServerInfo, 'url'>): string {
  if (!owner) return 'another docupod process (it has not said which yet)';
  const where = owner.hostname === hostname() ? '' : ` on host ${owner.hostname}`;
  return `docupod ${owner.command ?? ''}`.trimEnd() + ` (pid ${owner.pid}${where}, started ${owner.started}${server ? `, serving ${server.url}` : ''})`;
}

export interface DataDirLock {
  readonly dataDir: string;
  release(): Promise<void>;
}

export interface LockOptions {
  /**
   * Called when the lock was lost while held (its directory removed or taken over): the caller must stop using the
   * data directory at once. The default prints the reason and exits the process with status 1.
   */
  onCompromised?: (err: Error) => void;
  /** How long to wait for a fresh lock of a dead owner to go stale; default a little over LOCK_STALE_MS. */
  waitMs?: number;
  /** Recorded in owner.json: this process will serve the public API (and announce it in server.json). */
  servesApi?: boolean;
}

/** Data directories this process holds (proper-lockfile cannot tell us, and a second PGlite here is as bad). */
const held = new Set<string>();

const readJson = <T>(file: string): T | undefined => {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
};

/** Written to a temporary name and renamed, so a reader never sees half a file. */
function writeAtomically(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, file);
}

function readOwner(dir: string): DataDirOwner | undefined {
  const o = readJson<Partial<DataDirOwner>>(path.join(dir, OWNER_FILE));
  return o && Number.isInteger(o.pid) && typeof o.hostname === 'string' && typeof o.started === 'string' ? (o as DataDirOwner) : undefined;
}

const readText = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined; // not Linux, or no such process
  }
};
const bootId = () => readText('/proc/sys/kernel/random/boot_id');
/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); the name before it may hold spaces. */
const pidStart = (pid: number) => {
  const stat = readText(`/proc/${pid}/stat`);
  return stat?.slice(stat.lastIndexOf(') ') + 2).split(' ')[19];
};

/** Alive or dead when the owner ran on this host; unknown for another host (a shared volume) or no owner file. */
function ownerState(dir: string, owner: DataDirOwner | undefined): 'alive' | 'dead' | 'unknown' {
  if (!owner || owner.hostname !== hostname()) return 'unknown';
  // Our own pid: held here, or a previous run with the same pid (pid 1 in a restarted container).
  if (owner.pid === process.pid) return held.has(dir) ? 'alive' : 'dead';
  // The lock directory outlives a reboot: after one, its pid may belong to anything.
  if (owner.bootId && bootId() && owner.bootId !== bootId()) return 'dead';
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return 'dead';
  }
  const started = owner.pidStart && pidStart(owner.pid);
  return started && started !== owner.pidStart ? 'dead' : 'alive'; // a live pid, unless another process reused it
}

const lockOptions = (dir: string) => ({ lockfilePath: path.join(dir, LOCK_DIR), realpath: false, stale: LOCK_STALE_MS });

function thisCommand(): string | undefined {
  const c = process.argv[2];
  return c && /^[a-z][a-z-]{0,30}$/.test(c) ? c : undefined;
}

function defaultCompromised(dir: string) {
  return (err: Error) => {
    process.stderr.write(`docupod: lost the lock on the data directory ${dir} (${err.message}); stopping so that two processes never write it\n`);
    process.exit(1);
  };
}

/**
 * Takes the data directory's lock or throws DataDirLockedError naming its owner. A lock left by a killed process is
 * taken over: at once when it is stale, after waiting for it to go stale (at most ~LOCK_STALE_MS) when its owner is
 * known to be dead, so a restart right after a SIGKILL starts instead of failing.
 */
export async function lockDataDir(dataDir: string, opts: LockOptions = {}): Promise<DataDirLock> {
  const dir = path.resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  if (held.has(dir)) throw new DataDirLockedError(dir, readOwner(dir), undefined);
  const deadline = Date.now() + (opts.waitMs ?? LOCK_STALE_MS + 2_000);
  const onCompromised = opts.onCompromised ?? defaultCompromised(dir);
  for (;;) {
    const owner = readOwner(dir);
    const state = ownerState(dir, owner);
    // A live owner keeps the directory even if its lock looks stale (an event loop blocked past the threshold).
    if (state === 'alive') throw new DataDirLockedError(dir, owner, readServer(dir));
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(dir, {
        ...lockOptions(dir),
        update: LOCK_UPDATE_MS,
        onCompromised: (err) => {
          held.delete(dir);
          onCompromised(err);
        },
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      // A fresh lock. Its owner on another host cannot be checked from here: refuse. A dead owner's lock (killed
      // moments ago), or one whose owner has not written owner.json yet: look again until it goes stale.
      if ((owner && state === 'unknown') || Date.now() > deadline) throw new DataDirLockedError(dir, owner, readServer(dir));
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    held.add(dir);
    const me: DataDirOwner = { pid: process.pid, hostname: hostname(), started: new Date().toISOString(), command: thisCommand(), bootId: bootId(), pidStart: pidStart(process.pid), ...(opts.servesApi ? { servesApi: true } : {}) };
    writeAtomically(path.join(dir, OWNER_FILE), JSON.stringify(me));
    const forget = () => {
      if (readOwner(dir)?.pid === process.pid) rmSync(path.join(dir, OWNER_FILE), { force: true });
    };
    // proper-lockfile removes the lock itself on exit; the owner file goes with it.
    process.once('exit', forget);
    let released = false;
    return {
      dataDir: dir,
      release: async () => {
        if (released) return;
        released = true;
        process.removeListener('exit', forget);
        forget();
        held.delete(dir);
        await release().catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ERELEASED') throw err; // already lost (compromised): nothing left to release
        });
      },
    };
  }
}

export type DataDirState =
  | { state: 'free' }
  | { state: 'owned'; owner: DataDirOwner | undefined; server: ServerInfo | undefined };

/**
 * Who holds the data directory, without taking it. `free` includes a lock whose owner is dead (lockDataDir then
 * waits for it to go stale); `server` is the owner's server.json when it wrote one.
 */
export async function inspectDataDir(dataDir: string): Promise<DataDirState> {
  const dir = path.resolve(dataDir);
  if (!existsSync(path.join(dir, LOCK_DIR))) return { state: 'free' };
  const owner = readOwner(dir);
  const state = ownerState(dir, owner);
  if (state === 'dead') return { state: 'free' };
  if (state === 'unknown' && !(await lockfile.check(dir, lockOptions(dir)).catch(() => false))) return { state: 'free' };
  const server = readServer(dir);
  return { state: 'owned', owner, server: server && (!owner || server.pid === owner.pid) ? server : undefined };
}

function readServer(dir: string): ServerInfo | undefined {
  const s = readJson<Partial<ServerInfo>>(path.join(dir, SERVER_FILE));
  return s && Number.isInteger(s.pid) && typeof s.url === 'string' && typeof s.token === 'string' && typeof s.started === 'string' ? (s as ServerInfo) : undefined;
}

/** The owner's server.json, if it serves HTTP. */
export function readServerInfo(dataDir: string): ServerInfo | undefined {
  return readServer(path.resolve(dataDir));
}

/** Written by the lock holder once it listens; readable by its user only (the token makes the reader an admin). */
export function writeServerInfo(dataDir: string, info: ServerInfo): void {
  writeAtomically(path.join(path.resolve(dataDir), SERVER_FILE), `${JSON.stringify(info, null, 2)}\n`);
}

export function removeServerInfo(dataDir: string): void {
  const file = path.join(path.resolve(dataDir), SERVER_FILE);
  if (readServer(path.resolve(dataDir))?.pid === process.pid) rmSync(file, { force: true });
}

/** A URL for a listening address that works from this host: a wildcard bind (0.0.0.0, ::) becomes 127.0.0.1. */
export function loopbackUrl(address: { address: string; family: string; port: number }): string {
  const wildcard = address.address === '0.0.0.0' || address.address === '::' || address.address === '';
  const host = wildcard ? '127.0.0.1' : address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
