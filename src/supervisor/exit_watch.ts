/**
 * The record the real runner keeps for each process it watches ({@linkcode Watch}), and the
 * cheap liveness test of an adopted process through its open `/proc/<pid>/stat`.
 *
 * @module
 */
import { isDeadState } from "./proc.ts";

/** Detail reported for an adopted process: not our child, so its exit status is unknown. */
export const ADOPTED_EXIT_DETAIL = "exited (adopted process: exit status unknown)";

/** One watched process (spawned by the runner, or adopted). */
export interface Watch {
  app: string;
  pid: number;
  startTime: number;
  /** Process group to signal, or null when the process does not lead its own group. */
  pgid: number | null;
  /** The app's cgroup directory, or null when it does not run in one. */
  cgroup: string | null;
  spawned: boolean;
  /** Exit seen (or watch detached): no further report. */
  done: boolean;
  detached: boolean;
  gone: Promise<void>;
  resolveGone: () => void;
  timer: ReturnType<typeof setTimeout> | null;
  /**
   * Adopted: `/proc/<pid>/stat` kept open. Re-reading an open file is four times cheaper than
   * opening it each poll, and it stays bound to this very process: once the process is reaped
   * a read fails (ESRCH), even if its PID was given to another process since.
   */
  stat: Deno.FsFile | null;
}

/** A fresh watch record (not done, no timer, no open stat file). */
export function newWatch(
  app: string,
  pid: number,
  startTime: number,
  pgid: number | null,
  cgroup: string | null,
  spawned: boolean,
): Watch {
  let resolveGone = () => {};
  const gone = new Promise<void>((resolve) => (resolveGone = resolve));
  return {
    app,
    pid,
    startTime,
    pgid,
    cgroup,
    spawned,
    done: false,
    detached: false,
    gone,
    resolveGone,
    timer: null,
    stat: null,
  };
}

/** Marks a watch finished: no timer, stat file closed, `gone` resolved. */
export function endWatch(watch: Watch): void {
  watch.done = true;
  if (watch.timer !== null) clearTimeout(watch.timer);
  watch.timer = null;
  closeStat(watch);
  watch.resolveGone();
}

const _statBuf = new Uint8Array(1024);
const _decoder = new TextDecoder();

/** Whether the process of an open `/proc/<pid>/stat` still runs (not reaped, not a zombie). */
export function statAlive(stat: Deno.FsFile): boolean {
  try {
    stat.seekSync(0, Deno.SeekMode.Start);
    const n = stat.readSync(_statBuf);
    if (n === null || n === 0) return false;
    const text = _decoder.decode(_statBuf.subarray(0, n));
    const state = text[text.lastIndexOf(")") + 2];
    return state !== undefined && !isDeadState(state);
  } catch {
    return false; // ESRCH: reaped
  }
}

/** Closes the watch's open stat file, if any. */
export function closeStat(watch: Watch): void {
  try {
    watch.stat?.close();
  } catch { /* closed */ }
  watch.stat = null;
}

/**
 * Waits until `gone()`, the watch's exit (if watched), or `timeoutMs`; checks every 10 ms.
 */
export async function waitGone(
  gone: () => boolean,
  watch: Watch | null,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!gone() && Date.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.min(10, Math.max(0, deadline - Date.now())));
    });
    await Promise.race(watch !== null ? [tick, watch.gone] : [tick]);
    clearTimeout(timer);
  }
}
