/**
 * Reconciliation: bring what runs on this node in line with what should run here, the way a
 * Kubernetes controller does. Boot, reload, takeover, handover and restarts all end here.
 *
 * @module
 */
import { allowedHere, desiredHere } from "./node_state.ts";
import { appState } from "./app_policy.ts";
import {
  noteDependencies,
  restartedDependency,
  startBlocker,
  startOrder,
  stopBlocker,
} from "./start_order.ts";
import type { Out } from "./out.ts";
import { type AppState, DEFAULT_STOP, type NodeState, type StopSettings } from "./types.ts";

/**
 * Emit the spawns and stops that make this node's apps match the manifest and its role, in
 * start order (`start_order.ts`): an app starts once the apps it depends on are ready, and a
 * graceful stop waits for the apps that depend on it to exit.
 */
export function reconcile(state: NodeState, now: number, out: Out): void {
  for (const name of startOrder(state.manifest.apps)) {
    const spec = state.manifest.apps[name];
    if (!spec) continue;
    const app = appState(state, spec);
    const allowed = allowedHere(state, spec);
    const desired = desiredHere(state, spec, now) && startBlocker(state, spec) === null;
    switch (app.phase) {
      case "running": {
        // A graceful stop runs in reverse order: after the apps that depend on this one.
        const free = stopBlocker(state, name) === null;
        noteDependencies(state, app, spec);
        const dep = restartedDependency(state, app, spec);
        if (!allowed) {
          // Outside a handover, a movable app here is one this node must not run a moment
          // longer (it stepped down or fenced itself while the app was still starting).
          const fence = spec.movable && state.handover === null;
          if (fence) stop(app, whyNotHere(state), out, "kill");
          else if (free) stop(app, whyNotHere(state), out);
        } else if (
          app.specHash !== spec.hash && !state.maintenance &&
          !(spec.movable && state.resume !== null)
        ) {
          // In maintenance nothing is restarted: the new spec is applied when it ends.
          if (free) stop(app, "manifest changed", out);
        } else if (
          dep !== null && free && !state.maintenance && !(spec.movable && state.resume !== null)
        ) {
          stop(app, `${dep} is restarting or stopped: restarting after it (dependsOn)`, out);
        }
        break;
      }
      case "backoff":
        if (!allowed) {
          app.phase = "stopped";
          app.backoffUntil = null;
        } else if (
          desired && !state.maintenance && app.backoffUntil !== null && now >= app.backoffUntil
        ) {
          spawn(state, app, out);
        }
        break;
      case "stopped":
        if (desired && !state.maintenance) spawn(state, app, out);
        break;
      case "starting":
      case "stopping":
        break;
    }
  }
  for (const app of Object.values(state.apps)) {
    if (state.manifest.apps[app.name]) continue;
    if (app.phase === "running") stop(app, "removed from the manifest", out);
    else if (app.phase === "stopped" || app.phase === "backoff") delete state.apps[app.name];
  }
}

function spawn(state: NodeState, app: AppState, out: Out): void {
  app.phase = "starting";
  app.backoffUntil = null;
  const spec = state.manifest.apps[app.name];
  if (!spec) return;
  app.stopWith = { ...spec.stop };
  app.depPids = null;
  noteDependencies(state, app, spec); // the processes it starts under (all ready)
  out.push({ type: "spawn", app: app.name, epoch: state.epoch, spec });
}

function stop(
  app: AppState,
  reason: string,
  out: Out,
  mode: "graceful" | "kill" = "graceful",
): void {
  if (app.pid === null) return;
  app.phase = "stopping";
  app.stopping = { reason, restartAfterMs: null };
  out.push({ type: "stop", app: app.name, pid: app.pid, mode, ...stopOf(app), reason });
}

/** Stop settings of the app's current process. */
export function stopOf(app: AppState): StopSettings {
  return app.stopWith ?? DEFAULT_STOP;
}

/**
 * Keep one check loop per running process with an interface check, through actions: the
 * drivers start and stop loops only when told to.
 */
export function syncChecks(state: NodeState, out: Out): void {
  for (const app of Object.values(state.apps)) {
    const spec = state.manifest.apps[app.name];
    const pid = app.phase === "running" && spec && spec.check.type !== "process" ? app.pid : null;
    const watched = state.checking[app.name];
    if (pid === null) {
      if (watched !== undefined) {
        delete state.checking[app.name];
        out.push({ type: "unwatch_check", app: app.name });
      }
    } else if (watched !== pid && spec) {
      state.checking[app.name] = pid;
      out.push({ type: "watch_check", app: app.name, pid, check: spec.check });
    }
  }
  for (const name of Object.keys(state.checking)) {
    if (!state.apps[name]) {
      delete state.checking[name];
      out.push({ type: "unwatch_check", app: name });
    }
  }
}

function whyNotHere(state: NodeState): string {
  if (state.handover) return `handing over to ${state.handover.to}`;
  return `node is ${state.role}`;
}

/**
 * Stop every running movable app at once with SIGKILL: used when this node must not run them
 * a moment longer (it lost the active role to a higher epoch, or it isolated itself).
 */
export function killMovable(state: NodeState, reason: string, out: Out): void {
  for (const app of Object.values(state.apps)) {
    const spec = state.manifest.apps[app.name];
    if (!spec?.movable || app.pid === null) continue;
    if (app.phase !== "running" && app.phase !== "stopping") continue;
    app.phase = "stopping";
    app.stopping = { reason, restartAfterMs: null };
    out.push({ type: "stop", app: app.name, pid: app.pid, mode: "kill", ...stopOf(app), reason });
  }
}
