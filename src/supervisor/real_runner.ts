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
import {
  appOfCgroup,
  cgroupOf,
  cgroupPids,
  cleanStaleCgroups,
  killCgroup,
  type NodeCgroups,
  prepareAppCgroup,
  releaseNodeCgroups,
  removeCgroup,
  signalCgroup,
} from "./cgroup.ts";
import { adoptLimits } from "./limits_adopt.ts";
import {
  describeLimits,
  type LimitPlace,
  type LimitPlan,
  limitsPrefix,
  oomDetail,
  planLimits,
  releaseLimits,
} from "./limits.ts";
import { followPidFile } from "./pid_file.ts";
import { pipePrefix } from "./spawn_extras.ts";
import type { AppLogs } from "../manifest/types.ts";
import { isDeadState, isSameProcess, processGroupAlive, readProcStat } from "./proc.ts";
import { agentUser, appEnvironment } from "./app_env.ts";
import { privilegePrefix } from "./drop_privileges.ts";
import { SPAWN_TOKEN_ENV, type SpawnLedger } from "./spawn_token.ts";
import {
  type Containment,
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
  /**
   * This node's app cgroups (cgroup.ts `openNodeCgroups`): each app then runs in its own cgroup
   * v2 and a stop kills everything in it. Null or absent: process groups only.
   */
  cgroups?: NodeCgroups | null;
  /** Where the token of each spawn is recorded before it (adoption proof); null: none. */
  spawnLedger?: SpawnLedger | null;
  /** `pidFile:` apps: how long the daemon has to fork and write its pid file (default 60 s). */
  pidFileWaitMs?: number;
  /** Cluster and node names (the v1 cgroup paths of `limits:`); default: the app's BATON_ env. */
  names?: { cluster: string; node: string };
  /** The per-host log writer (src/logs/): apps with `logs:` write to its pipes. */
  logWriter?: { pipe(app: string, logs: AppLogs): string } | null;
}

/**
 * Shell snippet: joins the cgroup $2 (if any; a refusal leaves it in the agent's), appends
 * stdout+stderr to the log ($1) and execs the rest of argv. The shell's PID is the app's, so
 * the app and everything it ever starts are in the cgroup before its first instruction.
 */
const _LAUNCHER =
  'log=$1; cg=$2; shift 2; [ -z "$cg" ] || echo $$ 2>/dev/null >"$cg/cgroup.procs"; ' +
  'exec "$@" >>"$log" 2>&1';
/** util-linux setsid, if installed: the launcher then execs the app through it. */
const _SETSID = ["/usr/bin/setsid", "/bin/setsid"].find((path) => {
  try {
    const info = Deno.statSync(path);
    return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}) ?? null;
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
  /** The app's cgroup directory, or null when it does not run in one. */
  cgroup: string | null;
  spawned: boolean;
  /** Exit seen (or watch detached): no further report. */
  done: boolean;
  detached: boolean;
  gone: Promise<void>;
  resolveGone: () => void;
  timer: ReturnType<typeof setTimeout> | null;
  /**
   * Adopted: `/proc/<pid>/stat` kept open. Re-reading an open file is four times cheaper than
   * opening it each poll, and it stays bound to this very process: once the process is reaped
   * a read fails (ESRCH), even if its PID was given to another process since.
   */
  stat: Deno.FsFile | null;
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
  readonly #cgroups: NodeCgroups | null;
  readonly #ledger: SpawnLedger | null;
  readonly #pidFileWaitMs: number;
  readonly #names: { cluster: string; node: string } | null;
  readonly #logWriter: RealRunnerOptions["logWriter"];
  /** `limits:` of the watched processes, by PID (limits.ts). */
  readonly #limits = new Map<number, LimitPlan>();
  readonly #watches = new Map<number, _Watch>();
  readonly #callbacks: Array<(exit: ExitInfo) => void> = [];
  /** The shared poll of adopted processes, while any is watched. */
  #pollTimer: ReturnType<typeof setTimeout> | null = null;

  /** Creates a runner; see {@linkcode RealRunnerOptions} for the defaults. */
  constructor(options: RealRunnerOptions = {}) {
    this.#pollMs = options.pollMs ?? 100;
    this.#stragglerWaitMs = options.stragglerWaitMs ?? 5000;
    this.#killWaitMs = options.killWaitMs ?? 10_000;
    this.#cgroups = options.cgroups ?? null;
    this.#ledger = options.spawnLedger ?? null;
    this.#pidFileWaitMs = options.pidFileWaitMs ?? 60_000;
    this.#names = options.names ?? null;
    this.#logWriter = options.logWriter ?? null;
  }

  /** The spawn ledger, or null. */
  get spawnLedger(): SpawnLedger | null {
    return this.#ledger;
  }

  /** The node's app cgroups, or null (process groups only). */
  get cgroups(): NodeCgroups | null {
    return this.#cgroups;
  }

  /** How the whole tree of a watched process is reached (null: not watched). */
  containment(pid: number): Containment | null {
    const watch = this.#watches.get(pid);
    if (!watch) return null;
    return watch.cgroup !== null ? "cgroup" : watch.pgid !== null ? "process group" : "pid";
  }

  /** {@inheritDoc ProcessRunner.cleanStale} */
  cleanStale(adopted: string[]): string[] {
    if (this.#cgroups === null) return [];
    return cleanStaleCgroups(this.#cgroups, new Set(adopted));
  }

  /** The cgroup directory of a watched process, or null. */
  cgroupOfPid(pid: number): string | null {
    return this.#watches.get(pid)?.cgroup ?? null;
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
    const env = appEnvironment({
      agentEnv: Deno.env.toObject(),
      inherit: spec.inheritEnv ?? [],
      user: spec.runAs ?? agentUser(),
      env: spec.env,
    });
    let dropTo: string[];
    try {
      dropTo = privilegePrefix(spec.runAs, Deno.uid());
    } catch (error) {
      throw new Error(`${what}: ${_message(error)}`);
    }
    const pathVar = env["PATH"] ?? _DEFAULT_PATH;
    const logPath = `${spec.logDir.replace(/\/+$/, "")}/${spec.app}.log`;
    // The three checks at once: each is a file-system round trip, and a restart waits for them.
    const [badCwd, badProgram, badLog] = await Promise.all([
      _checkDirectory(cwd, `${what}: working directory`).then(() => null, (e: Error) => e),
      _findExecutable(program, cwd, pathVar),
      _openLog(spec.logDir, logPath, what),
    ]);
    if (badCwd !== null) throw badCwd;
    if (badProgram !== null) throw new Error(`${what}: ${badProgram}`);
    if (badLog !== null) throw badLog;
    // Recorded before the spawn: an agent that dies right after it can still prove the app.
    let token: string | null = null;
    if (this.#ledger !== null) {
      try {
        token = await this.#ledger.issue(spec.app, spec.runAs?.uid ?? Deno.uid() ?? 0);
      } catch (error) {
        throw new Error(`${what}: cannot record its spawn token: ${_message(error)}`);
      }
      env[SPAWN_TOKEN_ENV] = token;
    }

    // An empty cgroup for it (a leftover of an earlier copy is killed first).
    const cgroup = this.#cgroups !== null ? prepareAppCgroup(this.#cgroups, spec.app) : null;
    const limits = spec.limits ? planLimits(spec.limits, this.#place(spec, cgroup)) : null;
    const pipe = spec.logs ? this.#pipe(spec.app, spec.logs) : null;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("/bin/sh", {
        args: [
          "-c",
          _LAUNCHER,
          "baton-spawn",
          logPath,
          cgroup ?? "",
          ...(limits !== null ? limitsPrefix(limits) : []),
          ...(pipe !== null ? pipePrefix(pipe) : []),
          ...(_SETSID !== null ? [_SETSID] : []),
          ...dropTo,
          ...spec.command,
        ],
        cwd,
        env,
        clearEnv: true,
        detached: _SETSID === null,
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
    if (limits !== null) this.#limits.set(pid, limits);
    if (spec.pidFile) {
      const followed = await this.#follow(spec, child, startTime, cgroup).catch((error) => {
        if (limits !== null) releaseLimits(limits);
        throw error;
      });
      if (followed !== null) {
        this.#limits.delete(pid);
        if (limits !== null) this.#limits.set(followed.pid, limits);
        return followed;
      }
    }
    const watch = this.#watch(spec.app, pid, startTime, pid, cgroup, true);
    if (token !== null && startTime !== 0) {
      await this.#ledger!.record(spec.app, token, pid, startTime);
    }
    if (_SETSID === null) {
      child.status.then((status) => this.#exited(watch, exitDetail(status)));
      if (cgroup !== null) await _untilReady(pid, cgroup, this.#cgroups, () => watch.done);
      if (cgroup !== null && !_inCgroup(pid, cgroup, this.#cgroups)) watch.cgroup = null;
      return { pid, startTime };
    }
    // Resolve only once the app is out of the agent's process group (a Ctrl-C to the agent's
    // group right after a spawn must not reach it). An exit seen meanwhile is reported after
    // the caller has learned the PID (a macrotask runs after the caller's continuation).
    let early: Deno.CommandStatus | null = null;
    let announced = false;
    child.status.then((status) => {
      if (announced) this.#exited(watch, exitDetail(status));
      else early = status;
    });
    await _untilReady(pid, cgroup, this.#cgroups, () => early !== null);
    // Not in its cgroup (the write was refused, or it is gone): the process group it is.
    if (cgroup !== null && !_inCgroup(pid, cgroup, this.#cgroups)) {
      watch.cgroup = null;
      if (cgroupPids(cgroup).length === 0) removeCgroup(cgroup);
    }
    announced = true;
    if (early !== null) {
      const status: Deno.CommandStatus = early;
      setTimeout(() => this.#exited(watch, exitDetail(status)), 0);
    }
    return { pid, startTime };
  }

  /**
   * A `pidFile:` app: waits for the daemon's PID (pid_file.ts) and watches it as an adopted
   * process. Null when the file names the launcher itself (a daemon that did not fork): the
   * caller then watches the launcher as usual. A failure leaves nothing of the app running.
   */
  async #follow(
    spec: SpawnSpec,
    child: Deno.ChildProcess,
    launcherStart: number,
    cgroup: string | null,
  ): Promise<Spawned | null> {
    let exit: Deno.CommandStatus | null = null;
    const status = child.status.then((s) => (exit = s));
    const env: Record<string, string> = { BATON_APP: spec.env["BATON_APP"] ?? spec.app };
    for (const key of ["BATON_CLUSTER", "BATON_NODE"]) {
      const value = spec.env[key];
      if (value !== undefined) env[key] = value;
    }
    let followed: Spawned;
    try {
      followed = await followPidFile({
        path: spec.pidFile!,
        launcherPid: child.pid,
        launcherExit: () => exit,
        trust: {
          notBefore: launcherStart,
          cgroupDir: cgroup,
          cgroupMount: this.#cgroups?.mount ?? null,
          uid: spec.runAs?.uid ?? Deno.uid() ?? 0, // the app's user (`user:`), else the agent's
          env,
        },
        timeoutMs: this.#pidFileWaitMs,
      });
    } catch (error) {
      if (cgroup !== null) await this.#clearCgroup(cgroup);
      _kill(-child.pid, "SIGKILL");
      _kill(child.pid, "SIGKILL");
      throw new Error(`cannot start app "${spec.app}": ${_message(error)}`);
    }
    if (followed.pid === child.pid) return null;
    await status;
    this.adopt(spec.app, followed.pid, followed.startTime);
    return followed;
  }

  /** The log writer's pipe for an app, or null (no writer: one appended file, as without). */
  #pipe(app: string, logs: AppLogs): string | null {
    try {
      return this.#logWriter?.pipe(app, logs) ?? null;
    } catch {
      return null;
    }
  }

  /** Where an app's limits go (limits.ts). */
  #place(spec: Pick<SpawnSpec, "app" | "env">, v2Dir: string | null): LimitPlace {
    return {
      app: spec.app,
      cluster: this.#names?.cluster ?? spec.env["BATON_CLUSTER"] ?? "default",
      node: this.#names?.node ?? spec.env["BATON_NODE"] ?? "default",
      v2Dir,
    };
  }

  /** The limits of a watched process and how each is applied (status), or null. */
  limitsOf(pid: number): string | null {
    const plan = this.#limits.get(pid);
    return plan !== undefined ? describeLimits(plan) : null;
  }

  /** {@inheritDoc ProcessRunner.adopt} */
  adopt(
    app: string,
    pid: number,
    startTime: number,
    extras: Pick<SpawnSpec, "limits" | "logs"> = {},
  ): void {
    if (this.#watches.has(pid)) return;
    // The log writer keeps reading its pipe; adopting (or replacing) it here keeps it watched.
    if (extras.logs) this.#pipe(app, extras.logs);
    if (extras.limits && !this.#limits.has(pid)) {
      const v2Dir = this.#cgroups !== null ? `${this.#cgroups.dir}/${app}` : null;
      this.#limits.set(pid, adoptLimits(extras.limits, this.#place({ app, env: {} }, v2Dir), pid));
    }
    const stat = readProcStat(pid);
    // Signal the group only if the process leads it (as everything we spawn does).
    const same = stat !== null && stat.startTime === startTime;
    const pgid = same && stat.pgid === pid ? pid : null;
    // Proven ours by its cgroup too: it is in this node's cgroup of that very app.
    const cgroup = same && this.#cgroups !== null && appOfCgroup(this.#cgroups, pid) === app
      ? `${this.#cgroups.dir}/${app}`
      : null;
    const watch = this.#watch(app, pid, startTime, pgid, cgroup, false);
    try {
      watch.stat = Deno.openSync(`/proc/${pid}/stat`);
    } catch {
      watch.stat = null;
    }
    if (watch.stat === null || !_alive(watch.stat) || !isSameProcess(pid, startTime)) {
      // Already gone: reported as soon as the caller has returned.
      watch.timer = setTimeout(() => {
        watch.timer = null;
        this.#exited(watch, ADOPTED_EXIT_DETAIL);
      }, 0);
      return;
    }
    this.#armPoll();
  }

  /**
   * One timer polls every adopted process in /proc (a timer per process would wake the agent
   * pollMs⁻¹ times a second for each of them); it stops when nothing adopted is left.
   */
  #armPoll(): void {
    if (this.#pollTimer !== null) return;
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = null;
      let left = 0;
      for (const watch of [...this.#watches.values()]) {
        if (watch.spawned || watch.done) continue;
        if (watch.stat !== null && _alive(watch.stat)) left++;
        else this.#exited(watch, ADOPTED_EXIT_DETAIL);
      }
      if (left > 0) this.#armPoll();
    }, this.#pollMs);
  }

  /** {@inheritDoc ProcessRunner.stop} */
  async stop(app: string, pid: number, options: StopOptions): Promise<void> {
    const watch = this.#watches.get(pid) ?? null;
    let startTime: number;
    let pgid: number | null;
    let cgroup: string | null;
    if (watch !== null) {
      startTime = watch.startTime;
      pgid = watch.pgid;
      cgroup = watch.cgroup;
    } else {
      const stat = readProcStat(pid);
      if (stat === null) return;
      // Not the process that was recorded (its PID was reused): never signal it.
      if (options.startTime !== undefined && stat.startTime !== options.startTime) return;
      startTime = stat.startTime;
      pgid = stat.pgid === pid ? pid : null;
      cgroup = this.#cgroups !== null && appOfCgroup(this.#cgroups, pid) === app
        ? `${this.#cgroups.dir}/${app}`
        : null;
    }
    const gone = () => (watch !== null && watch.done) || !isSameProcess(pid, startTime);
    const signal = (sig: Deno.Signal) => {
      if (gone()) return;
      if (sig === "SIGKILL") {
        // The whole cgroup (cgroup.kill), and the group too (a member may be between fork and
        // its move, never outside both).
        if (cgroup !== null) killCgroup(cgroup);
        if (pgid === null || !_signalGroup(pgid, sig)) _kill(pid, sig);
        return;
      }
      // Every process once (a shell's TERM trap runs once per signal it receives: the soak
      // saw an app log its stop twice): the group, then the cgroup's members outside it.
      const grouped = pgid !== null && _signalGroup(pgid, sig);
      const inGroup = (p: number) => grouped && readProcStat(p)?.pgid === pgid;
      const sent = cgroup !== null ? signalCgroup(cgroup, sig, inGroup) : new Set<number>();
      // A group not made yet (the launcher has not run setsid): the process itself.
      if (!grouped && !sent.has(pid)) _kill(pid, sig);
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
    if (cgroup !== null) {
      // Grandchildren die with the leader: a stop leaves nothing of the app behind.
      if (watch === null) await this.#clearCgroup(cgroup);
      else killCgroup(cgroup);
    }
  }

  /** SIGKILLs what is left in an app's cgroup, waits until it is empty, removes it. */
  async #clearCgroup(dir: string): Promise<void> {
    if (cgroupPids(dir).length > 0) {
      killCgroup(dir);
      const deadline = Date.now() + this.#stragglerWaitMs;
      while (cgroupPids(dir).length > 0 && Date.now() < deadline) {
        await _sleep(10);
        killCgroup(dir);
      }
    }
    removeCgroup(dir);
  }

  /** {@inheritDoc ProcessRunner.onExit} */
  onExit(callback: (exit: ExitInfo) => void): void {
    this.#callbacks.push(callback);
  }

  /** {@inheritDoc ProcessRunner.detachAll} */
  detachAll(): void {
    if (this.#pollTimer !== null) clearTimeout(this.#pollTimer);
    this.#pollTimer = null;
    for (const watch of this.#watches.values()) {
      watch.done = true;
      watch.detached = true;
      if (watch.timer !== null) clearTimeout(watch.timer);
      watch.timer = null;
      _close(watch);
      watch.resolveGone();
    }
    this.#watches.clear();
    this.#limits.clear();
    if (this.#cgroups !== null) releaseNodeCgroups(this.#cgroups);
  }

  /** PIDs currently watched (for status and tests). */
  watched(): number[] {
    return [...this.#watches.keys()];
  }

  #watch(
    app: string,
    pid: number,
    startTime: number,
    pgid: number | null,
    cgroup: string | null,
    spawned: boolean,
  ) {
    let resolveGone = () => {};
    const gone = new Promise<void>((resolve) => (resolveGone = resolve));
    const watch: _Watch = {
      app,
      pid,
      startTime,
      pgid,
      cgroup,
      spawned,
      done: false,
      detached: false,
      gone,
      resolveGone,
      timer: null,
      stat: null,
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
    _close(watch);
    watch.resolveGone();
    // Read before the cgroup is cleared and removed: its OOM counter goes with it.
    const limits = this.#limits.get(watch.pid) ?? null;
    this.#limits.delete(watch.pid);
    detail = oomDetail(limits, detail);
    // Everything the app started, wherever it went (setsid, double fork): its cgroup.
    if (watch.cgroup !== null) await this.#clearCgroup(watch.cgroup);
    // An empty group (the usual case: the app had no children) is known from one kill(2);
    // only when something is left is /proc scanned, to tell live stragglers from zombies.
    if (watch.pgid !== null && _signalGroup(watch.pgid, "SIGKILL")) {
      const pgid = watch.pgid;
      const deadline = Date.now() + this.#stragglerWaitMs;
      while (processGroupAlive(pgid) && Date.now() < deadline) {
        await _sleep(20);
        _kill(-pgid, "SIGKILL");
      }
    }
    if (limits !== null) releaseLimits(limits);
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

const _statBuf = new Uint8Array(1024);
const _decoder = new TextDecoder();

/** Whether the process of an open `/proc/<pid>/stat` still runs (not reaped, not a zombie). */
function _alive(stat: Deno.FsFile): boolean {
  try {
    stat.seekSync(0, Deno.SeekMode.Start);
    const n = stat.readSync(_statBuf);
    if (n === null || n === 0) return false;
    const text = _decoder.decode(_statBuf.subarray(0, n));
    const state = text[text.lastIndexOf(")") + 2];
    return state !== undefined && !isDeadState(state);
  } catch {
    return false; // ESRCH: reaped
  }
}

function _close(watch: _Watch): void {
  try {
    watch.stat?.close();
  } catch { /* closed */ }
  watch.stat = null;
}

/**
 * Waits until `pid` leads its own process group (the launcher ran setsid; it joined its cgroup
 * before), it is gone, or `ended()`; bounded to 5 s (signals then fall back to the PID itself).
 * Without setsid (detached spawn) the group exists at once: then it waits for the cgroup.
 */
async function _untilReady(
  pid: number,
  cgroup: string | null,
  tree: NodeCgroups | null,
  ended: () => boolean,
): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const stat = readProcStat(pid);
    if (stat === null || isDeadState(stat.state)) return;
    if (
      stat.pgid === pid && (_SETSID !== null || cgroup === null || _inCgroup(pid, cgroup, tree))
    ) {
      return;
    }
    if (ended() || Date.now() > deadline) return;
    await _sleep(1);
  }
}

/** Whether `pid` is in the cgroup directory `dir`. */
function _inCgroup(pid: number, dir: string, tree: NodeCgroups | null): boolean {
  const path = cgroupOf(pid);
  return path !== null && tree !== null && `${tree.mount}${path}` === dir;
}

/**
 * Signals process group `pgid`; false when the group has no process at all (not even a
 * zombie), true when the signal was sent or refused for another reason.
 */
function _signalGroup(pgid: number, signal: Deno.Signal): boolean {
  if (pgid <= 1) return false;
  try {
    Deno.kill(-pgid, signal);
    return true;
  } catch (error) {
    return !(error instanceof Deno.errors.NotFound);
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

/** Creates the log file (and its directory if missing); the error, or null. */
async function _openLog(logDir: string, logPath: string, what: string): Promise<Error | null> {
  const open = async () => {
    const file = await Deno.open(logPath, { append: true, create: true, mode: 0o640 });
    file.close();
  };
  try {
    await open();
    return null;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      return new Error(`${what}: cannot open log file ${logPath}: ${_message(error)}`);
    }
  }
  try {
    await Deno.mkdir(logDir, { recursive: true });
  } catch (error) {
    return new Error(`${what}: cannot create log directory ${logDir}: ${_message(error)}`);
  }
  try {
    await open();
    return null;
  } catch (error) {
    return new Error(`${what}: cannot open log file ${logPath}: ${_message(error)}`);
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
  // Every PATH entry at once; the first executable in PATH order wins, as for the shell.
  const found = await Promise.all(
    pathVar.split(":").map((dir) => {
      const base = dir === "" ? cwd : dir.startsWith("/") ? dir : `${cwd}/${dir}`;
      return isExecutable(`${base}/${program}`);
    }),
  );
  if (found.includes(true)) return null;
  return `command "${program}" not found in PATH (${pathVar})`;
}
