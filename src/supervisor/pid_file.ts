/**
 * `pidFile:` for forking daemons (nginx and haproxy in their default mode, `pg_ctl start`):
 * the command baton starts (the launcher) forks the real daemon and exits 0; the daemon writes
 * its PID to a file. baton then follows that PID with the same identity as any app (PID and
 * /proc start time), so it is adopted after an agent restart like any other.
 *
 * The daemon writes that file, so its content is a claim, not a proof. A PID is trusted only if
 * - it is alive and started no earlier than the launcher (a stale file naming an older process,
 *   or a PID reused before the launch, is refused);
 * - it runs in the app's own cgroup when the app has one (cgroup.ts), else it carries the app's
 *   `BATON_CLUSTER`/`BATON_NODE`/`BATON_APP` environment, which only the launcher's process
 *   tree inherits;
 * - it is owned by the app's user (its real uid).
 *
 * A refused or missing PID is waited for until the deadline (the daemon may not have written
 * the file yet, or a stale one is still there), then the start fails with the reason.
 *
 * @example
 * ```ts
 * const why = pidTrust(4242, {
 *   notBefore: 1000, cgroupDir: null, cgroupMount: null, uid: 0,
 *   env: { BATON_CLUSTER: "demo", BATON_NODE: "alpha", BATON_APP: "web" },
 * });
 * if (typeof why === "string") console.log(`not trusted: ${why}`);
 * ```
 *
 * @module
 */
import { cgroupOf } from "./cgroup.ts";
import { isDeadState, readProcStat } from "./proc.ts";

/** What a PID named by a pid file must satisfy to be followed. */
export interface PidTrust {
  /** /proc start time of the launcher: the daemon cannot have started before it. */
  notBefore: number;
  /** The app's cgroup v2 directory, or null when it runs in none (then `env` decides). */
  cgroupDir: string | null;
  /** The cgroup v2 mount point (to turn `/proc/<pid>/cgroup` into a directory). */
  cgroupMount: string | null;
  /** The app's user: the PID's real uid must be this one. */
  uid: number;
  /** Variables the app's whole process tree inherits from the launcher. */
  env: Record<string, string>;
}

/**
 * The PID on the first line of a pid file (nginx, haproxy, Postgres' `postmaster.pid`), or null
 * when the file is missing, empty or does not start with a PID.
 *
 * @example
 * ```ts
 * readPidFile("/run/nginx.pid"); // 4242
 * ```
 */
export function readPidFile(path: string): number | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return null;
  }
  const first = text.split("\n", 1)[0]?.trim() ?? "";
  if (!/^\d+$/.test(first)) return null;
  const pid = Number(first);
  return pid > 1 ? pid : null;
}

/**
 * Whether `pid` may be followed as the app: its start time when it may, else why not (a sentence
 * for the start error).
 *
 * @example
 * ```ts
 * const trust = { notBefore: 0, cgroupDir: null, cgroupMount: null, uid: Deno.uid() ?? 0, env: {} };
 * pidTrust(Deno.pid, trust); // the agent's own start time: it has no BATON_APP... unless set
 * ```
 */
export function pidTrust(pid: number, trust: PidTrust): number | string {
  const stat = readProcStat(pid);
  if (stat === null || isDeadState(stat.state)) return `pid ${pid} is not running`;
  if (stat.startTime < trust.notBefore) {
    return `pid ${pid} started before the launcher (a stale pid file?)`;
  }
  if (trust.cgroupDir !== null && trust.cgroupMount !== null) {
    const path = cgroupOf(pid);
    if (path === null || `${trust.cgroupMount}${path}` !== trust.cgroupDir) {
      return `pid ${pid} is not in the app's cgroup ${trust.cgroupDir}`;
    }
  } else {
    const env = _environ(pid);
    for (const [key, value] of Object.entries(trust.env)) {
      if (env.get(key) !== value) {
        return `pid ${pid} is not in the app's process tree (its ${key} is not "${value}")`;
      }
    }
  }
  const uid = _realUid(pid);
  if (uid !== trust.uid) {
    return `pid ${pid} is owned by uid ${uid ?? "?"}, not the app's ${trust.uid}`;
  }
  // Re-read: the checks above must all be about the process that had this start time.
  const again = readProcStat(pid);
  if (again === null || again.startTime !== stat.startTime) return `pid ${pid} is not running`;
  return stat.startTime;
}

/** What {@linkcode followPidFile} watches while the daemon forks. */
export interface FollowOptions {
  /** The pid file (absolute). */
  path: string;
  /** The launcher's PID (a daemon that does not fork may name it: then it is followed). */
  launcherPid: number;
  /** The launcher's exit status, once it has exited. */
  launcherExit: () => { code: number; signal: string | null } | null;
  trust: PidTrust;
  /** How long to wait for the launcher to exit and a trusted PID to appear. */
  timeoutMs: number;
  /** Poll interval (default 20 ms). */
  pollMs?: number;
}

/**
 * Waits until the launcher has exited 0 (a fork-and-exit daemon) and the pid file names a
 * trusted live PID, or the file names the launcher itself (a daemon that stays in the
 * foreground). Resolves with the PID and its start time; rejects with what went wrong (the
 * launcher failed, or no trusted PID before the deadline, with the last refusal).
 *
 * @example
 * ```ts
 * // const { pid, startTime } = await followPidFile({ path: "/tmp/n/nginx.pid", ... });
 * ```
 */
export async function followPidFile(
  options: FollowOptions,
): Promise<{ pid: number; startTime: number }> {
  const deadline = Date.now() + options.timeoutMs;
  let last = `no pid in ${options.path}`;
  for (;;) {
    const exit = options.launcherExit();
    if (exit !== null && (exit.code !== 0 || exit.signal !== null)) {
      const how = exit.signal !== null
        ? `killed by ${exit.signal}`
        : `exited with code ${exit.code}`;
      throw new Error(`the command ${how} before a daemon wrote ${options.path}`);
    }
    const pid = readPidFile(options.path);
    if (pid !== null && (exit !== null || pid === options.launcherPid)) {
      const verdict = pidTrust(pid, options.trust);
      if (typeof verdict === "number") return { pid, startTime: verdict };
      last = verdict;
    } else if (pid !== null) {
      last = `the command (pid ${options.launcherPid}) has not exited yet`;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `expected a trusted pid in ${options.path} within ${options.timeoutMs} ms, found: ${last}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 20));
  }
}

/** The environment of a process (empty if unreadable). */
function _environ(pid: number): Map<string, string> {
  const vars = new Map<string, string>();
  let env: string;
  try {
    env = Deno.readTextFileSync(`/proc/${pid}/environ`);
  } catch {
    return vars;
  }
  for (const kv of env.split("\0")) {
    const i = kv.indexOf("=");
    if (i > 0) vars.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return vars;
}

/** The real uid of a process (`Uid:` in /proc/<pid>/status), or null. */
function _realUid(pid: number): number | null {
  try {
    const match = /^Uid:\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return match?.[1] !== undefined ? Number(match[1]) : null;
  } catch {
    return null;
  }
}
