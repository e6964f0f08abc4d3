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
 * - The app leads its own session and process group (pgid = pid), so the whole group can be
 *   signalled and the app survives the agent (its exit, SIGKILL, or a Ctrl-C to the agent's
 *   group); `unref()` lets the agent exit. The launcher does it with `exec setsid "$@"`:
 *   util-linux `setsid` calls setsid(2) and execs without forking when its caller does not lead
 *   a process group, which a plain child of the agent never does, so the PID is still the app's
 *   own. A plain spawn lets Deno use posix_spawn (about 1 ms); `detached: true` would make it
 *   fork the whole agent to run a pre-exec hook (7–30 ms). Without `/usr/bin/setsid` (or
 *   `/bin/setsid`) the runner falls back to `detached: true`. Until the launcher has run
 *   setsid (a millisecond) the group does not exist yet: signals then go to the PID itself.
 * - Because the shell reports a missing command only in the log, `spawn` first resolves
 *   `command[0]` in PATH (the spec's `env.PATH`, else the agent's) and checks the working
 *   directory, and rejects with a clear error when either is wrong.
 * - Exits of spawned children come from `child.status` (at once); adopted processes are not
 *   our children and are polled in /proc, where a zombie counts as exited.
 * - The app gets a clean environment (app_env.ts), never the agent's, and with `runAs` the
 *   launcher execs it through `setpriv` last (drop_privileges.ts). With a spawn ledger, a
 *   fresh token is written to the state directory before the spawn and given to the app as
 *   `BATON_SPAWN_TOKEN`, and its PID and start time are written after it (spawn_token.ts):
 *   that is how a restarted agent proves a process is its own.
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
import { cleanStaleCgroups, type NodeCgroups, releaseNodeCgroups } from "./cgroup.ts";
import { describeLimits } from "./limits.ts";
import type { SpawnLedger } from "./spawn_token.ts";
import type {
  Containment,
  ExitInfo,
  ProcessRunner,
  Spawned,
  SpawnSpec,
  StopOptions,
} from "./process_runner.ts";
import { endWatch } from "./exit_watch.ts";
import { type RealRunnerOptions, RunnerContext } from "./runner_context.ts";
import { spawnApp } from "./spawn_app.ts";
import { adoptApp } from "./adopt.ts";
import { stopApp } from "./stop_app.ts";

export { ADOPTED_EXIT_DETAIL } from "./exit_watch.ts";
export type { RealRunnerOptions } from "./runner_context.ts";

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
  readonly #ctx: RunnerContext;

  /** Creates a runner; see {@linkcode RealRunnerOptions} for the defaults. */
  constructor(options: RealRunnerOptions = {}) {
    this.#ctx = new RunnerContext(options);
  }

  /** The spawn ledger, or null. */
  get spawnLedger(): SpawnLedger | null {
    return this.#ctx.ledger;
  }

  /** The node's app cgroups, or null (process groups only). */
  get cgroups(): NodeCgroups | null {
    return this.#ctx.cgroups;
  }

  /** How the whole tree of a watched process is reached (null: not watched). */
  containment(pid: number): Containment | null {
    const watch = this.#ctx.watches.get(pid);
    if (!watch) return null;
    return watch.cgroup !== null ? "cgroup" : watch.pgid !== null ? "process group" : "pid";
  }

  /** {@inheritDoc ProcessRunner.cleanStale} */
  cleanStale(adopted: string[]): string[] {
    if (this.#ctx.cgroups === null) return [];
    return cleanStaleCgroups(this.#ctx.cgroups, new Set(adopted));
  }

  /** The cgroup directory of a watched process, or null. */
  cgroupOfPid(pid: number): string | null {
    return this.#ctx.watches.get(pid)?.cgroup ?? null;
  }

  /** {@inheritDoc ProcessRunner.spawn} */
  spawn(spec: SpawnSpec): Promise<Spawned> {
    return spawnApp(this.#ctx, spec);
  }

  /** The limits of a watched process and how each is applied (status), or null. */
  limitsOf(pid: number): string | null {
    const plan = this.#ctx.limits.get(pid);
    return plan !== undefined ? describeLimits(plan) : null;
  }

  /** {@inheritDoc ProcessRunner.adopt} */
  adopt(
    app: string,
    pid: number,
    startTime: number,
    extras: Pick<SpawnSpec, "limits" | "logs"> = {},
  ): void {
    adoptApp(this.#ctx, app, pid, startTime, extras);
  }

  /** {@inheritDoc ProcessRunner.stop} */
  stop(app: string, pid: number, options: StopOptions): Promise<void> {
    return stopApp(this.#ctx, app, pid, options);
  }

  /** {@inheritDoc ProcessRunner.onExit} */
  onExit(callback: (exit: ExitInfo) => void): void {
    this.#ctx.callbacks.push(callback);
  }

  /** {@inheritDoc ProcessRunner.detachAll} */
  detachAll(): void {
    const ctx = this.#ctx;
    if (ctx.pollTimer !== null) clearTimeout(ctx.pollTimer);
    ctx.pollTimer = null;
    for (const watch of ctx.watches.values()) {
      watch.detached = true;
      endWatch(watch);
    }
    ctx.watches.clear();
    ctx.limits.clear();
    if (ctx.cgroups !== null) releaseNodeCgroups(ctx.cgroups);
  }

  /** PIDs currently watched (for status and tests). */
  watched(): number[] {
    return [...this.#ctx.watches.keys()];
  }
}
