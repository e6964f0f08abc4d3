/**
 * Signalling an app's whole tree: its PID, its process group and its cgroup, never anything
 * else (not init, not the agent's own group, not every process).
 *
 * @module
 */
import { cgroupPids, killCgroup, removeCgroup, signalCgroup } from "./cgroup.ts";
import { processGroupAlive, readProcStat } from "./proc.ts";

/** Sends a signal, ignoring a target that no longer exists (or any other refusal). */
export function kill(target: number, signal: Deno.Signal): void {
  // Never signal everything (-1), our own process group (0) or init.
  if (target === 0 || target === 1 || target === -1) return;
  try {
    Deno.kill(target, signal);
  } catch {
    // ESRCH: already gone. EPERM: not ours to signal; the caller's gone() check decides.
  }
}

/**
 * Signals process group `pgid`; false when the group has no process at all (not even a
 * zombie), true when the signal was sent or refused for another reason.
 */
export function signalGroup(pgid: number, signal: Deno.Signal): boolean {
  if (pgid <= 1) return false;
  try {
    Deno.kill(-pgid, signal);
    return true;
  } catch (error) {
    return !(error instanceof Deno.errors.NotFound);
  }
}

/** Where an app's processes are: its leader, its group (or null), its cgroup (or null). */
export interface Tree {
  pid: number;
  pgid: number | null;
  cgroup: string | null;
}

/**
 * Signals a whole tree, each process once. SIGKILL: the cgroup (`cgroup.kill`) and the group
 * too (a member may be between fork and its move, never outside both). Any other signal: the
 * group, then the cgroup's members outside it (a shell's TERM trap runs once per signal it
 * receives: the soak saw an app log its stop twice when both were signalled). The PID itself
 * when the group is not made yet (the launcher has not run setsid) and no cgroup holds it.
 */
export function signalTree(tree: Tree, sig: Deno.Signal): void {
  const { pid, pgid, cgroup } = tree;
  if (sig === "SIGKILL") {
    if (cgroup !== null) killCgroup(cgroup);
    if (pgid === null || !signalGroup(pgid, sig)) kill(pid, sig);
    return;
  }
  const grouped = pgid !== null && signalGroup(pgid, sig);
  const inGroup = (p: number) => grouped && readProcStat(p)?.pgid === pgid;
  const sent = cgroup !== null ? signalCgroup(cgroup, sig, inGroup) : new Set<number>();
  if (!grouped && !sent.has(pid)) kill(pid, sig);
}

/** SIGKILLs what is left in an app's cgroup, waits (≤ `waitMs`) until it is empty, removes it. */
export async function clearCgroup(dir: string, waitMs: number): Promise<void> {
  if (cgroupPids(dir).length > 0) {
    killCgroup(dir);
    const deadline = Date.now() + waitMs;
    while (cgroupPids(dir).length > 0 && Date.now() < deadline) {
      await sleep(10);
      killCgroup(dir);
    }
  }
  removeCgroup(dir);
}

/**
 * SIGKILLs what is left of a process group and waits (≤ `waitMs`) until no live member is left.
 * An empty group (the usual case: the app had no children) is known from one kill(2); only when
 * something is left is /proc scanned, to tell live stragglers from zombies.
 */
export async function reapGroup(pgid: number, waitMs: number): Promise<void> {
  if (!signalGroup(pgid, "SIGKILL")) return;
  const deadline = Date.now() + waitMs;
  while (processGroupAlive(pgid) && Date.now() < deadline) {
    await sleep(20);
    kill(-pgid, "SIGKILL");
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
