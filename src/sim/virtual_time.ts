/**
 * Virtual time for the simulation: one event loop of timers on a simulated clock, and per
 * agent a {@linkcode TimerGroup} that is that agent's {@linkcode Clock} and
 * {@linkcode Timers}. A group can be frozen (SIGSTOP: its timers and I/O wait, the world goes
 * on) and thawed (SIGCONT: what fell due meanwhile runs at once, in order), or killed (the
 * agent process died: nothing of it runs again).
 *
 * {@linkcode VirtualTime.run} is the loop: run the earliest due timer, then let every
 * microtask it caused run (one macrotask yield: the twins do no real I/O, so the microtask
 * queue is then empty), then call back so the caller checks its invariants, then advance.
 * Same schedule, same order: runs are deterministic.
 *
 * @example
 * ```ts
 * const vt = new VirtualTime();
 * const agentClock = vt.group();
 * agentClock.set(() => console.log("tick at", vt.now), 100);
 * await vt.run(1_000, () => false);
 * ```
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type { Clock, TimerHandle, Timers } from "../clock/clock.ts";

/** Wall time of virtual instant 0 (records only). */
const WALL_ORIGIN = Date.UTC(2026, 0, 1);

interface _Entry {
  at: number;
  seq: number;
  fn: () => void;
  group: TimerGroup | null;
  cancelled: boolean;
}

/** One macrotask turn: every microtask queued before it has run when it resolves. */
export function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The simulated clock and its timer queue (a binary heap by time, then insertion order). */
export class VirtualTime implements Timers {
  #now = 0;
  #seq = 0;
  #heap: _Entry[] = [];

  /** Current simulated time (ms). */
  get now(): number {
    return this.#now;
  }

  /** A world timer (not frozen or killed with any agent). */
  set(fn: () => void, ms: number): TimerHandle {
    return this._schedule(fn, ms, null);
  }

  /** Cancel a timer of this loop or of one of its groups. */
  clear(handle: TimerHandle): void {
    const e = handle as _Entry | null;
    if (e && typeof e === "object" && "cancelled" in e) {
      e.cancelled = true;
      e.group?._forget(e);
    }
  }

  /** The timers and clock of one agent process; its monotonic clock reads 0 at `now`. */
  group(): TimerGroup {
    return new TimerGroup(this, this.#now);
  }

  /** @internal Queue `fn` at now + ms for `group`. */
  _schedule(fn: () => void, ms: number, group: TimerGroup | null, at?: number): _Entry {
    const e: _Entry = {
      at: at ?? this.#now + Math.max(0, Number.isFinite(ms) ? ms : 0),
      seq: this.#seq++,
      fn,
      group,
      cancelled: false,
    };
    this.#push(e);
    return e;
  }

  /** @internal Queue a deferred timer again, due now (a thawed group). */
  _requeue(e: _Entry): void {
    e.at = this.#now;
    e.seq = this.#seq++;
    this.#push(e);
  }

  /** Wall time at the current instant. */
  wallNow(): number {
    return WALL_ORIGIN + this.#now;
  }

  /**
   * Run timers in order until none is due at or before `until` (the clock then reads
   * `until`), or `after` (called once the microtasks of each timer ran) returns true.
   */
  async run(until: number, after: () => boolean): Promise<void> {
    for (;;) {
      const top = this.#heap[0];
      if (!top || top.at > until) break;
      this.#pop();
      if (top.cancelled) continue;
      const g = top.group;
      if (g !== null) {
        if (g.dead) continue;
        if (g.frozen) {
          g._defer(top);
          continue;
        }
        g._forget(top);
      }
      this.#now = top.at;
      top.fn();
      await drainMicrotasks();
      if (after()) return;
    }
    this.#now = Math.max(this.#now, until);
  }

  #push(e: _Entry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!_before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop();
    if (!last || h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && _before(h[l]!, h[m]!)) m = l;
      if (r < h.length && _before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

function _before(a: _Entry, b: _Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * The clock and timers of one simulated agent process. `now()` is its own monotonic clock
 * (it starts near 0 like `performance.now()` in a new process).
 */
export class TimerGroup implements Clock, Timers {
  readonly #vt: VirtualTime;
  readonly #origin: number;
  #pending = new Set<_Entry>();
  #deferred: _Entry[] = [];
  /** SIGSTOP: nothing of this group runs until {@linkcode TimerGroup.thaw}. */
  frozen = false;
  /** The process is gone: nothing of this group runs again. */
  dead = false;

  /** Use {@linkcode VirtualTime.group}. */
  constructor(vt: VirtualTime, origin: number) {
    this.#vt = vt;
    this.#origin = origin;
  }

  /** The agent's monotonic clock. */
  now(): number {
    return this.#vt.now - this.#origin;
  }

  /** Wall time (shared by every host). */
  wallNow(): number {
    return this.#vt.wallNow();
  }

  /** {@inheritDoc Timers.set} */
  set(fn: () => void, ms: number): TimerHandle {
    if (this.dead) return null;
    const e = this.#vt._schedule(fn, ms, this);
    this.#pending.add(e);
    return e;
  }

  /** {@inheritDoc Timers.clear} */
  clear(handle: TimerHandle): void {
    this.#vt.clear(handle);
  }

  /** SIGSTOP. */
  freeze(): void {
    this.frozen = true;
  }

  /** SIGCONT: what fell due while frozen runs now, in its order. */
  thaw(): void {
    if (this.dead || !this.frozen) return;
    this.frozen = false;
    const late = this.#deferred;
    this.#deferred = [];
    for (const e of late) {
      if (e.cancelled) continue;
      this.#vt._requeue(e);
      this.#pending.add(e);
    }
  }

  /** The process died: drop every timer. */
  kill(): void {
    this.dead = true;
    for (const e of this.#pending) e.cancelled = true;
    for (const e of this.#deferred) e.cancelled = true;
    this.#pending.clear();
    this.#deferred = [];
  }

  /** @internal */
  _forget(e: _Entry): void {
    this.#pending.delete(e);
  }

  /** @internal */
  _defer(e: _Entry): void {
    this.#deferred.push(e);
  }
}
