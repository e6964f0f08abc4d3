/**
 * Start order and readiness (`apps.X.dependsOn`, with the meaning of systemd's `Requires=` plus
 * `After=`): pure functions over the core's state that reconcile asks before every spawn and
 * every graceful stop.
 *
 * - An app is **ready** once its current process passed its check once (or, for a `process`
 *   check, once it runs): {@linkcode isReady}.
 * - An app starts only when every app it depends on is ready and not about to go down
 *   ({@linkcode startBlocker}).
 * - A graceful stop of an app waits until the apps that depend on it have exited
 *   ({@linkcode stopBlocker}): stops run in reverse order. SIGKILL paths (self-fencing, a
 *   higher epoch) never wait.
 * - A running app whose dependency goes down (it failed, is restarting or is stopping) is
 *   stopped too and starts again after it ({@linkcode restartedDependency}).
 *
 * The loader rejects unknown names and cycles (`src/manifest/depends.ts`); here a name that is
 * not in the manifest is ignored, and apps of a cycle come last in {@linkcode startOrder}.
 *
 * @module
 */
import type { AppSpec } from "../manifest/types.ts";
import { allowedHere } from "./node_state.ts";
import type { Out } from "./out.ts";
import type { AppState, NodeState } from "./types.ts";

/** `readyTimeout` of an app that sets none. */
export const DEFAULT_READY_TIMEOUT_MS = 60_000;

/**
 * The apps `spec` depends on (empty when none).
 *
 * @example
 * ```ts
 * import type { AppSpec } from "../manifest/types.ts";
 * declare const web: AppSpec;
 * dependsOf(web); // ["db"]
 * ```
 */
export function dependsOf(spec: AppSpec): string[] {
  return spec.dependsOn ?? [];
}

/**
 * How long a switchover waits for `spec` to be ready once it may start.
 *
 * @example
 * ```ts
 * import type { AppSpec } from "../manifest/types.ts";
 * declare const web: AppSpec;
 * readyTimeoutOf(web); // 60000 unless the manifest says otherwise
 * ```
 */
export function readyTimeoutOf(spec: AppSpec): number {
  return spec.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
}

/**
 * The app names in start order: every app after the apps it depends on, ties in manifest
 * order (so the order is deterministic). Stopping runs in the reverse order.
 *
 * @example
 * ```ts
 * import type { AppSpec } from "../manifest/types.ts";
 * declare const apps: Record<string, AppSpec>; // c → b → a
 * startOrder(apps); // ["a", "b", "c"]
 * ```
 */
export function startOrder(apps: Record<string, AppSpec>): readonly string[] {
  let order = orders.get(apps);
  if (order === undefined) {
    order = Object.freeze(_startOrder(apps));
    orders.set(apps, order);
  }
  return order;
}

/** The start order per apps record (never changed: see `dependents`), asked every step. */
const orders = new WeakMap<Record<string, AppSpec>, readonly string[]>();

function _startOrder(apps: Record<string, AppSpec>): string[] {
  const names = Object.keys(apps);
  if (names.every((n) => dependsOf(apps[n]!).length === 0)) return names;
  const waiting = new Map<string, number>();
  for (const name of names) {
    const spec = apps[name];
    waiting.set(name, spec ? dependsOf(spec).filter((d) => d !== name && apps[d]).length : 0);
  }
  const order: string[] = [];
  const placed = new Set<string>();
  for (;;) {
    const next = names.find((n) => !placed.has(n) && waiting.get(n) === 0);
    if (next === undefined) break;
    placed.add(next);
    order.push(next);
    for (const n of names) {
      if (!placed.has(n) && apps[n] && dependsOf(apps[n]).includes(next)) {
        waiting.set(n, (waiting.get(n) ?? 1) - 1);
      }
    }
  }
  // A cycle (the loader refuses them): its apps last; they never start.
  return [...order, ...names.filter((n) => !placed.has(n))];
}

/**
 * Whether the app's current process is ready: it runs, and passed its check once (a `process`
 * check: it runs).
 *
 * @example
 * ```ts
 * import type { AppState } from "./types.ts";
 * declare const db: AppState;
 * if (isReady(db)) console.log("web may start");
 * ```
 */
export function isReady(app: AppState | undefined): boolean {
  return app !== undefined && app.phase === "running" && app.pid !== null &&
    (app.readyAt ?? null) !== null;
}

/**
 * Whether `name` is going down or not up: not running, or running but about to be stopped (it
 * may not run here any more, its spec changed, or an app it depends on restarted or is going
 * down).
 */
export function goingDown(state: NodeState, name: string, seen: Set<string> = new Set()): boolean {
  const spec = state.manifest.apps[name];
  if (!spec || seen.has(name)) return false;
  const app = state.apps[name];
  if (!app || app.phase !== "running") return true;
  if (!allowedHere(state, spec)) return true;
  // In maintenance, and for a movable app of a resuming active, nothing is restarted.
  if (state.maintenance || (spec.movable && state.resume !== null)) return false;
  if (app.specHash !== spec.hash || changedDependency(state, app, spec) !== null) return true;
  // It restarts after a dependency that goes down (a cycle, refused by the loader, stops here).
  seen.add(name);
  return dependsOf(spec).some((dep) => dep !== name && goingDown(state, dep, seen));
}

/** The first app `spec` depends on whose process is not the one this process started with. */
function changedDependency(state: NodeState, app: AppState, spec: AppSpec): string | null {
  for (const dep of dependsOf(spec)) {
    if (!state.manifest.apps[dep] || dep === spec.name) continue;
    const now = state.apps[dep]?.pid ?? null;
    const then = app.depPids?.[dep];
    // Not known (adopted, or a dependency added by a reload): the current process counts.
    if (then === undefined && now !== null) continue;
    if (then !== now) return dep;
  }
  return null;
}

/**
 * Remember the processes of the apps `spec` depends on, as this app's process starts (or is
 * first seen); a dependency missing from the record is added when it runs.
 */
export function noteDependencies(state: NodeState, app: AppState, spec: AppSpec): void {
  const deps = dependsOf(spec);
  if (deps.length === 0) return;
  const record = { ...(app.depPids ?? {}) };
  for (const dep of deps) {
    const pid = state.apps[dep]?.pid ?? null;
    if (record[dep] === undefined && pid !== null) record[dep] = pid;
  }
  app.depPids = record;
}

/**
 * The first app `spec` depends on that is not ready (or is about to go down), or null when it
 * may start now.
 *
 * @example
 * ```ts
 * import type { NodeState } from "./types.ts";
 * declare const state: NodeState;
 * startBlocker(state, state.manifest.apps["web"]!); // "db" until db is ready
 * ```
 */
export function startBlocker(state: NodeState, spec: AppSpec): string | null {
  for (const dep of dependsOf(spec)) {
    if (!state.manifest.apps[dep] || dep === spec.name) continue;
    if (!isReady(state.apps[dep]) || goingDown(state, dep)) return dep;
  }
  return null;
}

/**
 * The apps that depend on `name`, in manifest order.
 *
 * @example
 * ```ts
 * import type { AppSpec } from "../manifest/types.ts";
 * declare const apps: Record<string, AppSpec>;
 * dependentsOf(apps, "db"); // ["web"]
 * ```
 */
export function dependentsOf(apps: Record<string, AppSpec>, name: string): readonly string[] {
  let index = dependents.get(apps);
  if (index === undefined) {
    index = new Map();
    for (const n of Object.keys(apps)) {
      for (const d of new Set(dependsOf(apps[n]!))) {
        if (d === n) continue;
        const list = index.get(d);
        if (list === undefined) index.set(d, [n]);
        else list.push(n);
      }
    }
    dependents.set(apps, index);
  }
  return index.get(name) ?? NONE;
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * Who depends on whom, per apps record (a manifest's records are never changed: a reload is a
 * new manifest). Built once: reconcile asks for every running app in every step, and a scan of
 * the whole record per ask made a start of N apps cost O(N³) (80 s at 1,000 apps).
 */
const dependents = new WeakMap<Record<string, AppSpec>, Map<string, string[]>>();

/**
 * The first app depending on `name` whose process still runs or is being spawned, or null when
 * `name` may be stopped now (reverse order).
 */
export function stopBlocker(state: NodeState, name: string): string | null {
  for (const dep of dependentsOf(state.manifest.apps, name)) {
    const app = state.apps[dep];
    if (app && (app.pid !== null || app.phase === "starting")) return dep;
  }
  return null;
}

/**
 * For a running app: the first app it depends on that restarted since this process started, or
 * is going down (it failed, is restarting, or is stopped), so this one must stop now and start
 * again after it; null otherwise.
 */
export function restartedDependency(state: NodeState, app: AppState, spec: AppSpec): string | null {
  const changed = changedDependency(state, app, spec);
  if (changed !== null) return changed;
  for (const dep of dependsOf(spec)) {
    if (!state.manifest.apps[dep] || dep === spec.name) continue;
    if (goingDown(state, dep)) return dep;
  }
  return null;
}

/** A process of `spec` started: with a `process` check it is ready at once. */
export function markStarted(app: AppState, spec: AppSpec | undefined, now: number): void {
  app.readyAt = !spec || spec.check.type === "process" ? now : null;
}

/** The check of the app's current process passed: the first pass makes it ready. */
export function markCheckPassed(app: AppState, now: number, out: Out): void {
  if ((app.readyAt ?? null) !== null) return;
  app.readyAt = now;
  out.record("info", app.name, "ready", `ready: its check passed (pid ${app.pid})`);
}
