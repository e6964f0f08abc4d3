/**
 * Adopting a process the runner did not spawn (an app left running by an earlier agent): it is
 * not our child, so its exit is seen by the runner's shared /proc poll, where a zombie counts as
 * exited.
 *
 * @module
 */
import { appOfCgroup } from "./cgroup.ts";
import { adoptLimits } from "./limits_adopt.ts";
import { isSameProcess, readProcStat } from "./proc.ts";
import type { SpawnSpec } from "./process_runner.ts";
import { ADOPTED_EXIT_DETAIL, statAlive } from "./exit_watch.ts";
import type { RunnerContext } from "./runner_context.ts";

/** Watches `pid` (started at `startTime`) as app `app`; see `ProcessRunner.adopt`. */
export function adoptApp(
  ctx: RunnerContext,
  app: string,
  pid: number,
  startTime: number,
  extras: Pick<SpawnSpec, "limits" | "logs"> = {},
): void {
  if (ctx.watches.has(pid)) return;
  // The log writer keeps reading its pipe; adopting (or replacing) it here keeps it watched.
  if (extras.logs) ctx.pipe(app, extras.logs);
  if (extras.limits && !ctx.limits.has(pid)) {
    const place = ctx.place({ app, env: {} }, ctx.cgroupDir(app));
    ctx.limits.set(pid, adoptLimits(extras.limits, place, pid));
  }
  const stat = readProcStat(pid);
  // Signal the group only if the process leads it (as everything we spawn does).
  const same = stat !== null && stat.startTime === startTime;
  const pgid = same && stat.pgid === pid ? pid : null;
  // Proven ours by its cgroup too: it is in this node's cgroup of that very app.
  const cgroup = same && ctx.cgroups !== null && appOfCgroup(ctx.cgroups, pid) === app
    ? ctx.cgroupDir(app)
    : null;
  const watch = ctx.watch(app, pid, startTime, pgid, cgroup, false);
  try {
    watch.stat = Deno.openSync(`/proc/${pid}/stat`);
  } catch {
    watch.stat = null;
  }
  if (watch.stat === null || !statAlive(watch.stat) || !isSameProcess(pid, startTime)) {
    // Already gone: reported as soon as the caller has returned.
    watch.timer = setTimeout(() => {
      watch.timer = null;
      ctx.exited(watch, ADOPTED_EXIT_DETAIL);
    }, 0);
    return;
  }
  ctx.armPoll();
}
