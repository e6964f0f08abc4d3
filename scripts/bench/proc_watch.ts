/**
 * An outside observer of processes, reading Linux /proc only: it finds the processes of a
 * program by their argv (argv[0] exactly, plus a unique marker somewhere in argv) and notices
 * new ones within about a millisecond. Each poll lists /proc and reads the cmdline of PIDs it
 * has not classified yet; a young PID is re-read for a while, because a launcher (`sh -c …
 * exec`) changes its argv when it execs the real program.
 *
 * @module
 */

/** Which processes count: `argv[0]` equal to `argv0`, and some argument containing `marker`. */
export interface ProcMatcher {
  argv0: string;
  marker: string;
}

const _dec = new TextDecoder();

/** The argv of a process, or null when it is gone (or a zombie with an empty cmdline). */
export function readArgv(pid: number): string[] | null {
  try {
    const raw = Deno.readFileSync(`/proc/${pid}/cmdline`);
    if (raw.length === 0) return null;
    const text = _dec.decode(raw);
    return (text.endsWith("\0") ? text.slice(0, -1) : text).split("\0");
  } catch {
    return null;
  }
}

/** Whether `argv` belongs to the program described by `m`. */
export function matches(argv: string[] | null, m: ProcMatcher): boolean {
  return argv !== null && argv[0] === m.argv0 && argv.some((a) => a.includes(m.marker));
}

/** PIDs currently listed in /proc. */
export function listPids(): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    const c = e.name.charCodeAt(0);
    if (c >= 48 && c <= 57) pids.push(Number(e.name));
  }
  return pids;
}

/** Whether a process exists and is neither a zombie nor dead. */
export function isLive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat[stat.lastIndexOf(")") + 2];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Live PIDs of the processes that match (a full scan). */
export function findProcs(m: ProcMatcher): number[] {
  return listPids().filter((pid) => matches(readArgv(pid), m) && isLive(pid));
}

/**
 * Watches for new processes of several programs. `arm()` snapshots the PIDs that exist now;
 * `poll()` then reports, per matcher, the first live process that did not exist at `arm()`.
 *
 * @example
 * ```ts
 * const w = new ProcWatch([{ argv0: "/tmp/x/sleep-mark", marker: "sleep-mark" }]);
 * w.arm();
 * Deno.kill(pid, "SIGKILL");
 * while (!w.poll().every((p) => p !== null)) sleepSync(1);
 * ```
 */
export class ProcWatch {
  readonly matchers: ProcMatcher[];
  #known = new Set<number>();
  /** Unmatched new PIDs and when they were first seen (re-read until they age out). */
  #young = new Map<number, number>();
  #found: (number | null)[];
  #foundAt: (number | null)[];

  /** One slot per matcher, in order. */
  constructor(matchers: ProcMatcher[]) {
    this.matchers = matchers;
    this.#found = matchers.map(() => null);
    this.#foundAt = matchers.map(() => null);
  }

  /** Forget earlier findings; processes that exist now are never reported as new. */
  arm(): void {
    this.#known = new Set(listPids());
    this.#young.clear();
    this.#found = this.matchers.map(() => null);
    this.#foundAt = this.matchers.map(() => null);
  }

  /** One scan; returns, per matcher, the new PID found so far (null while none). */
  poll(): (number | null)[] {
    const now = performance.now();
    for (const pid of listPids()) {
      if (this.#known.has(pid)) continue;
      const first = this.#young.get(pid);
      if (first === undefined) this.#young.set(pid, now);
      const argv = readArgv(pid);
      let claimed = false;
      for (let i = 0; i < this.matchers.length; i++) {
        if (this.#found[i] === null && matches(argv, this.matchers[i]!)) {
          this.#found[i] = pid;
          this.#foundAt[i] = now;
          claimed = true;
          break;
        }
      }
      // A launcher may still exec into the program; give up on a PID after 3 s.
      if (claimed || (first !== undefined && now - first > 3000)) {
        this.#known.add(pid);
        this.#young.delete(pid);
      }
    }
    return [...this.#found];
  }

  /** `performance.now()` at which each matcher's new process was first seen. */
  foundAt(): (number | null)[] {
    return [...this.#foundAt];
  }
}

/** SIGKILL every live process that matches (cleanup). */
export function killMatching(m: ProcMatcher): void {
  for (const pid of findProcs(m)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}
