// Which of this process's Node options a parser worker gets. `new Worker({ execArgv })` throws
// ERR_WORKER_INVALID_EXEC_ARGV for V8 flags (`npm start` passes --max-semi-space-size) and per-process options, and
// a worker given `--input-type` (from `node --input-type=module -e`) refuses its file entry point. V8 flags are
// process-wide, so the workers run under them anyway. Node offers no public list of the options a worker accepts,
// hence this allow-list of the ones that change how code inside a worker loads or reports: module hooks and
// conditions, source maps, warnings, and experimental features.

/** Options that take a value, which may come as the next argv element (`--import x`) rather than `--import=x`. */
const WITH_VALUE = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader', '--conditions', '-C', '--disable-warning']);
const FLAGS = new Set(['--enable-source-maps', '--no-warnings', '--no-deprecation', '--trace-warnings', '--trace-deprecation', '--pending-deprecation', '--preserve-symlinks', '--preserve-symlinks-main']);
const EXPERIMENTAL = /^--(no-)?experimental-[a-z-]+$/;

export function workerExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (WITH_VALUE.has(name)) {
      out.push(arg);
      if (eq < 0 && i + 1 < execArgv.length) out.push(execArgv[++i]!);
    } else if (FLAGS.has(name) || (EXPERIMENTAL.test(name) && name !== '--experimental-loader')) {
      out.push(arg);
    }
    // Anything else (V8 flags, --input-type, --title, inspector and heap options…) stays with the main thread.
  }
  return out;
}
