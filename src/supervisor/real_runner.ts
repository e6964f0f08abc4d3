/**
 * {@linkcode RealProcessRunner}: the {@linkcode ProcessRunner} that starts real processes.
 *
 * How an app is started, and why:
 * - `Deno.Command` can only connect a child's stdout/stderr to "piped", "inherit" or "null";
 *   it cannot hand over a file. A pipe to the agent would tie the app to the agent (SIGPIPE
 *   or a full pipe once the agent is gone), so the app is started through
 *   `/bin/sh -c 'log=$1; shift; exec "$@" >>"$log" 2>&1' baton-spawn LOG CMD ARGS...`:
 *   the shell opens the log in append mode, then `exec`s the command, so the PID we get is
 *   the app's own PID and no descriptor of the agent stays open in the app. The command and
 *   its arguments are passed as positional parameters, never interpolated into shell text.
 * - `detached: true` makes the child a session and process-group leader (pgid = pid), so the
 *   whole group can be signalled and the app survives the agent; `unref()` lets the agent exit.
 * - Because the shell reports a missing command only in the log, `spawn` first resolves
 *   `command[0]` in PATH (the spec's `env.PATH`, else the agent's) and checks the working
 *   directory, and rejects with a clear error when either is wrong.
 * - Exits of spawned children come from `child.status` (at once); adopted processes are not
 *   our children and are polled in /proc, where a zombie counts as exited.
 *
 * @example
 * ```ts
 * const runner = new RealProcessRunner({ pollMs: 100 });
 * runner.onExit((e) => console.log(`${e.app} (pid ${e.pid}) ${e.detail}`));
 * const { pid } = await runner.spawn({
 *   app: "web", command: ["python3", "-m", "http.server"], cwd: null, env: {}, logDir: "/tmp",
 * });
 * await runner.stop("web", pid, { signal: "SIGTERM", timeoutMs: 5000, mode: "graceful" });
 * ```
 *
 * @module
 */
import { isSameProcess, processGroupAlive, readProcStat } from "./proc.ts";
import {
  exitDetail,
  type ExitInfo,
  type ProcessRunner,
  type Spawned,
  type SpawnSpec,
  type StopOptions,
} from "./process_runner.ts";

/** Tuning of {@linkcode RealProcessRunner}; every field has a default. */
export interface RealRunnerOptions {
  /** Interval of the /proc poll for adopted processes (default 100 ms). */
  pollMs?: number;
  /** How long to wait for SIGKILLed stragglers of an exited app to vanish (default 5000 ms). */
  stragglerWaitMs?: number;
  /** How long `stop` waits for the leader after SIGKILL before it rejects (default 10000 ms). */
  killWaitMs?: number;
}

/** Shell snippet that appends stdout+stderr to the log ($1) and execs the rest of argv. */
const _LAUNCHER = 'log=$1; shift; exec "$@" >>"$log" 2>&1';
/** dash's PATH when none is set. */
const _DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Detail reported for an adopted process: not our child, so its exit status is unknown. */
export const ADOPTED_EXIT_DETAIL = "exited (adopted process: exit status unknown)";

interface _Watch {
  app: string;
  pid: number;
  startTime: number;
  /** Process group to signal, or null when the process does not lead its own group. */
  pgid: number | null;
  spawned: boolean;
  /** Exit seen (or watch detached): no further report. */
  done: boolean;
  detached: boolean;
  gone: Promise<void>;
  resolveGone: () => void;
  timer: ReturnType<typeof setTimeout> | null;
}

/**
 * Supervises real processes: spawns them detached in their own process group with output
 * appended to a per-app log, reports every exit once, stops whole process groups.
 *
 * @example
 * ```ts
 * const runner = new RealProcessRunner();
 * runner.onExit((e) => console.log(e.detail)); // "killed by SIGKILL"
 * const { pid } = await runner.spawn({
 *   app: "sleeper", command: ["sleep", "30"], cwd: null, env: {}, logDir: "/tmp",
 * });
 * await runner.stop("sleeper", pid, { signal: "SIGTERM", timeoutMs: 1000, mode: "kill" });
 * ```
 */
export class RealProcessRunner implements ProcessRunner {
  readonly #pollMs: number;
  readonly #stragglerWaitMs: number;
  readonly #killWaitMs: number;
  readonly #watches = new Map<number, _Watch>();
  readonly #callbacks: Array<(exit: ExitInfo) => void> = [];

  /** Creates a runner; see {@linkcode RealRunnerOptions} for the defaults. */
  constructor(options: RealRunnerOptions = {}) {
    this.#pollMs = options.pollMs ?? 100;
    this.#stragglerWaitMs = options.stragglerWaitMs ?? 5000;
    this.#killWaitMs = options.killWaitMs ?? 10_000;
  }

  /** {@inheritDoc ProcessRunner.spawn} */
  async spawn(spec: SpawnSpec): Promise<Spawned> {
    const what = `cannot start app "${spec.app}"`;
    if (spec.app === "" || spec.app.includes("/") || spec.app === "." || spec.app === "..") {
      throw new Error(`${what}: expected an app name usable as a file name, found "${spec.app}"`);
    }
    const program = spec.command[0];
    if (program === undefined || program === "") {
      throw new Error(
        `${what}: expected a non-empty command, found ${JSON.stringify(spec.command)}`,
      );
    }
    const cwd = spec.cwd ?? Deno.cwd();
    await _checkDirectory(cwd, `${what}: working directory`);
    const pathVar = spec.env["PATH"] ?? Deno.env.get("PATH") ?? _DEFAULT_PATH;
    const problem = await _findExecutable(program, cwd, pathVar);
    if (problem !== null) throw new Error(`${what}: ${problem}`);

    try {
      await Deno.mkdir(spec.logDir, { recursive: true });
    } catch (error) {
      throw new Error(`${what}: cannot create log directory ${spec.logDir}: ${_message(error)}`);
    }
    const logPath = `${spec.logDir.replace(/\/+$/, "")}/${spec.app}.log`;
    try {
      const file = await Deno.open(logPath, { append: true, create: true, mode: 0o640 });
      file.close();
    } catch (error) {
      throw new Error(`${what}: cannot open log file ${logPath}: ${_message(error)}`);
    }

    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("/bin/sh", {
        args: ["-c", _LAUNCHER, "baton-spawn", logPath, ...spec.command],
        cwd,
        env: spec.env,
        detached: true,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
    } catch (error) {
      throw new Error(`${what}: ${_message(error)}`);
    }
    child.unref();
    const pid = child.pid;
    // exec keeps the start time, so reading it before or after the shell's exec is the same.
    const stat = readProcStat(pid);
    const startTime = stat?.startTime ?? 0;
    const watch = this.#watch(spec.app, pid, startTime, pid, true);
    child.status.then((status) => this.#exited(watch, exitDetail(status)));
    return { pid, startTime };
  }

  /** {@inheritDoc ProcessRunner.adopt} */
  adopt(app: string, pid: number, startTime: number): void {
    if (this.#watches.has(pid)) return;
    const stat = readProcStat(pid);
    // Signal the group only if the process leads it (as everything we spawn does).
    const pgid = stat !== null && stat.startTime === startTime && stat.pgid === pid ? pid : null;
    const watch = this.#watch(app, pid, startTime, pgid, false);
    const poll = () => {
      watch.timer = null;
      if (watch.done) return;
      if (!isSameProcess(pid, startTime)) {
        this.#exited(watch, ADOPTED_EXIT_DETAIL);
        return;
      }
      watch.timer = setTimeout(poll, this.#pollMs);
    };
    watch.timer = setTimeout(poll, 0);
  }

  /** {@inheritDoc ProcessRunner.stop} */
  async stop(app: string, pid: number, options: StopOptions): Promise<void> {
    const watch = this.#watches.get(pid) ?? null;
    let startTime: number;
    let pgid: number | null;
    if (watch !== null) {
      startTime = watch.startTime;
      pgid = watch.pgid;
    } else {
      const stat = readProcStat(pid);
      if (stat === null) return;
      startTime = stat.startTime;
      pgid = stat.pgid === pid ? pid : null;
    }
    const gone = () => (watch !== null && watch.done) || !isSameProcess(pid, startTime);
    const signal = (sig: Deno.Signal) => {
      if (!gone()) _kill(pgid !== null ? -pgid : pid, sig);
    };

    if (!gone()) {
      if (options.mode === "graceful") {
        signal(options.signal);
        // A stopped (SIGSTOPped, hung in a debugger) process cannot act on SIGTERM until it
        // runs again: wake it, as systemd does.
        signal("SIGCONT");
        await this.#waitGone(gone, watch, options.timeoutMs);
      }
      signal("SIGKILL");
      await this.#waitGone(gone, watch, this.#killWaitMs);
      if (!gone()) {
        throw new Error(
          `app "${app}": expected pid ${pid} to be gone ${this.#killWaitMs} ms after SIGKILL, ` +
            `found it still alive (state ${readProcStat(pid)?.state ?? "?"})`,
        );
      }
    }
    if (pgid !== null) _kill(-pgid, "SIGKILL");
  }

  /** {@inheritDoc ProcessRunner.onExit} */
  onExit(callback: (exit: ExitInfo) => void): void {
    this.#callbacks.push(callback);
  }

  /** {@inheritDoc ProcessRunner.detachAll} */
  detachAll(): void {
    for (const watch of this.#watches.values()) {
      watch.done = true;
      watch.detached = true;
      if (watch.timer !== null) clearTimeout(watch.timer);
      watch.timer = null;
      watch.resolveGone();
    }
    this.#watches.clear();
  }

  /** PIDs currently watched (for status and tests). */
  watched(): number[] {
    return [...this.#watches.keys()];
  }

  #watch(app: string, pid: number, startTime: number, pgid: number | null, spawned: boolean) {
    let resolveGone = () => {};
    const gone = new Promise<void>((resolve) => (resolveGone = resolve));
    const watch: _Watch = {
      app,
      pid,
      startTime,
      pgid,
      spawned,
      done: false,
      detached: false,
      gone,
      resolveGone,
      timer: null,
    };
    this.#watches.set(pid, watch);
    return watch;
  }

  async #exited(watch: _Watch, detail: string): Promise<void> {
    if (watch.done) return;
    watch.done = true;
    if (watch.timer !== null) clearTimeout(watch.timer);
    watch.timer = null;
    if (this.#watches.get(watch.pid) === watch) this.#watches.delete(watch.pid);
    watch.resolveGone();
    if (watch.pgid !== null) {
      const pgid = watch.pgid;
      _kill(-pgid, "SIGKILL");
      const deadline = Date.now() + this.#stragglerWaitMs;
      while (processGroupAlive(pgid) && Date.now() < deadline) {
        await _sleep(20);
        _kill(-pgid, "SIGKILL");
      }
    }
    if (watch.detached) return;
    const exit: ExitInfo = { app: watch.app, pid: watch.pid, detail };
    for (const callback of this.#callbacks) {
      try {
        callback(exit);
      } catch (error) {
        reportError(error);
      }
    }
  }

  async #waitGone(gone: () => boolean, watch: _Watch | null, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!gone() && Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tick = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.min(10, Math.max(0, deadline - Date.now())));
      });
      await Promise.race(watch !== null ? [tick, watch.gone] : [tick]);
      clearTimeout(timer);
    }
  }
}

/** Sends a signal, ignoring a target that no longer exists (or any other refusal). */
function _kill(target: number, signal: Deno.Signal): void {
  // Never signal everything (-1), our own process group (0) or init.
  if (target === 0 || target === 1 || target === -1) return;
  try {
    Deno.kill(target, signal);
  } catch {
    // ESRCH: already gone. EPERM: not ours to signal; the caller's gone() check decides.
  }
}

function _sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function _message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function _checkDirectory(path: string, what: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw new Error(`${what} ${path}: expected an existing directory, found ${_message(error)}`);
  }
  if (!info.isDirectory) {
    throw new Error(`${what} ${path}: expected a directory, found a file`);
  }
}

/** Returns null if `program` resolves to an executable file, else what is wrong with it. */
async function _findExecutable(
  program: string,
  cwd: string,
  pathVar: string,
): Promise<string | null> {
  const isExecutable = async (path: string) => {
    try {
      const info = await Deno.stat(path);
      return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
    } catch {
      return false;
    }
  };
  if (program.includes("/")) {
    const path = program.startsWith("/") ? program : `${cwd}/${program}`;
    if (await isExecutable(path)) return null;
    return `command "${program}" not found or not executable (looked at ${path})`;
  }
  for (const dir of pathVar.split(":")) {
    const base = dir === "" ? cwd : dir.startsWith("/") ? dir : `${cwd}/${dir}`;
    if (await isExecutable(`${base}/${program}`)) return null;
  }
  return `command "${program}" not found in PATH (${pathVar})`;
}
