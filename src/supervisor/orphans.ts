/**
 * Finding this node's app processes. Every app baton starts carries `BATON_CLUSTER`,
 * `BATON_NODE`, `BATON_APP` and a per-spawn `BATON_SPAWN_TOKEN`, and leads its own process
 * group; a process like that which the state file does not name is an orphan: the agent died
 * between starting it and recording it. The agent adopts (or, if it is a duplicate, kills)
 * such processes at start, so an agent crash can never leave a second copy of an app behind.
 *
 * The `BATON_*` names are public (the status endpoint shows them): anyone can start a process
 * that carries them. So a process counts only with a proof that the agent started it: the
 * token of its spawn, recorded in the state directory before the spawn, with the recorded
 * owner (spawn_token.ts), or its membership in that app's cgroup of this node. Without a
 * ledger and cgroups nothing is found: an environment alone proves nothing.
 *
 * @module
 */
import { appOfCgroup, type NodeCgroups } from "./cgroup.ts";
import { readProcStat } from "./proc.ts";
import { type LedgerSnapshot, processUid, SPAWN_TOKEN_ENV } from "./spawn_token.ts";

/** A live process-group leader started by baton for `app` on this node. */
export interface AppProcess {
  app: string;
  pid: number;
  startTime: number;
}

/**
 * Every live group leader proven to be app X of `node` in `cluster`: its environment names
 * it and carries a token of X's spawn ledger (with the recorded owner), or it is in X's cgroup.
 *
 * @example
 * ```ts
 * import { SpawnLedger } from "./spawn_token.ts";
 * const ledger = new SpawnLedger("/var/lib/baton/alpha/spawns").snapshot();
 * for (const p of findAppProcesses("demo", "alpha", null, ledger)) console.log(p.app, p.pid);
 * ```
 */
export function findAppProcesses(
  cluster: string,
  node: string,
  cgroups: NodeCgroups | null = null,
  ledger: LedgerSnapshot | null = null,
): AppProcess[] {
  const found: AppProcess[] = [];
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    const stat = readProcStat(pid);
    if (!stat || stat.pgid !== pid || stat.state === "Z" || stat.state === "X") continue;
    const vars = _batonVars(pid);
    let app = vars.get("BATON_APP");
    const named = vars.get("BATON_NODE") === node && vars.get("BATON_CLUSTER") === cluster;
    const proven = app !== undefined && named && ledger !== null && ledger.proves(app, {
      pid,
      startTime: stat.startTime,
      uid: processUid(pid),
      token: vars.get(SPAWN_TOKEN_ENV),
    });
    if (!proven) {
      // Proven ours by its cgroup too (an app may clear its environment).
      app = cgroups !== null ? appOfCgroup(cgroups, pid) ?? undefined : undefined;
      if (!app || appOfCgroup(cgroups!, stat.ppid) === app) continue;
    }
    if (app === undefined) continue;
    // A session an app made itself (a daemon's worker) has that app as its parent: not ours.
    if (_batonVars(stat.ppid).has("BATON_APP")) continue;
    found.push({ app, pid, startTime: stat.startTime });
  }
  return found;
}

/** The BATON_* variables of a process's environment (empty if unreadable). */
function _batonVars(pid: number): Map<string, string> {
  const vars = new Map<string, string>();
  let env: string;
  try {
    env = Deno.readTextFileSync(`/proc/${pid}/environ`);
  } catch {
    return vars; // gone, or not ours to read
  }
  for (const kv of env.split("\0")) {
    const i = kv.indexOf("=");
    if (i > 0 && kv.startsWith("BATON_")) vars.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return vars;
}
