/**
 * `limits:` of apps that outlive an agent (limits.ts): the plan of an app adopted after an
 * agent restart, read from where its PID is, and the removal of the v1 cgroups a (test)
 * cluster left on the host.
 *
 * @module
 */
import type { AppLimits } from "../manifest/types.ts";
import { cgroupPids, killCgroup, removeCgroup } from "./cgroup.ts";
import {
  type LimitMechanism,
  type LimitPlace,
  type LimitPlan,
  oomKills,
  PRLIMIT_PATH,
  v1Roots,
} from "./limits.ts";

/**
 * The plan of an app adopted after an agent restart (its cgroups exist already, nothing is
 * written): each limit is where the app's PID is found, the OOM counter read as it is now.
 *
 * @example
 * ```ts
 * adoptLimits({ memoryBytes: 2 ** 26 }, { app: "w", cluster: "c", node: "n", v2Dir: null }, 4242);
 * ```
 */
export function adoptLimits(limits: AppLimits, place: LimitPlace, pid: number): LimitPlan {
  const plan: LimitPlan = { limits, how: {}, v1Dirs: [], prlimit: [], oom: null, oomBaseline: 0 };
  const v1 = place.v1 ?? v1Roots();
  const v2 = place.v2Dir !== null && cgroupPids(place.v2Dir).includes(pid) ? place.v2Dir : null;
  const inV1 = (ctrl: "memory" | "cpu" | "pids"): string | null => {
    const root = v1[ctrl];
    const dir = root === undefined
      ? null
      : `${root}/baton/${place.cluster}/${place.node}/${place.app}`;
    if (dir === null || !cgroupPids(dir).includes(pid)) return null;
    if (!plan.v1Dirs.includes(dir)) plan.v1Dirs.push(dir);
    return dir;
  };
  const v2Set = (file: string) => {
    try {
      return v2 !== null && Deno.readTextFileSync(`${v2}/${file}`).trim() !== "max";
    } catch {
      return false;
    }
  };
  const prlimit = (PRLIMIT_PATH !== null ? "prlimit" : "not applied") as LimitMechanism;
  if (limits.memoryBytes !== undefined) {
    const dir = inV1("memory");
    if (v2Set("memory.max")) {
      plan.how.memoryBytes = "cgroup v2";
      plan.oom = { file: `${v2}/memory.events`, kind: "v2" };
    } else if (dir !== null) {
      plan.how.memoryBytes = "cgroup v1";
      plan.oom = { file: `${dir}/memory.oom_control`, kind: "v1" };
    } else plan.how.memoryBytes = prlimit;
  }
  if (limits.cpuWeight !== undefined) {
    const dir = inV1("cpu");
    plan.how.cpuWeight = v2 !== null && _exists(`${v2}/cpu.weight`)
      ? "cgroup v2"
      : dir !== null
      ? "cgroup v1"
      : "not applied";
  }
  if (limits.tasks !== undefined) {
    const dir = inV1("pids");
    plan.how.tasks = v2Set("pids.max") ? "cgroup v2" : dir !== null ? "cgroup v1" : prlimit;
  }
  if (limits.openFiles !== undefined) plan.how.openFiles = prlimit;
  plan.oomBaseline = oomKills(plan);
  return plan;
}

/**
 * Removes the v1 limit cgroups a cluster left on this host (test clusters sharing one host),
 * SIGKILLing what still runs in them, leaves first.
 *
 * @example
 * ```ts
 * removeClusterLimits("local-1a2b3c4d");
 * ```
 */
export function removeClusterLimits(cluster: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.@-]*$/.test(cluster)) return;
  const walk = (dir: string) => {
    try {
      for (const e of Deno.readDirSync(dir)) if (e.isDirectory) walk(`${dir}/${e.name}`);
    } catch { /* gone */ }
    if (cgroupPids(dir).length > 0) killCgroup(dir);
    for (let i = 0; i < 20 && cgroupPids(dir).length > 0; i++) _sleepSync(10);
    removeCgroup(dir);
  };
  for (const root of Object.values(v1Roots())) {
    walk(`${root}/baton/${cluster}`);
    removeCgroup(`${root}/baton`);
  }
}

function _exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function _sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
