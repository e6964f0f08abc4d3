/**
 * Runs each app's interface check periodically (flow 2 of the design, step t1) and reports
 * every result, tagged with the pid it was taken for, so the core can drop results about a
 * process that has since been replaced.
 *
 * @module
 */

import type { CheckSpec } from "../manifest/types.ts";
import { type CheckResult, type InterfaceCheckSpec, runCheck } from "./run_check.ts";

/** The app to check, the process the results are about, and how to check it. */
export interface CheckTarget {
  app: string;
  pid: number;
  spec: CheckSpec;
}

/** One delivered result. */
export interface CheckReport {
  app: string;
  pid: number;
  ok: boolean;
  detail: string;
}

/** Timers of {@linkcode CheckScheduler}: the real ones by default, a fake in tests. */
export interface CheckTimers {
  /** Monotonic milliseconds. */
  now(): number;
  /** Call `fn` after `ms`; returns a handle for `clear`. */
  set(fn: () => void, ms: number): unknown;
  /** Cancel a pending `set`. */
  clear(handle: unknown): void;
}

/** Options of {@linkcode CheckScheduler}. */
export interface CheckSchedulerOptions {
  /** Runs one check; defaults to {@linkcode runCheck}. Injected by tests. */
  run?: (spec: InterfaceCheckSpec) => Promise<CheckResult>;
  /** Defaults to `performance.now`, `setTimeout` and `clearTimeout`. */
  timers?: CheckTimers;
  /** Told how long each reported check took (metrics); called just before `onResult`. */
  onTimed?: (app: string, ok: boolean, ms: number) => void;
}

const _realTimers: CheckTimers = {
  now: () => performance.now(),
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as number),
};

interface _Watch {
  target: CheckTarget;
  spec: InterfaceCheckSpec;
  timer: unknown;
  stopped: boolean;
  /** The check in flight, if any. */
  inFlight: Promise<void> | null;
  /** A check of the watch this one replaced that is still in flight; waited for first. */
  predecessor: Promise<void> | null;
}

/**
 * Schedules periodic checks, one loop per app. The first check runs `initialDelayMs` after
 * {@linkcode CheckScheduler.watch}, the next ones at a fixed cadence: `intervalMs` after the
 * previous check STARTED, so a hung app is detected within `intervalMs × failures + timeoutMs`
 * when the timeout is shorter than the interval. Two checks of one app are never in flight
 * together (not even across a replacing `watch`): a check still running when the next is due
 * is followed by the next one as soon as it ends.
 *
 * @example
 * ```ts
 * import type { CheckSpec } from "../manifest/types.ts";
 * declare const spec: CheckSpec; // manifest.apps.web.check
 * const scheduler = new CheckScheduler((r) => console.log(r.app, r.pid, r.ok, r.detail));
 * scheduler.watch({ app: "web", pid: 1234, spec });
 * // ... later, when the process was replaced:
 * scheduler.watch({ app: "web", pid: 1250, spec });
 * scheduler.stopAll();
 * ```
 */
export class CheckScheduler {
  #onResult: (r: CheckReport) => void;
  #onTimed: ((app: string, ok: boolean, ms: number) => void) | null;
  #run: (spec: InterfaceCheckSpec) => Promise<CheckResult>;
  #watches = new Map<string, _Watch>();
  #timers: CheckTimers;

  /** `onResult` is called once per finished check of a watched app. */
  constructor(onResult: (r: CheckReport) => void, opts: CheckSchedulerOptions = {}) {
    this.#onResult = onResult;
    this.#onTimed = opts.onTimed ?? null;
    this.#run = opts.run ?? runCheck;
    this.#timers = opts.timers ?? _realTimers;
  }

  /**
   * Start (or replace) periodic checks for this app's current process; a `process`-type
   * spec only stops the previous checks (presence is watched elsewhere).
   */
  watch(target: CheckTarget): void {
    const previous = this.#watches.get(target.app);
    this.unwatch(target.app);
    const spec = target.spec;
    if (spec.type === "process") return;
    const watch: _Watch = {
      target,
      spec,
      timer: null,
      stopped: false,
      inFlight: null,
      predecessor: previous?.inFlight ?? null,
    };
    this.#watches.set(target.app, watch);
    this.#schedule(watch, Math.max(0, spec.initialDelayMs));
  }

  /** Stop checking this app; no result for it is delivered after this returns. */
  unwatch(app: string): void {
    const watch = this.#watches.get(app);
    if (watch === undefined) return;
    watch.stopped = true;
    if (watch.timer !== null) this.#timers.clear(watch.timer);
    watch.timer = null;
    this.#watches.delete(app);
  }

  /** Stop every watch and clear every timer. */
  stopAll(): void {
    for (const app of [...this.#watches.keys()]) this.unwatch(app);
  }

  /** Names of the apps being checked, for status output. */
  watched(): string[] {
    return [...this.#watches.keys()];
  }

  #schedule(watch: _Watch, delayMs: number): void {
    watch.timer = this.#timers.set(() => {
      watch.timer = null;
      void this.#tick(watch);
    }, delayMs);
  }

  async #tick(watch: _Watch): Promise<void> {
    if (watch.predecessor !== null) {
      await watch.predecessor;
      watch.predecessor = null;
    }
    if (watch.stopped) return;
    const startedAt = this.#timers.now();
    let result: CheckResult = { ok: false, detail: "check did not run" };
    const running = (async () => {
      try {
        result = await this.#run(watch.spec);
      } catch (e) {
        result = {
          ok: false,
          detail: `check threw instead of reporting: ${e instanceof Error ? e.message : String(e)}`,
        };
      }
    })();
    watch.inFlight = running;
    await running;
    watch.inFlight = null;
    if (watch.stopped) return;
    try {
      this.#onTimed?.(watch.target.app, result.ok, this.#timers.now() - startedAt);
      this.#onResult({ app: watch.target.app, pid: watch.target.pid, ...result });
    } catch (e) {
      console.error(`check scheduler: onResult for ${watch.target.app} threw:`, e);
    }
    if (watch.stopped) return;
    // Start to start: the time this check took counts towards the interval.
    const due = startedAt + Math.max(0, watch.spec.intervalMs);
    this.#schedule(watch, Math.max(0, due - this.#timers.now()));
  }
}
