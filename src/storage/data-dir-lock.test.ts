import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataDirLockedError, inspectDataDir, lockDataDir, loopbackUrl, readServerInfo, removeServerInfo, writeServerInfo } from './data-dir-lock.js';

// The data directory lock on a real filesystem. Another live process is a real child (`sleep`-like node), so the
// pid checks see a real process table.

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  children.forEach((c) => c.kill('SIGKILL'));
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});
const tempDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'docupod-lock-'));
  dirs.push(d);
  return d;
};

/** A directory locked "by" a live process that is not this one: a fresh lock and its owner file naming that pid. */
function lockedByAnother(dir: string): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.push(child);
  mkdirSync(path.join(dir, 'owner.lock'));
  writeFileSync(path.join(dir, 'owner.json'), JSON.stringify({ pid: child.pid, hostname: hostname(), started: '2026-01-02T03:04:05.000Z', command: 'serve' }));
  return child;
}

describe('data directory lock', () => {
  it('takes a free directory, names this process as its owner, and frees it on release', async () => {
    const dir = tempDir();
    const lock = await lockDataDir(dir);
    expect(existsSync(path.join(dir, 'owner.lock'))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(dir, 'owner.json'), 'utf8'))).toMatchObject({ pid: process.pid, hostname: hostname() });
    expect(statSync(path.join(dir, 'owner.json')).mode & 0o777).toBe(0o600);
    expect(await inspectDataDir(dir)).toMatchObject({ state: 'owned', owner: { pid: process.pid } });
    await lock.release();
    expect(existsSync(path.join(dir, 'owner.lock'))).toBe(false);
    expect(existsSync(path.join(dir, 'owner.json'))).toBe(false);
    expect(await inspectDataDir(dir)).toEqual({ state: 'free' });
  });

  it('refuses a second open in the same process', async () => {
    const dir = tempDir();
    const lock = await lockDataDir(dir);
    try {
      await expect(lockDataDir(dir)).rejects.toBeInstanceOf(DataDirLockedError);
    } finally {
      await lock.release();
    }
  });

  it('refuses at once a directory held by a live process, naming its pid, start time and URL', async () => {
    const dir = tempDir();
    const owner = lockedByAnother(dir);
    writeServerInfo(dir, { pid: owner.pid!, started: '2026-01-02T03:04:05.000Z', url: 'http://127.0.0.1:8080', token: 'dplocal_secret' });
    const t0 = performance.now();
    const err = await lockDataDir(dir).catch((e: unknown) => e);
    expect(performance.now() - t0).toBeLessThan(2000); // no waiting for a live owner
    expect(err).toBeInstanceOf(DataDirLockedError);
    expect((err as Error).message).toBe(
      `the data directory ${dir} is in use by docupod serve (pid ${owner.pid}, started 2026-01-02T03:04:05.000Z, serving http://127.0.0.1:8080); ` +
        'PGlite serves one process, so this one does not open it',
    );
    expect((err as Error).message).not.toContain('secret');
  });

  it('keeps a live owner’s directory even when its lock looks stale (an event loop stalled past the threshold)', async () => {
    const dir = tempDir();
    const owner = lockedByAnother(dir);
    const old = new Date(Date.now() - 60_000);
    utimesSync(path.join(dir, 'owner.lock'), old, old);
    await expect(lockDataDir(dir)).rejects.toThrow(`pid ${owner.pid}`);
  });

  it('does not take a pid reused by another process, or one from before a reboot, for the owner', async () => {
    for (const stale of [{ pidStart: '1' }, { bootId: 'another-boot' }]) {
      const dir = tempDir();
      const other = lockedByAnother(dir);
      const owner = JSON.parse(readFileSync(path.join(dir, 'owner.json'), 'utf8'));
      writeFileSync(path.join(dir, 'owner.json'), JSON.stringify({ ...owner, bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), ...stale }));
      const old = new Date(Date.now() - 60_000);
      utimesSync(path.join(dir, 'owner.lock'), old, old);
      expect(await inspectDataDir(dir), JSON.stringify(stale)).toEqual({ state: 'free' });
      const lock = await lockDataDir(dir);
      expect(JSON.parse(readFileSync(path.join(dir, 'owner.json'), 'utf8'))).toMatchObject({ pid: process.pid });
      await lock.release();
      other.kill('SIGKILL');
    }
  });

  it('takes over at once a stale lock whose owner is gone', async () => {
    const dir = tempDir();
    const owner = lockedByAnother(dir);
    owner.kill('SIGKILL');
    await new Promise((r) => owner.once('exit', r));
    const old = new Date(Date.now() - 60_000);
    utimesSync(path.join(dir, 'owner.lock'), old, old);
    expect(await inspectDataDir(dir)).toEqual({ state: 'free' });
    const t0 = performance.now();
    const lock = await lockDataDir(dir);
    expect(performance.now() - t0).toBeLessThan(2000);
    await lock.release();
  });

  it('waits for a fresh lock of a dead owner to go stale, within the bound it is given', async () => {
    const dir = tempDir();
    const owner = lockedByAnother(dir);
    owner.kill('SIGKILL');
    await new Promise((r) => owner.once('exit', r));
    // The lock is fresh (just made): with a short bound the wait gives up and names the dead owner.
    const t0 = performance.now();
    await expect(lockDataDir(dir, { waitMs: 600 })).rejects.toThrow(`pid ${owner.pid}`);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(500);
  });

  it('reports a lost lock to onCompromised instead of carrying on silently', async () => {
    const dir = tempDir();
    let lost: Error | undefined;
    const lock = await lockDataDir(dir, { onCompromised: (err) => (lost = err) });
    rmSync(path.join(dir, 'owner.lock'), { recursive: true });
    for (let i = 0; i < 60 && !lost; i++) await new Promise((r) => setTimeout(r, 100));
    expect(lost).toBeInstanceOf(Error);
    expect((lost as NodeJS.ErrnoException).code).toBe('ECOMPROMISED');
    await lock.release(); // already lost: releasing is a no-op, not a throw
  });

  it('writes server.json readable by its owner only and removes only its own', () => {
    const dir = tempDir();
    writeServerInfo(dir, { pid: process.pid, started: 'now', url: 'http://127.0.0.1:1', token: 'dplocal_x' });
    expect(statSync(path.join(dir, 'server.json')).mode & 0o777).toBe(0o600);
    expect(readServerInfo(dir)).toMatchObject({ pid: process.pid, url: 'http://127.0.0.1:1' });
    writeServerInfo(dir, { pid: process.pid + 1, started: 'now', url: 'http://127.0.0.1:2', token: 'dplocal_y' });
    removeServerInfo(dir);
    expect(readServerInfo(dir)).toMatchObject({ url: 'http://127.0.0.1:2' });
  });

  it('turns a wildcard bind address into a loopback URL', () => {
    expect(loopbackUrl({ address: '0.0.0.0', family: 'IPv4', port: 8080 })).toBe('http://127.0.0.1:8080');
    expect(loopbackUrl({ address: '::', family: 'IPv6', port: 8080 })).toBe('http://127.0.0.1:8080');
    expect(loopbackUrl({ address: '::1', family: 'IPv6', port: 81 })).toBe('http://[::1]:81');
    expect(loopbackUrl({ address: '10.0.0.5', family: 'IPv4', port: 82 })).toBe('http://10.0.0.5:82');
  });
});
