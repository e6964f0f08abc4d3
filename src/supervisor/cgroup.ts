/**
 * One cgroup v2 per app: the way to kill everything an app started, including children that
 * called `setsid` or double-forked (they leave the process group, never the cgroup).
 *
 * Where the cgroups live:
 * - the cgroup v2 hierarchy is found in `/proc/self/mountinfo` (`/sys/fs/cgroup` on a unified
 *   host, `/sys/fs/cgroup/unified` on a hybrid one); no controller is needed (`cgroup.kill` and
 *   `cgroup.procs` are core files);
 * - app cgroups go under the agent's OWN cgroup (from `/proc/self/cgroup`):
 *   `<own>/baton/<cluster>/<node>/<app>`. Under systemd that is the unit's cgroup, which the
 *   agent may only manage with `Delegate=yes` (examples/baton.service); the agent stays in the
 *   unit's cgroup and, with no controller enabled there, sub-cgroups may hold processes.
 *   Outside systemd (own cgroup `/`) they go to `<mount>/baton/...`;
 * - `BATON_CGROUP=off` turns cgroups off, `BATON_CGROUP=/abs/dir` names the parent directory.
 *
 * Where no v2 hierarchy is writable, {@linkcode openNodeCgroups} returns null and the runner
 * falls back to the process group (status says which mechanism each app uses).
 *
 * Killing: `cgroup.kill` (Linux 5.14+) SIGKILLs every member at once, race-free; on older
 * kernels the members listed in `cgroup.procs` are SIGKILLed in rounds until none is left.
 *
 * @example
 * ```ts
 * const tree = openNodeCgroups("demo", "alpha");
 * if (tree) {
 *   const dir = prepareAppCgroup(tree, "web"); // empty, ready for `echo $$ > dir/cgroup.procs`
 *   if (dir !== null) {
 *     killCgroup(dir);
 *     removeCgroup(dir);
 *   }
 * }
 * ```
 *
 * @module
 */

/** The cgroup directory of this node's apps (`.../baton/<cluster>/<node>`). */
export interface NodeCgroups {
  /** Absolute directory of the node's app cgroups. */
  dir: string;
  /** The cgroup v2 mount point (to turn `/proc/<pid>/cgroup` paths into directories). */
  mount: string;
}

/**
 * The cgroup v2 mount point, or null when none is mounted.
 *
 * @example
 * ```ts
 * cgroup2Mount(); // "/sys/fs/cgroup/unified" on a hybrid host
 * ```
 */
export function cgroup2Mount(): string | null {
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/self/mountinfo");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    // "<id> <parent> <maj:min> <root> <mount point> <options> [optional...] - <fstype> ..."
    const [left, right] = line.split(" - ");
    if (right === undefined || left === undefined || !right.startsWith("cgroup2 ")) continue;
    const mount = left.split(" ")[4];
    if (mount !== undefined) return _unescape(mount);
  }
  return null;
}

/**
 * The cgroup v2 path of a process (`0::<path>` in `/proc/<pid>/cgroup`), or null.
 *
 * @example
 * ```ts
 * cgroupOf(Deno.pid); // "/" or "/system.slice/baton.service"
 * ```
 */
export function cgroupOf(pid: number | "self"): string | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/cgroup`);
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    if (line.startsWith("0::")) return line.slice(3).replace(/ \(deleted\)$/, "");
  }
  return null;
}

/**
 * Creates (if needed) and returns this node's app cgroup directory, or null when cgroup v2 is
 * absent, turned off (`BATON_CGROUP=off`) or not writable: the caller then uses process groups.
 *
 * @example
 * ```ts
 * openNodeCgroups("demo", "alpha")?.dir; // "/sys/fs/cgroup/unified/baton/demo/alpha"
 * ```
 */
export function openNodeCgroups(
  cluster: string,
  node: string,
  setting: string | undefined = Deno.env.get("BATON_CGROUP"),
): NodeCgroups | null {
  if (setting === "off") return null;
  const mount = cgroup2Mount();
  if (mount === null) return null;
  let parent: string;
  if (setting !== undefined && setting !== "" && setting !== "auto") {
    if (!setting.startsWith(`${mount}/`) && setting !== mount) return null;
    parent = setting.replace(/\/+$/, "");
  } else {
    const own = cgroupOf("self");
    if (own === null) return null;
    parent = `${mount}${own === "/" ? "" : own}/baton`;
  }
  if (!_safeName(cluster) || !_safeName(node)) return null;
  const dir = `${parent}/${cluster}/${node}`;
  try {
    Deno.mkdirSync(dir, { recursive: true });
    // A cgroup directory has cgroup.procs; a plain directory (not a cgroupfs) does not.
    Deno.statSync(`${dir}/cgroup.procs`);
  } catch {
    return null;
  }
  return { dir, mount };
}

/** The directory of one app's cgroup (not created). */
export function appCgroupDir(tree: NodeCgroups, app: string): string {
  return `${tree.dir}/${app}`;
}

/**
 * Makes the app's cgroup, empty: anything still in it (a grandchild of an earlier copy) is
 * killed first. Returns the directory, or null if it cannot be made (the caller falls back).
 */
export function prepareAppCgroup(tree: NodeCgroups, app: string): string | null {
  if (!_safeName(app)) return null;
  const dir = appCgroupDir(tree, app);
  try {
    Deno.mkdirSync(dir, { recursive: true });
  } catch {
    return null;
  }
  if (cgroupPids(dir).length > 0) killCgroup(dir);
  return dir;
}

/**
 * PIDs of the processes in a cgroup (zombies have left it already); empty if it is gone.
 *
 * @example
 * ```ts
 * cgroupPids("/sys/fs/cgroup/unified/baton/demo/alpha/web"); // [4242, 4250]
 * ```
 */
export function cgroupPids(dir: string): number[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${dir}/cgroup.procs`);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const line of text.split("\n")) {
    const pid = Number(line);
    if (line !== "" && Number.isInteger(pid) && pid > 1) pids.push(pid);
  }
  return pids;
}

/**
 * Sends `signal` to every process of the cgroup (there is no cgroup-wide signal but SIGKILL),
 * except those `skip` says were signalled already (a process group signalled just before: a
 * shell's trap runs once per SIGTERM it receives, so a second one would run it twice).
 * Returns the PIDs it signalled.
 */
export function signalCgroup(
  dir: string,
  signal: Deno.Signal,
  skip: (pid: number) => boolean = () => false,
): Set<number> {
  const sent = new Set<number>();
  for (const pid of cgroupPids(dir)) {
    if (pid === Deno.pid || skip(pid)) continue;
    try {
      Deno.kill(pid, signal);
      sent.add(pid);
    } catch { /* gone */ }
  }
  return sent;
}

/**
 * SIGKILLs every process of the cgroup: `cgroup.kill` where the kernel has it, else rounds
 * over `cgroup.procs` (a fork between a read and a kill is caught by the next round, bounded
 * to 100 rounds). Returns whether it is empty afterwards (or gone).
 */
export function killCgroup(dir: string): boolean {
  try {
    Deno.writeTextFileSync(`${dir}/cgroup.kill`, "1");
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !_exists(`${dir}/cgroup.procs`)) return true;
  }
  for (let round = 0; round < 100; round++) {
    const pids = cgroupPids(dir);
    if (pids.length === 0) return true;
    signalCgroup(dir, "SIGKILL");
  }
  return cgroupPids(dir).length === 0;
}

/** Removes an empty cgroup; a populated or missing one is left as it is. */
export function removeCgroup(dir: string): void {
  try {
    Deno.removeSync(dir);
  } catch { /* populated (EBUSY) or gone */ }
}

/**
 * At start: kills and removes every app cgroup of the node whose app is not in `keep` (left by
 * a copy that died while the agent was down, with grandchildren still in it), and removes empty
 * ones. Returns the names of the cgroups that had live processes.
 */
export function cleanStaleCgroups(tree: NodeCgroups, keep: Set<string>): string[] {
  const killed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(tree.dir)];
  } catch {
    return killed;
  }
  for (const entry of entries) {
    if (!entry.isDirectory || keep.has(entry.name)) continue;
    const dir = `${tree.dir}/${entry.name}`;
    if (cgroupPids(dir).length > 0) {
      killed.push(entry.name);
      killCgroup(dir);
      for (let i = 0; i < 50 && cgroupPids(dir).length > 0; i++) _sleepSync(10);
    }
    removeCgroup(dir);
  }
  return killed;
}

/**
 * Removes the node's cgroup directory and its cluster's, if empty (agent shutdown with no app
 * left); a directory still holding app cgroups is kept.
 */
export function releaseNodeCgroups(tree: NodeCgroups): void {
  removeCgroup(tree.dir);
  removeCgroup(tree.dir.replace(/\/[^/]+$/, ""));
}

/**
 * Removes the cgroups a cluster's nodes (or one node) left on this host, every empty one, leaves
 * first; with `kill`, what still runs in them is SIGKILLed first (a test cluster's host dies).
 * For test clusters that share one host. Returns whether some of them are still there.
 *
 * @example
 * ```ts
 * removeClusterCgroups("local-1a2b3c4d", { node: "alpha", kill: true });
 * ```
 */
export function removeClusterCgroups(
  cluster: string,
  opts: { node?: string; kill?: boolean } = {},
): boolean {
  const mount = cgroup2Mount();
  const own = cgroupOf("self");
  if (mount === null || own === null || !_safeName(cluster)) return false;
  if (opts.node !== undefined && !_safeName(opts.node)) return false;
  const root = `${mount}${own === "/" ? "" : own}/baton/${cluster}` +
    (opts.node !== undefined ? `/${opts.node}` : "");
  const walk = (dir: string) => {
    try {
      for (const e of Deno.readDirSync(dir)) if (e.isDirectory) walk(`${dir}/${e.name}`);
    } catch { /* gone */ }
    if (opts.kill && cgroupPids(dir).length > 0) killCgroup(dir);
    removeCgroup(dir);
  };
  walk(root);
  return _exists(root);
}

/** The app whose cgroup `pid` is in, if it is one of this node's app cgroups. */
export function appOfCgroup(tree: NodeCgroups, pid: number): string | null {
  const path = cgroupOf(pid);
  if (path === null) return null;
  const full = `${tree.mount}${path}`;
  if (!full.startsWith(`${tree.dir}/`)) return null;
  const app = full.slice(tree.dir.length + 1);
  return app !== "" && !app.includes("/") ? app : null;
}

function _safeName(name: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.@-]*$/.test(name) && !name.startsWith("cgroup.");
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

/** mountinfo escapes space, tab, newline and backslash as octal. */
function _unescape(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
