/**
 * Clocks. The core only ever sees `now()` from a {@linkcode Clock}: monotonic milliseconds,
 * so a wall-clock jump (NTP step, operator `date -s`) neither fires nor delays a timer.
 * Wall time is used only to stamp records for humans.
 *
 * @module
 */

/** Source of time for the agent. */
export interface Clock {
  /** Monotonic milliseconds (arbitrary origin). */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch, for records only. */
  wallNow(): number;
}

/** The real clock: `performance.now()` for decisions, `Date.now()` for records. */
export const realClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
};

/**
 * A clock the test moves by hand.
 *
 * @example
 * ```ts
 * const clock = new ManualClock();
 * clock.advance(1_000);
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #wallOffset: number;
  /** Starts at `start` monotonic ms; wall time follows it from 2026-01-01. */
  constructor(start = 0) {
    this.#now = start;
    this.#wallOffset = Date.UTC(2026, 0, 1);
  }
  /** Current monotonic time. */
  now(): number {
    return this.#now;
  }
  /** Current wall time. */
  wallNow(): number {
    return this.#wallOffset + this.#now;
  }
  /** Move time forward by `ms`. */
  advance(ms: number): void {
    this.#now += ms;
  }
  /** Jump the wall clock only (the monotonic clock is unaffected). */
  jumpWall(ms: number): void {
    this.#wallOffset += ms;
  }
}

/** A pending timer of a {@linkcode Timers}; only the `Timers` that made it can clear it. */
export type TimerHandle = unknown;

/**
 * Timers of the agent and its drivers (tick, request timeouts, check cadence, stop timeouts):
 * the real ones by default, a virtual twin in the simulation (`sim/virtual_time.ts`). Both
 * pass the same contract suite (`tests/timers_contract_test.ts`).
 */
export interface Timers {
  /** Call `fn` once after at least `ms` milliseconds; returns a handle for `clear`. */
  set(fn: () => void, ms: number): TimerHandle;
  /** Cancel a pending `set`; clearing a fired or cleared timer does nothing. */
  clear(handle: TimerHandle): void;
}

/**
 * The real timers: `setTimeout` / `clearTimeout`.
 *
 * @example
 * ```ts
 * const h = realTimers.set(() => console.log("late"), 1_000);
 * realTimers.clear(h);
 * ```
 */
export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as number),
};
