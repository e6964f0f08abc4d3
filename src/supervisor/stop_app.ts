/**
 * Stopping an app: its signal (graceful) then SIGKILL to its whole tree, waiting for the leader
 * to be gone each time; a process that is not the recorded one (PID reused) is never signalled.
 *
 * @module
 */
import { appOfCgroup, killCgroup } from "./cgroup.ts";
import { isSameProcess, readProcStat } from "./proc.ts";
import type { StopOptions } from "./process_runner.ts";
import { waitGone } from "./exit_watch.ts";
import { clearCgroup, kill, signalTree, type Tree } from "./kill_tree.ts";
import type { RunnerContext } from "./runner_context.ts";

/** Stops app `app`'s process `pid`; see `ProcessRunner.stop`. */
export async function stopApp(
  ctx: RunnerContext,
  app: string,
  pid: number,
  options: StopOptions,
): Promise<void> {
  const watch = ctx.watches.get(pid) ?? null;
  let startTime: number;
  let tree: Tree;
  if (watch !== null) {
    startTime = watch.startTime;
    tree = { pid, pgid: watch.pgid, cgroup: watch.cgroup };
  } else {
    const stat = readProcStat(pid);
    if (stat === null) return;
    // Not the process that was recorded (its PID was reused): never signal it.
    if (options.startTime !== undefined && stat.startTime !== options.startTime) return;
    startTime = stat.startTime;
    const cgroup = ctx.cgroups !== null && appOfCgroup(ctx.cgroups, pid) === app
      ? ctx.cgroupDir(app)
      : null;
    tree = { pid, pgid: stat.pgid === pid ? pid : null, cgroup };
  }
  const gone = () => (watch !== null && watch.done) || !isSameProcess(pid, startTime);
  const signal = (sig: Deno.Signal) => {
    if (!gone()) signalTree(tree, sig);
  };

  if (!gone()) {
    if (options.mode === "graceful") {
      signal(options.signal);
      // A stopped (SIGSTOPped, hung in a debugger) process cannot act on SIGTERM until it
      // runs again: wake it, as systemd does.
      signal("SIGCONT");
      await waitGone(gone, watch, options.timeoutMs);
    }
    signal("SIGKILL");
    await waitGone(gone, watch, ctx.killWaitMs);
    if (!gone()) {
      throw new Error(
        `app "${app}": expected pid ${pid} to be gone ${ctx.killWaitMs} ms after SIGKILL, ` +
          `found it still alive (state ${readProcStat(pid)?.state ?? "?"})`,
      );
    }
  }
  if (tree.pgid !== null) kill(-tree.pgid, "SIGKILL");
  if (tree.cgroup !== null) {
    // Grandchildren die with the leader: a stop leaves nothing of the app behind.
    if (watch === null) await clearCgroup(tree.cgroup, ctx.stragglerWaitMs);
    else killCgroup(tree.cgroup);
  }
}
