/**
 * The shared state of one `RealProcessRunner` (real_runner.ts): its options, the
 * watched processes and their limits, the exit callbacks, the one poll of adopted processes,
 * and how an exit is reported (once, after the app's tree is cleared).
 *
 * @module
 */
import type { NodeCgroups } from "./cgroup.ts";
import { type LimitPlace, type LimitPlan, oomDetail, releaseLimits } from "./limits.ts";
import type { AppLogs } from "../manifest/types.ts";
import type { SpawnLedger } from "./spawn_token.ts";
import type { ExitInfo, SpawnSpec } from "./process_runner.ts";
import { ADOPTED_EXIT_DETAIL, endWatch, newWatch, statAlive, type Watch } from "./exit_watch.ts";
import { clearCgroup, reapGroup } from "./kill_tree.ts";

/** Tuning of `RealProcessRunner` (real_runner.ts); every field has a default. */
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

/** One runner's state; spawn_app.ts, adopt.ts and stop_app.ts act on it. */
export class RunnerContext {
  readonly pollMs: number;
  readonly stragglerWaitMs: number;
  readonly killWaitMs: number;
  readonly cgroups: NodeCgroups | null;
  readonly ledger: SpawnLedger | null;
  readonly pidFileWaitMs: number;
  readonly names: { cluster: string; node: string } | null;
  readonly logWriter: RealRunnerOptions["logWriter"];
  /** `limits:` of the watched processes, by PID (limits.ts). */
  readonly limits = new Map<number, LimitPlan>();
  readonly watches = new Map<number, Watch>();
  readonly callbacks: Array<(exit: ExitInfo) => void> = [];
  /** The shared poll of adopted processes, while any is watched. */
  pollTimer: ReturnType<typeof setTimeout> | null = null;

  /** A context with the options' values, or their defaults. */
  constructor(options: RealRunnerOptions) {
    this.pollMs = options.pollMs ?? 100;
    this.stragglerWaitMs = options.stragglerWaitMs ?? 5000;
    this.killWaitMs = options.killWaitMs ?? 10_000;
    this.cgroups = options.cgroups ?? null;
    this.ledger = options.spawnLedger ?? null;
    this.pidFileWaitMs = options.pidFileWaitMs ?? 60_000;
    this.names = options.names ?? null;
    this.logWriter = options.logWriter ?? null;
  }

  /** Starts watching a process (replacing any earlier watch of its PID). */
  watch(
    app: string,
    pid: number,
    startTime: number,
    pgid: number | null,
    cgroup: string | null,
    spawned: boolean,
  ): Watch {
    const watch = newWatch(app, pid, startTime, pgid, cgroup, spawned);
    this.watches.set(pid, watch);
    return watch;
  }

  /** This node's cgroup directory of an app, or null without cgroups. */
  cgroupDir(app: string): string | null {
    return this.cgroups !== null ? `${this.cgroups.dir}/${app}` : null;
  }

  /** The log writer's pipe for an app, or null (no writer: one appended file, as without). */
  pipe(app: string, logs: AppLogs): string | null {
    try {
      return this.logWriter?.pipe(app, logs) ?? null;
    } catch {
      return null;
    }
  }

  /** Where an app's limits go (limits.ts). */
  place(spec: Pick<SpawnSpec, "app" | "env">, v2Dir: string | null): LimitPlace {
    return {
      app: spec.app,
      cluster: this.names?.cluster ?? spec.env["BATON_CLUSTER"] ?? "default",
      node: this.names?.node ?? spec.env["BATON_NODE"] ?? "default",
      v2Dir,
    };
  }

  /**
   * One timer polls every adopted process in /proc (a timer per process would wake the agent
   * pollMs⁻¹ times a second for each of them); it stops when nothing adopted is left.
   */
  armPoll(): void {
    if (this.pollTimer !== null) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      let left = 0;
      for (const watch of [...this.watches.values()]) {
        if (watch.spawned || watch.done) continue;
        if (watch.stat !== null && statAlive(watch.stat)) left++;
        else this.exited(watch, ADOPTED_EXIT_DETAIL);
      }
      if (left > 0) this.armPoll();
    }, this.pollMs);
  }

  /**
   * A watched process ended: kills what is left of its tree (cgroup, then group), releases its
   * limits and reports the exit once to every callback (not for a detached watch).
   */
  async exited(watch: Watch, detail: string): Promise<void> {
    if (watch.done) return;
    endWatch(watch);
    if (this.watches.get(watch.pid) === watch) this.watches.delete(watch.pid);
    // Read before the cgroup is cleared and removed: its OOM counter goes with it.
    const limits = this.limits.get(watch.pid) ?? null;
    this.limits.delete(watch.pid);
    detail = oomDetail(limits, detail);
    // Everything the app started, wherever it went (setsid, double fork): its cgroup.
    if (watch.cgroup !== null) await clearCgroup(watch.cgroup, this.stragglerWaitMs);
    if (watch.pgid !== null) await reapGroup(watch.pgid, this.stragglerWaitMs);
    if (limits !== null) releaseLimits(limits);
    if (watch.detached) return;
    const exit: ExitInfo = { app: watch.app, pid: watch.pid, detail };
    for (const callback of this.callbacks) {
      try {
        callback(exit);
      } catch (error) {
        reportError(error);
      }
    }
  }
}
