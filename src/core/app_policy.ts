/**
 * The per-app policy of the design (flows s1–s6 and t1–t5): a failure is restarted once on
 * this node; a failure of the restarted app inside `restart.window` escalates. Escalation
 * asks the cluster part of the core for a handover; while nothing can take the apps, the
 * failing app is restarted with capped exponential backoff and never are healthy apps stopped.
 *
 * @module
 */
import type { AppSpec } from "../manifest/types.ts";
import { allowedHere, human, newApp } from "./node_state.ts";
import type { Out } from "./out.ts";
import { markCheckPassed, markStarted } from "./start_order.ts";
import { type AppState, DEFAULT_STOP, type Event, type NodeState } from "./types.ts";

/** The app's state, created stopped if the core has not seen it yet. */
export function appState(state: NodeState, spec: AppSpec): AppState {
  let app = state.apps[spec.name];
  if (!app) {
    app = newApp(spec.name, spec.restart.backoffMs);
    state.apps[spec.name] = app;
  }
  return app;
}

/** A process of ours was started. */
export function onStarted(
  state: NodeState,
  ev: Extract<Event, { type: "app_started" }>,
  now: number,
  out: Out,
): void {
  const spec = state.manifest.apps[ev.app];
  const app = spec ? appState(state, spec) : state.apps[ev.app];
  if (!app) {
    // Started for an app that is gone from both manifest and state: stop it right away.
    out.record("warn", ev.app, "stray", `pid ${ev.pid} belongs to no known app; stopping it`);
    out.push({
      type: "stop",
      app: ev.app,
      pid: ev.pid,
      mode: "graceful",
      ...DEFAULT_STOP,
      reason: "unknown app",
    });
    return;
  }
  app.phase = "running";
  app.pid = ev.pid;
  app.startTime = ev.startTime;
  app.specHash = ev.specHash;
  app.startedAt = now;
  app.consecutiveCheckFailures = 0;
  app.lastCheck = null;
  app.stopping = null;
  markStarted(app, spec, now);
  out.record("info", ev.app, "started", `started as pid ${ev.pid} (epoch ${state.epoch})`);
}

/** A spawn failed: the command could not be run at all. */
export function onStartFailed(
  state: NodeState,
  ev: Extract<Event, { type: "app_start_failed" }>,
  now: number,
  out: Out,
): void {
  const app = state.apps[ev.app];
  if (!app || app.phase !== "starting") return;
  app.pid = null;
  app.startTime = null;
  fail(state, app, `cannot start: ${ev.error}`, false, now, out);
}

/** A watched process exited (crash, kill, or the end of a stop we asked for). */
export function onExited(
  state: NodeState,
  ev: Extract<Event, { type: "app_exited" }>,
  now: number,
  out: Out,
): void {
  const app = state.apps[ev.app];
  if (!app || app.pid !== ev.pid) return; // an older process of this app: already handled
  app.pid = null;
  app.startTime = null;
  app.specHash = null;
  if (app.phase === "stopping") {
    const stopping = app.stopping;
    app.stopping = null;
    app.phase = "stopped";
    out.record(
      "info",
      app.name,
      "stopped",
      `pid ${ev.pid} stopped (${stopping?.reason ?? "stop"})`,
    );
    if (stopping && stopping.restartAfterMs !== null) {
      // A failing process we stopped ourselves: its restart delay starts now.
      app.phase = "backoff";
      app.backoffUntil = now + stopping.restartAfterMs;
    }
    if (!state.manifest.apps[app.name]) delete state.apps[app.name];
    return;
  }
  fail(state, app, `pid ${ev.pid} ${ev.detail}`, false, now, out);
}

/** An app recorded as running was gone when the agent started: a failure like any other. */
export function onLost(
  state: NodeState,
  app: AppState,
  now: number,
  out: Out,
): void {
  fail(state, app, "exited while the agent was not running", false, now, out);
}

/** An interface check result for one process. */
export function onCheck(
  state: NodeState,
  ev: Extract<Event, { type: "check" }>,
  now: number,
  out: Out,
): void {
  const app = state.apps[ev.app];
  const spec = state.manifest.apps[ev.app];
  if (!app || !spec || app.pid !== ev.pid || app.phase !== "running") return;
  if (spec.check.type === "process") return;
  app.lastCheck = { ok: ev.ok, at: now, detail: ev.detail };
  if (ev.ok) {
    markCheckPassed(app, now, out);
    if (app.consecutiveCheckFailures > 0) {
      out.record("info", app.name, "check_ok", `check passes again: ${ev.detail}`);
    }
    app.consecutiveCheckFailures = 0;
    return;
  }
  app.consecutiveCheckFailures++;
  const n = app.consecutiveCheckFailures;
  const limit = spec.check.failures;
  if (n < limit) {
    out.record("warn", app.name, "check_failed", `check failed (${n} of ${limit}): ${ev.detail}`);
    return;
  }
  app.consecutiveCheckFailures = 0;
  fail(
    state,
    app,
    `${spec.check.type} check failed ${limit} time(s) in a row: ${ev.detail}`,
    true,
    now,
    out,
  );
}

/** Give back the restart counter of apps that stayed healthy for their whole window. */
export function resetHealthyWindows(state: NodeState, now: number, out: Out): void {
  for (const app of Object.values(state.apps)) {
    const spec = state.manifest.apps[app.name];
    if (spec) maybeResetWindow(app, spec, now, out);
  }
}

function maybeResetWindow(app: AppState, spec: AppSpec, now: number, out: Out): void {
  if (app.phase !== "running" || app.startedAt === null) return;
  if (app.restarts === 0 && !app.escalated) return;
  if (now - app.startedAt < spec.restart.windowMs) return;
  out.record(
    "info",
    app.name,
    "window_reset",
    `healthy for ${human(spec.restart.windowMs)}: restart counter back to 0`,
  );
  app.restarts = 0;
  app.escalated = false;
  app.backoffMs = spec.restart.backoffMs;
}

/**
 * The decision of the design for one failure: restart once (s5/t4), escalate on a failure of
 * the restarted app (s6/t5). `alive` says the process still exists (failed check, hang).
 */
function fail(
  state: NodeState,
  app: AppState,
  reason: string,
  alive: boolean,
  now: number,
  out: Out,
): void {
  const spec = state.manifest.apps[app.name];
  app.lastFailureAt = now;
  app.lastFailure = reason;
  if (!spec) {
    app.phase = "stopped";
    delete state.apps[app.name];
    return;
  }
  maybeResetWindow(app, spec, now, out);
  if (!allowedHere(state, spec)) {
    out.record("info", app.name, "exited", `${reason}; not meant to run here, not restarting`);
    if (!alive) app.phase = "stopped";
    return;
  }
  if (state.maintenance) {
    out.record("warn", app.name, "failed", `${reason}; maintenance mode: not restarting`);
    if (!alive) app.phase = "stopped";
    return;
  }
  if (app.restarts < spec.restart.limit) {
    app.restarts++;
    app.totalRestarts++;
    out.record(
      "warn",
      app.name,
      "restart",
      `${reason}; restarting on this node (restart ${app.restarts} of ${spec.restart.limit} ` +
        `in ${human(spec.restart.windowMs)})`,
    );
    restart(app, alive, 0, "failed: restart", now, out);
    return;
  }
  app.escalated = true;
  out.record(
    "error",
    app.name,
    "escalation",
    `${reason}; failed again after ${app.restarts} restart(s) within ` +
      `${human(spec.restart.windowMs)}: this host is suspect`,
  );
  const delay = app.backoffMs;
  app.backoffMs = Math.min(app.backoffMs * 2, spec.restart.backoffMaxMs);
  app.totalRestarts++;
  // An intent, not a call into the takeover code: the step resolves it (hand over, or
  // record the backoff when nobody can take the apps).
  out.escalations.push({ app: app.name, reason, backoffMs: delay });
  restart(app, alive, delay, "failed: backoff", now, out);
}

/** Stop a live failing process (then restart), or schedule the restart of a dead one. */
function restart(
  app: AppState,
  alive: boolean,
  delayMs: number,
  why: string,
  now: number,
  out: Out,
): void {
  if (alive && app.pid !== null) {
    app.phase = "stopping";
    app.stopping = { reason: why, restartAfterMs: delayMs };
    const { signal, timeoutMs } = app.stopWith ?? DEFAULT_STOP;
    out.push({
      type: "stop",
      app: app.name,
      pid: app.pid,
      mode: "graceful",
      signal,
      timeoutMs,
      reason: why,
    });
    return;
  }
  app.phase = "backoff";
  app.backoffUntil = now + delayMs;
}
