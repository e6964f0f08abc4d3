/**
 * Spawning an app: checks (spawn_preflight.ts), the spawn token recorded before the spawn, an
 * empty cgroup, `limits:` and `logs:`, the launcher (launch.ts), then the exit watch; a
 * `pidFile:` app is followed to its daemon's PID and watched as adopted.
 *
 * @module
 */
import { cgroupPids, prepareAppCgroup, removeCgroup } from "./cgroup.ts";
import { limitsPrefix, planLimits, releaseLimits } from "./limits.ts";
import { followPidFile } from "./pid_file.ts";
import { pipePrefix } from "./spawn_extras.ts";
import { readProcStat } from "./proc.ts";
import { SPAWN_TOKEN_ENV } from "./spawn_token.ts";
import { exitDetail, type Spawned, type SpawnSpec } from "./process_runner.ts";
import { errorMessage, preflight } from "./spawn_preflight.ts";
import { inCgroup, launch, SETSID, untilReady } from "./launch.ts";
import { clearCgroup, kill } from "./kill_tree.ts";
import { adoptApp } from "./adopt.ts";
import type { RunnerContext } from "./runner_context.ts";

/** Starts app `spec.app`; see `ProcessRunner.spawn`. */
export async function spawnApp(ctx: RunnerContext, spec: SpawnSpec): Promise<Spawned> {
  const what = `cannot start app "${spec.app}"`;
  const { cwd, env, dropTo, logPath } = await preflight(spec);
  // Recorded before the spawn: an agent that dies right after it can still prove the app.
  let token: string | null = null;
  if (ctx.ledger !== null) {
    try {
      token = await ctx.ledger.issue(spec.app, spec.runAs?.uid ?? Deno.uid() ?? 0);
    } catch (error) {
      throw new Error(`${what}: cannot record its spawn token: ${errorMessage(error)}`);
    }
    env[SPAWN_TOKEN_ENV] = token;
  }

  // An empty cgroup for it (a leftover of an earlier copy is killed first).
  const cgroup = ctx.cgroups !== null ? prepareAppCgroup(ctx.cgroups, spec.app) : null;
  const limits = spec.limits ? planLimits(spec.limits, ctx.place(spec, cgroup)) : null;
  const pipe = spec.logs ? ctx.pipe(spec.app, spec.logs) : null;
  let child: Deno.ChildProcess;
  try {
    child = launch({
      logPath,
      cgroup,
      prefix: [
        ...(limits !== null ? limitsPrefix(limits) : []),
        ...(pipe !== null ? pipePrefix(pipe) : []),
      ],
      dropTo,
      command: spec.command,
      cwd,
      env,
    });
  } catch (error) {
    throw new Error(`${what}: ${errorMessage(error)}`);
  }
  const pid = child.pid;
  // exec keeps the start time, so reading it before or after the shell's exec is the same.
  const startTime = readProcStat(pid)?.startTime ?? 0;
  if (limits !== null) ctx.limits.set(pid, limits);
  if (spec.pidFile) {
    const followed = await _follow(ctx, spec, child, startTime, cgroup).catch((error) => {
      if (limits !== null) releaseLimits(limits);
      throw error;
    });
    if (followed !== null) {
      ctx.limits.delete(pid);
      if (limits !== null) ctx.limits.set(followed.pid, limits);
      return followed;
    }
  }
  const watch = ctx.watch(spec.app, pid, startTime, pid, cgroup, true);
  if (token !== null && startTime !== 0) {
    await ctx.ledger!.record(spec.app, token, pid, startTime);
  }
  if (SETSID === null) {
    child.status.then((status) => ctx.exited(watch, exitDetail(status)));
    if (cgroup !== null) await untilReady(pid, cgroup, ctx.cgroups, () => watch.done);
    if (cgroup !== null && !inCgroup(pid, cgroup, ctx.cgroups)) watch.cgroup = null;
    return { pid, startTime };
  }
  // Resolve only once the app is out of the agent's process group (a Ctrl-C to the agent's
  // group right after a spawn must not reach it). An exit seen meanwhile is reported after
  // the caller has learned the PID (a macrotask runs after the caller's continuation).
  let early: Deno.CommandStatus | null = null;
  let announced = false;
  child.status.then((status) => {
    if (announced) ctx.exited(watch, exitDetail(status));
    else early = status;
  });
  await untilReady(pid, cgroup, ctx.cgroups, () => early !== null);
  // Not in its cgroup (the write was refused, or it is gone): the process group it is.
  if (cgroup !== null && !inCgroup(pid, cgroup, ctx.cgroups)) {
    watch.cgroup = null;
    if (cgroupPids(cgroup).length === 0) removeCgroup(cgroup);
  }
  announced = true;
  if (early !== null) {
    const status: Deno.CommandStatus = early;
    setTimeout(() => ctx.exited(watch, exitDetail(status)), 0);
  }
  return { pid, startTime };
}

/**
 * A `pidFile:` app: waits for the daemon's PID (pid_file.ts) and watches it as an adopted
 * process. Null when the file names the launcher itself (a daemon that did not fork): the
 * caller then watches the launcher as usual. A failure leaves nothing of the app running.
 */
async function _follow(
  ctx: RunnerContext,
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
        cgroupMount: ctx.cgroups?.mount ?? null,
        uid: spec.runAs?.uid ?? Deno.uid() ?? 0, // the app's user (`user:`), else the agent's
        env,
      },
      timeoutMs: ctx.pidFileWaitMs,
    });
  } catch (error) {
    if (cgroup !== null) await clearCgroup(cgroup, ctx.stragglerWaitMs);
    kill(-child.pid, "SIGKILL");
    kill(child.pid, "SIGKILL");
    throw new Error(`cannot start app "${spec.app}": ${errorMessage(error)}`);
  }
  if (followed.pid === child.pid) return null;
  await status;
  adoptApp(ctx, spec.app, followed.pid, followed.startTime);
  return followed;
}
