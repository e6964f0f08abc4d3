/**
 * Process identity from Linux `/proc`: a PID alone is not an identity (PIDs are reused), a PID
 * with its start time is. Zombies (`Z`) and dead tasks (`X`) count as gone: PID 1 here reaps
 * orphans slowly, so a process that already exited can linger in `/proc` for a while.
 *
 * @example
 * ```ts
 * const stat = readProcStat(Deno.pid);
 * if (stat !== null && isSameProcess(stat.pid, stat.startTime)) console.log("alive");
 * ```
 *
 * @module
 */

/** The fields of `/proc/<pid>/stat` baton needs. */
export interface ProcStat {
  pid: number;
  /** One-letter state: R, S, D, Z (zombie), T, t, X (dead), I, ... */
  state: string;
  ppid: number;
  /** Process group ID. */
  pgid: number;
  /** Field 22: clock ticks since boot at which the process started. */
  startTime: number;
}

/**
 * Parses the text of a `/proc/<pid>/stat` file. The command name (field 2) sits in
 * parentheses and may itself contain spaces and `)`, so the fixed fields are taken after the
 * LAST `)`. Returns null when the text does not have the expected layout.
 *
 * @example
 * ```ts
 * parseProcStat("42 (my app) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1234 0 0");
 * // → { pid: 42, state: "S", ppid: 1, pgid: 42, startTime: 1234 }
 * ```
 */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  // Fields after the comm start at field 3 (state), so rest[i] is field i + 3.
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const state = rest[0];
  const ppid = Number(rest[1]);
  const pgid = Number(rest[2]);
  const startTime = Number(rest[22 - 3]);
  if (
    state === undefined || state.length !== 1 || !Number.isInteger(pid) ||
    !Number.isInteger(ppid) || !Number.isInteger(pgid) || !Number.isInteger(startTime) ||
    rest[22 - 3] === undefined
  ) {
    return null;
  }
  return { pid, state, ppid, pgid, startTime };
}

/**
 * Reads and parses `/proc/<pid>/stat`. Returns null if the process does not exist (or its
 * stat file cannot be read or parsed).
 *
 * @example
 * ```ts
 * readProcStat(Deno.pid)?.startTime; // e.g. 30828
 * ```
 */
export function readProcStat(pid: number): ProcStat | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  return parseProcStat(text);
}

/** True for the /proc states of a task that has already exited (zombie or dead). */
export function isDeadState(state: string): boolean {
  return state === "Z" || state === "X";
}

/**
 * Whether `pid` is still the very process that had `startTime`: it exists, has not exited
 * (zombie/dead count as exited) and started at the same clock tick. A reused PID is never
 * mistaken for the original process.
 *
 * @example
 * ```ts
 * const me = readProcStat(Deno.pid)!;
 * isSameProcess(me.pid, me.startTime); // true
 * isSameProcess(me.pid, me.startTime + 1); // false
 * ```
 */
export function isSameProcess(pid: number, startTime: number): boolean {
  const stat = readProcStat(pid);
  return stat !== null && !isDeadState(stat.state) && stat.startTime === startTime;
}

/**
 * Lists the PIDs of the live (not zombie/dead) processes whose process group is `pgid`, by
 * scanning `/proc/*\/stat`.
 *
 * @example
 * ```ts
 * processGroupMembers(readProcStat(Deno.pid)!.pgid); // includes Deno.pid
 * ```
 */
export function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  if (!Number.isInteger(pgid) || pgid <= 0) return members;
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return members;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = readProcStat(Number(entry.name));
    if (stat !== null && stat.pgid === pgid && !isDeadState(stat.state)) members.push(stat.pid);
  }
  return members;
}

/**
 * Whether any live (not zombie/dead) process is in process group `pgid`.
 *
 * @example
 * ```ts
 * processGroupAlive(readProcStat(Deno.pid)!.pgid); // true
 * ```
 */
export function processGroupAlive(pgid: number): boolean {
  return processGroupMembers(pgid).length > 0;
}
