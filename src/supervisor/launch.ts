/**
 * The launcher: how an app's process is started, and when it counts as started.
 *
 * `/bin/sh -c LAUNCHER baton-spawn LOG CGROUP [PREFIX...] [setsid] CMD ARGS...`: the shell joins
 * the app's cgroup (if any), opens the log in append mode and `exec`s the rest of argv, so the
 * PID is the app's own and no descriptor of the agent stays open in it. Arguments are positional
 * parameters, never interpolated into shell text. util-linux `setsid` makes the app lead its own
 * session and process group without forking (a plain child never leads a group); without it the
 * spawn falls back to `detached: true` (Deno forks to run a pre-exec hook: 7–30 ms, not ~1 ms).
 *
 * @module
 */
import { cgroupOf, type NodeCgroups } from "./cgroup.ts";
import { isDeadState, readProcStat } from "./proc.ts";
import { sleep } from "./kill_tree.ts";

/**
 * Shell snippet: joins the cgroup $2 (if any; a refusal leaves it in the agent's), appends
 * stdout+stderr to the log ($1) and execs the rest of argv. The shell's PID is the app's, so
 * the app and everything it ever starts are in the cgroup before its first instruction.
 */
const _LAUNCHER =
  'log=$1; cg=$2; shift 2; [ -z "$cg" ] || echo $$ 2>/dev/null >"$cg/cgroup.procs"; ' +
  'exec "$@" >>"$log" 2>&1';

/** util-linux setsid, if installed: the launcher then execs the app through it. */
export const SETSID: string | null = ["/usr/bin/setsid", "/bin/setsid"].find((path) => {
  try {
    const info = Deno.statSync(path);
    return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}) ?? null;

/** What the launcher starts. */
export interface Launch {
  logPath: string;
  /** The app's cgroup directory, or null. */
  cgroup: string | null;
  /** Wrappers exec'd before the command, in order (limits, log pipe, privilege drop). */
  prefix: string[];
  /** Exec'd after `setsid` (the privilege drop: last, so setsid runs as the agent). */
  dropTo: string[];
  command: string[];
  cwd: string;
  env: Record<string, string>;
}

/** Starts the launcher (unref'd: the agent may exit before the app); throws if it cannot. */
export function launch(l: Launch): Deno.ChildProcess {
  const child = new Deno.Command("/bin/sh", {
    args: [
      "-c",
      _LAUNCHER,
      "baton-spawn",
      l.logPath,
      l.cgroup ?? "",
      ...l.prefix,
      ...(SETSID !== null ? [SETSID] : []),
      ...l.dropTo,
      ...l.command,
    ],
    cwd: l.cwd,
    env: l.env,
    clearEnv: true,
    detached: SETSID === null,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  return child;
}

/**
 * Waits until `pid` leads its own process group (the launcher ran setsid; it joined its cgroup
 * before), it is gone, or `ended()`; bounded to 5 s (signals then fall back to the PID itself).
 * Without setsid (detached spawn) the group exists at once: then it waits for the cgroup.
 */
export async function untilReady(
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
      stat.pgid === pid && (SETSID !== null || cgroup === null || inCgroup(pid, cgroup, tree))
    ) {
      return;
    }
    if (ended() || Date.now() > deadline) return;
    await sleep(1);
  }
}

/** Whether `pid` is in the cgroup directory `dir`. */
export function inCgroup(pid: number, dir: string, tree: NodeCgroups | null): boolean {
  const path = cgroupOf(pid);
  return path !== null && tree !== null && `${tree.mount}${path}` === dir;
}
