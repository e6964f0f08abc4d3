/**
 * `limits:` per app (memory, CPU weight, tasks, open files), each applied by the best mechanism
 * the host has, in this order:
 *
 * 1. **cgroup v2**, in the app's own cgroup (cgroup.ts), where the `memory`, `cpu` and `pids`
 *    controllers can be enabled down to it (`memory.max`, `cpu.weight`, `pids.max`);
 * 2. **cgroup v1**, in `<controller mount><agent's own v1 cgroup>/baton/<cluster>/<node>/<app>`
 *    of the `memory`, `cpu` and `pids` hierarchies (`memory.limit_in_bytes` and
 *    `memory.memsw.limit_in_bytes`, `cpu.shares` = weight × 1024 / 100, `pids.max`), joined by
 *    the launcher before the app's first instruction (the {@linkcode limitsPrefix} shell);
 * 3. **prlimit** (util-linux), the last resort, and always for open files: `--nofile`; memory
 *    as `--as` (address space, a cruder bound) and tasks as `--nproc` (per user, not per app).
 *    CPU weight has no rlimit: it is then not applied, and status says so.
 *
 * An app killed by its memory limit is reported as such: the cgroup's OOM-kill counter
 * (`memory.events` `oom_kill` in v2, `memory.oom_control` `oom_kill` in v1, else
 * `memory.failcnt` with a SIGKILL) grew since the app started.
 *
 * @example
 * ```ts
 * const plan = planLimits({ memoryBytes: 64 * 2 ** 20, openFiles: 1024 }, {
 *   app: "web", cluster: "demo", node: "alpha", v2Dir: null,
 * });
 * describeLimits(plan); // "memory 64M: cgroup v1; openFiles 1024: prlimit"
 * ```
 *
 * @module
 */
import type { AppLimits } from "../manifest/types.ts";
import { cgroupPids, killCgroup, removeCgroup } from "./cgroup.ts";

/** How one limit is enforced. */
export type LimitMechanism = "cgroup v2" | "cgroup v1" | "prlimit" | "not applied";

/** Where an app's limits live and how to read an OOM kill. */
export interface LimitPlan {
  limits: AppLimits;
  /** Per limit key set in `limits`: how it is enforced. */
  how: Partial<Record<keyof AppLimits, LimitMechanism>>;
  /** cgroup v1 directories the launcher joins (memory, cpu, pids: those used). */
  v1Dirs: string[];
  /** prlimit options (`--nofile=N:N`, ...), empty when none. */
  prlimit: string[];
  /** Where the memory limit's OOM kills are counted, or null. */
  oom: { file: string; kind: "v2" | "v1" } | null;
  /** OOM kills counted when the app started (the counter of a reused cgroup is not reset). */
  oomBaseline: number;
}

/** Where the app's cgroups are: names for the v1 paths, and its v2 cgroup (or null). */
export interface LimitPlace {
  app: string;
  cluster: string;
  node: string;
  /** The app's cgroup v2 directory (cgroup.ts), or null when it runs in none. */
  v2Dir: string | null;
  /** Test seam: the v1 mounts (controller → mount + the agent's own path). */
  v1?: Partial<Record<"memory" | "cpu" | "pids", string>>;
  /** Test seam: the prlimit binary (null: none). */
  prlimitPath?: string | null;
}

/** util-linux prlimit, if installed. */
export const PRLIMIT_PATH: string | null = ["/usr/bin/prlimit", "/bin/prlimit"].find(_exists) ??
  null;
const _UNITS = ["", "K", "M", "G", "T"];

/**
 * Decides how each limit is applied and creates the cgroups it needs (with their limits
 * written). Call it before the launch; the launcher joins `v1Dirs` and runs `prlimit`.
 *
 * @example
 * ```ts
 * const plan = planLimits({ tasks: 64 }, { app: "w", cluster: "c", node: "n", v2Dir: null });
 * plan.how.tasks; // "cgroup v1" on a host with the v1 pids hierarchy
 * ```
 */
export function planLimits(limits: AppLimits, place: LimitPlace): LimitPlan {
  const plan: LimitPlan = { limits, how: {}, v1Dirs: [], prlimit: [], oom: null, oomBaseline: 0 };
  const v1 = place.v1 ?? v1Roots();
  const v1Dir = (ctrl: "memory" | "cpu" | "pids"): string | null => {
    const root = v1[ctrl];
    if (root === undefined) return null;
    const dir = `${root}/baton/${place.cluster}/${place.node}/${place.app}`;
    if (plan.v1Dirs.includes(dir)) return dir;
    if (!_freshDir(dir)) return null;
    plan.v1Dirs.push(dir);
    return dir;
  };
  const v2 = place.v2Dir;
  const v2Has = (ctrl: string) => v2 !== null && _enableV2(v2, ctrl);
  const prlimitPath = place.prlimitPath === undefined ? PRLIMIT_PATH : place.prlimitPath;
  const viaPrlimit = (key: keyof AppLimits, option: string): void => {
    if (prlimitPath === null) {
      plan.how[key] = "not applied";
      return;
    }
    plan.prlimit.push(option);
    plan.how[key] = "prlimit";
  };

  if (limits.memoryBytes !== undefined) {
    const bytes = String(limits.memoryBytes);
    if (v2Has("memory") && _write(`${v2}/memory.max`, bytes)) {
      _write(`${v2}/memory.swap.max`, "0");
      plan.how.memoryBytes = "cgroup v2";
      plan.oom = { file: `${v2}/memory.events`, kind: "v2" };
    } else {
      const dir = v1Dir("memory");
      if (dir !== null && _write(`${dir}/memory.limit_in_bytes`, bytes)) {
        _write(`${dir}/memory.memsw.limit_in_bytes`, bytes);
        plan.how.memoryBytes = "cgroup v1";
        plan.oom = { file: `${dir}/memory.oom_control`, kind: "v1" };
      } else {
        viaPrlimit("memoryBytes", `--as=${bytes}`);
      }
    }
  }
  if (limits.cpuWeight !== undefined) {
    const weight = limits.cpuWeight;
    if (v2Has("cpu") && _write(`${v2}/cpu.weight`, String(weight))) {
      plan.how.cpuWeight = "cgroup v2";
    } else {
      const dir = v1Dir("cpu");
      const shares = String(Math.max(2, Math.round((weight * 1024) / 100)));
      plan.how.cpuWeight = dir !== null && _write(`${dir}/cpu.shares`, shares)
        ? "cgroup v1"
        : "not applied";
    }
  }
  if (limits.tasks !== undefined) {
    const n = String(limits.tasks);
    if (v2Has("pids") && _write(`${v2}/pids.max`, n)) {
      plan.how.tasks = "cgroup v2";
    } else {
      const dir = v1Dir("pids");
      if (dir !== null && _write(`${dir}/pids.max`, n)) plan.how.tasks = "cgroup v1";
      else viaPrlimit("tasks", `--nproc=${n}:${n}`);
    }
  }
  if (limits.openFiles !== undefined) {
    const n = limits.openFiles;
    viaPrlimit("openFiles", `--nofile=${n}:${n}`);
  }
  // Only the v1 hierarchies whose limits were written are joined; the others are removed.
  plan.oomBaseline = oomKills(plan);
  return plan;
}

/**
 * The argv to put before the app's command: a shell that writes its PID into each v1
 * cgroup's `cgroup.procs`, then execs `prlimit OPTIONS --` (if any) and the rest. The PID
 * stays the app's own. Empty when there is nothing to do.
 *
 * @example
 * ```ts
 * limitsPrefix({ v1Dirs: [], prlimit: ["--nofile=64:64"] }); // ["/usr/bin/prlimit", "--nofile=64:64", "--"]
 * ```
 */
export function limitsPrefix(plan: Pick<LimitPlan, "v1Dirs" | "prlimit">): string[] {
  const pr = plan.prlimit.length > 0 && PRLIMIT_PATH !== null
    ? [PRLIMIT_PATH, ...plan.prlimit, "--"]
    : [];
  if (plan.v1Dirs.length === 0) return pr;
  return [
    "/bin/sh",
    "-c",
    'while [ "$1" != -- ]; do echo $$ 2>/dev/null >"$1/cgroup.procs"; shift; done; shift; ' +
    'exec "$@"',
    "baton-limits",
    ...plan.v1Dirs,
    "--",
    ...pr,
  ];
}

/**
 * The OOM kills counted in the app's memory cgroup (0 when it has none or it is unreadable).
 *
 * @example
 * ```ts
 * oomKills({ oom: { file: "/sys/fs/cgroup/memory/baton/c/n/w/memory.oom_control", kind: "v1" } });
 * ```
 */
export function oomKills(plan: Pick<LimitPlan, "oom">): number {
  return _oomCount(plan)?.n ?? 0;
}

/** The OOM-kill counter, and whether it is exact (an `oom_kill` line) or only `failcnt`. */
function _oomCount(plan: Pick<LimitPlan, "oom">): { n: number; exact: boolean } | null {
  if (plan.oom === null) return null;
  try {
    const match = /^oom_kill (\d+)$/m.exec(Deno.readTextFileSync(plan.oom.file));
    if (match?.[1] !== undefined) return { n: Number(match[1]), exact: true };
    if (plan.oom.kind !== "v1") return null;
    // Kernels before 4.13 have no oom_kill line: a failed charge is the evidence left.
    const dir = plan.oom.file.replace(/\/[^/]+$/, "");
    const failed = Number(Deno.readTextFileSync(`${dir}/memory.failcnt`).trim()) > 0;
    return { n: failed ? 1 : 0, exact: false };
  } catch {
    return null;
  }
}

/**
 * The exit detail to report: an OOM kill by the memory limit since the app started is named
 * as such, with the mechanism; anything else is `detail` unchanged.
 *
 * @example
 * ```ts
 * declare const plan: LimitPlan;
 * oomDetail(plan, "killed by SIGKILL"); // "killed by the memory limit (64M, cgroup v1: oom_kill)"
 * ```
 */
export function oomDetail(plan: LimitPlan | null, detail: string): string {
  if (plan === null || plan.limits.memoryBytes === undefined) return detail;
  const count = _oomCount(plan);
  if (count === null || count.n <= plan.oomBaseline) return detail;
  // Only failcnt: a failed charge, which the kernel may have reclaimed; a SIGKILL (or an
  // unknown status) is needed too.
  if (!count.exact && !/SIGKILL|unknown/.test(detail)) return detail;
  return `killed by the memory limit (${formatSize(plan.limits.memoryBytes)}, ` +
    `${plan.how.memoryBytes}: ${count.exact ? "oom_kill" : "failcnt"})`;
}

/**
 * One line for status: each limit with its mechanism.
 *
 * @example
 * ```ts
 * const plan = planLimits({ cpuWeight: 200 }, { app: "w", cluster: "c", node: "n", v2Dir: null });
 * describeLimits(plan); // "cpu 200: cgroup v1"
 * ```
 */
export function describeLimits(plan: Pick<LimitPlan, "limits" | "how">): string {
  const l = plan.limits;
  const parts: string[] = [];
  const add = (key: keyof AppLimits, label: string, value: string) =>
    parts.push(`${label} ${value}: ${plan.how[key] ?? "not applied"}`);
  if (l.memoryBytes !== undefined) add("memoryBytes", "memory", formatSize(l.memoryBytes));
  if (l.cpuWeight !== undefined) add("cpuWeight", "cpu", String(l.cpuWeight));
  if (l.tasks !== undefined) add("tasks", "tasks", String(l.tasks));
  if (l.openFiles !== undefined) add("openFiles", "openFiles", String(l.openFiles));
  return parts.join("; ");
}

/**
 * Removes the app's v1 cgroups once it is gone (what is left in them is SIGKILLed first).
 *
 * @example
 * ```ts
 * const plan = planLimits({ tasks: 8 }, { app: "w", cluster: "c", node: "n", v2Dir: null });
 * releaseLimits(plan);
 * ```
 */
export function releaseLimits(plan: Pick<LimitPlan, "v1Dirs">): void {
  for (const dir of plan.v1Dirs) {
    if (cgroupPids(dir).length > 0) killCgroup(dir);
    removeCgroup(dir);
    // The node's and the cluster's directories too, once empty.
    removeCgroup(dir.replace(/\/[^/]+$/, ""));
    removeCgroup(dir.replace(/\/[^/]+\/[^/]+$/, ""));
  }
}

/** Bytes as the manifest writes them: `64M`, `1G`, `1536K`, `100`. */
export function formatSize(bytes: number): string {
  let unit = 0;
  let n = bytes;
  while (unit < _UNITS.length - 1 && n % 1024 === 0 && n > 0) {
    n /= 1024;
    unit++;
  }
  return `${n}${_UNITS[unit]}`;
}

/**
 * The agent's own cgroup in each v1 hierarchy it uses (`memory`, `cpu`, `pids`), as a
 * directory (`<mount><own path>`), from /proc/self/mountinfo and /proc/self/cgroup.
 *
 * @example
 * ```ts
 * v1Roots().memory; // "/sys/fs/cgroup/memory/process_api/0c0e…" on a hybrid host
 * ```
 */
export function v1Roots(): Partial<Record<"memory" | "cpu" | "pids", string>> {
  const roots: Partial<Record<"memory" | "cpu" | "pids", string>> = {};
  let mountinfo: string;
  let own: string;
  try {
    mountinfo = Deno.readTextFileSync("/proc/self/mountinfo");
    own = Deno.readTextFileSync("/proc/self/cgroup");
  } catch {
    return roots;
  }
  for (const ctrl of ["memory", "cpu", "pids"] as const) {
    let mount: string | null = null;
    for (const line of mountinfo.split("\n")) {
      const [left, right] = line.split(" - ");
      if (left === undefined || right === undefined || !right.startsWith("cgroup ")) continue;
      const options = right.split(" ")[2]?.split(",") ?? [];
      if (options.includes(ctrl)) mount = left.split(" ")[4] ?? null;
    }
    if (mount === null) continue;
    for (const line of own.split("\n")) {
      const [, controllers, path] = line.split(":");
      if (controllers?.split(",").includes(ctrl) && path !== undefined) {
        roots[ctrl] = `${mount}${path === "/" ? "" : path}`;
      }
    }
  }
  return roots;
}

/**
 * Makes `dir` a fresh v1 cgroup: what an earlier copy left in it is SIGKILLed and the cgroup
 * made anew, so its counters (the OOM kills) start at 0. False when it cannot be made.
 */
function _freshDir(dir: string): boolean {
  if (_exists(`${dir}/cgroup.procs`)) {
    if (cgroupPids(dir).length > 0) killCgroup(dir);
    for (let i = 0; i < 50 && cgroupPids(dir).length > 0; i++) _sleepSync(10);
    removeCgroup(dir);
  }
  try {
    Deno.mkdirSync(dir, { recursive: true });
    return _exists(`${dir}/cgroup.procs`);
  } catch {
    return false;
  }
}

/**
 * Whether the v2 controller `ctrl` is available in the app's cgroup `dir`, enabling it in the
 * `cgroup.subtree_control` of each ancestor that offers it (top-down, as far up as it is
 * offered but not yet enabled). Fails where an ancestor holds processes itself (the cgroup v2
 * "no internal processes" rule), e.g. the agent's own cgroup under systemd.
 */
function _enableV2(dir: string, ctrl: string): boolean {
  const has = (d: string, file: string) => {
    try {
      return Deno.readTextFileSync(`${d}/${file}`).split(/\s+/).includes(ctrl);
    } catch {
      return false;
    }
  };
  if (has(dir, "cgroup.controllers")) return true;
  const chain: string[] = [];
  for (let d = dir.replace(/\/[^/]+$/, ""); d.length > 1; d = d.replace(/\/[^/]+$/, "")) {
    chain.unshift(d);
    if (!_exists(`${d}/cgroup.controllers`)) break;
  }
  for (const d of chain) {
    if (has(d, "cgroup.controllers") && !has(d, "cgroup.subtree_control")) {
      _write(`${d}/cgroup.subtree_control`, `+${ctrl}`);
    }
  }
  return has(dir, "cgroup.controllers");
}

function _write(path: string, text: string): boolean {
  try {
    Deno.writeTextFileSync(path, text);
    return true;
  } catch {
    return false;
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
