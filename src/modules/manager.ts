import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Registry } from '../observability/metrics.js';
import { graphOptions, resolveModules, type ModuleName } from './graph.js';

// Starts modules in dependency order, tracks readiness, stops in reverse order. One failure stops the process.

export interface ModuleContext {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly version: string;
  /** Whether other processes reach this one over the network (`docupod serve`), not a CLI command's own runtime. */
  readonly listens: boolean;
  /** Modules this process runs (targets plus their dependencies). */
  readonly active: ReadonlySet<ModuleName>;
  isActive(name: ModuleName): boolean;
  /** The value an already-initialised module returned. */
  get<T>(name: ModuleName): T;
  /** Registers cleanup; run in reverse order of registration on shutdown. */
  onStop(fn: () => Promise<void> | void): void;
  /**
   * Registers a readiness probe (true, or the reason it is not ready). `soft`: a remote role this process calls; its
   * failure is reported by degraded() but does not make this process unready (see degraded()).
   */
  addReadiness(name: string, check: () => Promise<true | string>, opts?: { soft?: boolean }): void;
  /** Aggregated readiness: "starting" until every module started, then every registered check. */
  ready(): Promise<true | string>;
  /**
   * The failing soft checks, by name. A gateway pod is not restarted or pulled from its Service because retrieval is
   * down: that would take sign-in and documents down with it, and no pod of it could do better. /readyz stays 200
   * and names them (README "What runs where").
   */
  degraded(): Promise<Record<string, string>>;
}

export type Init = (ctx: ModuleContext) => Promise<unknown>;

export interface RunningModules {
  order: ModuleName[];
  get<T>(name: ModuleName): T;
  ready(): Promise<true | string>;
  degraded(): Promise<Record<string, string>>;
  markStopping(): void;
  stop(): Promise<void>;
}

export async function startModules(
  targets: readonly ModuleName[],
  inits: Record<ModuleName, Init>,
  base: { config: Config; log: Logger; metrics: Registry; version: string; listens: boolean },
  /** Pre-built module values (tests inject a database this way); such modules are not initialised. */
  provided: Partial<Record<ModuleName, unknown>> = {},
): Promise<RunningModules> {
  const order = resolveModules(targets, graphOptions(base.config));
  const active = new Set(order);
  const values = new Map<ModuleName, unknown>();
  const stops: Array<{ name: string; fn: () => Promise<void> | void }> = [];
  const checks: Array<{ name: string; check: () => Promise<true | string> }> = [];
  const softChecks: Array<{ name: string; check: () => Promise<true | string> }> = [];
  let current = '';
  let started = false;
  let stopping = false;

  const ready = async (): Promise<true | string> => {
    if (stopping) return 'shutting down';
    if (!started) return 'starting';
    const results = await Promise.all(
      checks.map(async ({ name, check }) => {
        const r = await check().catch((err: Error) => err.message);
        return r === true ? true : `${name}: ${r}`;
      }),
    );
    const failing = results.filter((r): r is string => r !== true);
    return failing.length === 0 ? true : failing.join('; ');
  };

  const degraded = async (): Promise<Record<string, string>> => {
    if (!started || stopping) return {};
    const results = await Promise.all(softChecks.map(async ({ name, check }) => [name, await check().catch((err: Error) => err.message)] as const));
    return Object.fromEntries(results.filter((r): r is readonly [string, string] => r[1] !== true));
  };

  const ctx: ModuleContext = {
    ...base,
    active,
    isActive: (n) => active.has(n),
    get: <T>(n: ModuleName) => {
      if (!values.has(n)) throw new Error(`module "${current}" asked for "${n}", which is not started before it; add it to DEPS`);
      return values.get(n) as T;
    },
    onStop: (fn) => stops.push({ name: current, fn }),
    addReadiness: (name, check, opts) => (opts?.soft ? softChecks : checks).push({ name, check }),
    ready,
    degraded,
  };

  const stop = async () => {
    stopping = true;
    while (stops.length > 0) {
      const { name, fn } = stops.pop()!;
      try {
        await fn();
      } catch (err) {
        base.log.error({ err, module: name }, 'module failed to stop cleanly');
      }
    }
  };

  try {
    for (const name of order) {
      current = name;
      const t0 = performance.now();
      values.set(name, name in provided ? provided[name] : await inits[name](ctx));
      base.log.debug({ module: name, ms: Math.round(performance.now() - t0) }, 'module started');
    }
  } catch (err) {
    await stop();
    throw err;
  }
  started = true;

  return {
    order,
    get: <T>(n: ModuleName) => values.get(n) as T,
    ready,
    degraded,
    /** Report not-ready first (SIGTERM handling waits a delay after this), then stop. */
    markStopping: () => {
      stopping = true;
    },
    stop,
  };
}
