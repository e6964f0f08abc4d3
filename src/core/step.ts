/**
 * The decision core: `step(state, event, now)` → actions. Deterministic and free of I/O: the
 * same state, event and `now` always give the same actions, so every hard case (partitions,
 * double failures, agent restarts, clock jumps) is a unit test or a seeded simulation.
 *
 * @module
 */
import type { Manifest } from "../manifest/types.ts";
import {
  onCheck,
  onExited,
  onLost,
  onStarted,
  onStartFailed,
  resetHealthyWindows,
} from "./app_policy.ts";
import { human, newApp, newPeer } from "./node_state.ts";
import { Out, viewBeforeStep } from "./out.ts";
import { assertNever } from "./assert.ts";
import { reconcile, syncChecks } from "./reconcile.ts";
import { watchdogBlocks } from "./watchdog_rule.ts";
import { beginResume, bootKind, noteResumeEvidence, settleResume } from "./resume.ts";
import { holdTimings } from "./settings.ts";
import {
  escalate,
  onClaimResult,
  onCommand,
  onCommit,
  onCommitResult,
  onFenceResult,
  onPeerInfo,
  onPeerUnreachable,
  onPrepare,
  onPrepareResult,
  onWatchdogFact,
  onWitness,
  progressHandover,
  stepDown,
  takeOver,
  tickCluster,
} from "./takeover.ts";
import { noteClockGap } from "./cluster_tick.ts";
import { onSwitchover, progressSwitchover } from "./switchover.ts";
import { markStarted } from "./start_order.ts";
import { endStaleCommit, progressReadyWait } from "./ready_wait.ts";
import { syncVips } from "./vip.ts";
import { onLeaseLost } from "./lease_lost.ts";
import {
  fenceHoldsApps,
  onFenceOk,
  onFencePeerResult,
  resumeFences,
  tickFences,
} from "./survivor_fence.ts";
import type { Action, AppState, Event, NodeState } from "./types.ts";

/** What one step produced. `state` is the same object, updated in place. */
export interface StepResult {
  state: NodeState;
  actions: Action[];
}

/**
 * Feed one event to the core. The state is owned by the core and updated in place; the
 * returned actions are for the drivers, in order (a `persist` precedes any spawn that
 * depends on the new durable state).
 *
 * @example
 * ```ts
 * import { initNodeState } from "./node_state.ts";
 * import type { Manifest } from "../manifest/types.ts";
 * declare const manifest: Manifest;
 * const state = initNodeState("alpha", manifest, "auto", 0);
 * let { actions } = step(state, { type: "boot", persisted: null, adopted: [], lost: [] }, 0);
 * ({ actions } = step(state, { type: "tick" }, 1000));
 * ```
 */
export function step(state: NodeState, event: Event, now: number): StepResult {
  const out = new Out();
  // Whether to persist is derived: the persisted view before and after (for a boot: what was
  // loaded), never a flag each handler must remember to set.
  out.savedView = event.type === "boot" ? event.persisted : viewBeforeStep(state);
  // A stall is noticed before the event is acted on (the event may be a reply queued by it).
  noteClockGap(state, now, out);
  switch (event.type) {
    case "boot":
      onBoot(state, event, now, out);
      break;
    case "tick":
      resetHealthyWindows(state, now, out);
      tickCluster(state, now, out);
      break;
    case "manifest":
      onManifest(state, event.manifest, now, out);
      break;
    case "app_started":
      onStarted(state, event, now, out);
      break;
    case "app_start_failed":
      onStartFailed(state, event, now, out);
      break;
    case "app_exited":
      onExited(state, event, now, out);
      break;
    case "check":
      onCheck(state, event, now, out);
      break;
    case "peer_info":
      onPeerInfo(state, event, now, out);
      break;
    case "peer_unreachable":
      onPeerUnreachable(state, event, now, out);
      break;
    case "witness":
      onWitness(state, event, now, out);
      break;
    case "claim_result":
      onClaimResult(state, event, now, out);
      break;
    case "takeover_prepare":
      onPrepare(state, event, now, out);
      break;
    case "takeover_commit":
      onCommit(state, event, now, out);
      break;
    case "prepare_result":
      onPrepareResult(state, event, now, out);
      break;
    case "commit_result":
      onCommitResult(state, event, now, out);
      break;
    case "fence_result":
      onFenceResult(state, event, now, out);
      break;
    case "fence_peer_result":
      onFencePeerResult(state, event, now, out);
      break;
    case "lease_lost":
      onLeaseLost(state, event.detail, now, out);
      break;
    case "command":
      if (event.command.type === "switchover") {
        onSwitchover(state, event.id, event.command.to, now, out);
      } else if (event.command.type === "fence_ok") {
        onFenceOk(state, event.id, event.command.node, out);
      } else {
        onCommand(state, event.id, event.command, now, out);
      }
      break;
    case "watchdog":
      onWatchdogFact(state, event, now, out);
      break;
    default:
      assertNever(event);
  }
  noteResumeEvidence(state, event);
  settleResume(state, now, out);
  progressSwitchover(state, now, out);
  endStaleCommit(state, out);
  resolveEscalations(state, now, out);
  // Floating IPs go with the SIGKILLs of a step-down, before the save; they come after it.
  syncVips(state, out, false);
  // A new role or epoch reaches the disk before anything is started under it.
  out.persist(state);
  // Survivor fencing: due attempts (after the save: a fence runs under a durable takeover).
  tickFences(state, now, out);
  // The addresses come with the apps: not while a survivor fence still holds them back.
  syncVips(state, out, !fenceHoldsApps(state));
  reconcile(state, now, out);
  progressHandover(state, now, out);
  progressReadyWait(state, now, out);
  syncChecks(state, out);
  out.persist(state);
  return { state, actions: out.actions };
}

/** Each escalation intent: hand the apps over, or say why not and back off here. */
function resolveEscalations(state: NodeState, now: number, out: Out): void {
  for (const e of out.escalations.splice(0)) {
    const app = state.apps[e.app];
    if (!app) continue;
    if (!escalate(state, app, e.reason, now, out)) {
      out.record(
        "error",
        e.app,
        "backoff",
        `no peer can take over: restarting here in ${human(e.backoffMs)} (backoff), healthy apps ` +
          "untouched",
      );
    }
  }
}

function onBoot(
  state: NodeState,
  ev: Extract<Event, { type: "boot" }>,
  now: number,
  out: Out,
): void {
  const deadAfter = state.manifest.cluster.heartbeat.deadAfterMs;
  const hasPeers = Object.keys(state.peers).length > 0;
  state.quietUntil = hasPeers ? now + deadAfter : now;
  state.bootUntil = hasPeers ? now + deadAfter : now;
  if (ev.watchdog !== undefined) state.watchdogOk = ev.watchdog;
  const p = ev.persisted;
  state.incarnation = ev.incarnation ?? "";
  // Without its state a node does not know which epochs it took before: it learns the
  // cluster's epoch from a peer or the witness before it takes one.
  state.epochFloorKnown = p !== null || !hasPeers;
  state.floorWaitUntil = now + 2 * deadAfter;
  if (p) {
    state.epoch = p.epoch;
    state.roleSeq = p.roleSeq;
    state.maintenance = p.maintenance;
    if (p.role === "failed") {
      state.role = "failed";
      state.failedAt = now;
      state.failedReason = p.failedReason;
      state.roleReason = `failed before the agent restarted: ${p.failedReason ?? "unknown"}`;
    } else if (p.role === "active") {
      state.role = "active";
      state.activeSince = now;
      state.roleReason = `resumed as active at epoch ${p.epoch} after ${bootKind(ev.reboot)}`;
      if (p.fencing) resumeFences(state, p.fencing, now, out);
    } else {
      state.roleReason = `resumed as standby after ${bootKind(ev.reboot)}`;
    }
    out.record("info", null, "boot", state.roleReason);
  } else {
    out.record("info", null, "boot", "no previous state: starting fresh");
  }
  for (const a of ev.adopted) {
    const spec = state.manifest.apps[a.app];
    const app = newApp(a.app, spec?.restart.backoffMs ?? 0);
    app.phase = "running";
    app.pid = a.pid;
    app.startTime = a.startTime;
    app.specHash = a.specHash;
    app.startedAt = now;
    app.restarts = a.restarts;
    app.stopWith = spec ? { ...spec.stop } : null;
    markStarted(app, spec, now); // an interface check: ready at its first pass
    state.apps[a.app] = app;
    out.record("info", a.app, "adopted", `adopted pid ${a.pid}, still running from before`);
  }
  const lost: AppState[] = [];
  for (const name of ev.lost) {
    const spec = state.manifest.apps[name];
    if (!spec) continue;
    const app = newApp(name, spec.restart.backoffMs);
    app.restarts = p?.apps[name]?.restarts ?? 0;
    state.apps[name] = app;
    lost.push(app);
  }
  const blocked = watchdogBlocks(state);
  if (blocked && state.role === "active") {
    stepDown(state, blocked, now, out);
  } else if (state.mode === "active" && state.role !== "active" && state.role !== "failed") {
    if (blocked) out.record("error", null, "hold", `not taking --mode active: ${blocked}`);
    // An operator override, but through the same claim as every takeover: with a baton
    // witness it is granted only if no other node is active.
    else takeOver(state, "started with --mode active", now, out);
  }
  // A resumed active with peers asks before it acts on its movable apps (resume.ts).
  const resume = p?.role === "active" && state.role === "active" && hasPeers;
  const deferred: string[] = [];
  for (const app of lost) {
    if (resume && state.manifest.apps[app.name]?.movable) deferred.push(app.name);
    else if (ev.reboot === true) {
      out.record(
        "info",
        app.name,
        "start_after_reboot",
        "exited with the host (it rebooted): not counted as a failure",
      );
    } else onLost(state, app, now, out);
  }
  if (resume) beginResume(state, deferred, ev.reboot ?? null, now, out);
}

function onManifest(state: NodeState, manifest: Manifest, now: number, out: Out): void {
  const before = state.manifest;
  state.manifest = manifest;
  holdTimings(state, before);
  const added = Object.keys(manifest.apps).filter((a) => !before.apps[a]);
  const removed = Object.keys(before.apps).filter((a) => !manifest.apps[a]);
  const changed = Object.keys(manifest.apps).filter((a) =>
    before.apps[a] && before.apps[a].hash !== manifest.apps[a]?.hash
  );
  for (const name of changed) {
    // A new spec is a new app: the old spec's failures and backoff do not hold it back.
    const app = state.apps[name];
    const spec = manifest.apps[name];
    if (!app || !spec) continue;
    app.restarts = 0;
    app.escalated = false;
    app.backoffMs = spec.restart.backoffMs;
    if (app.phase === "backoff") app.backoffUntil = now;
    if (app.stopping && app.stopping.restartAfterMs !== null) app.stopping.restartAfterMs = 0;
  }
  for (const name of Object.keys(manifest.nodes)) {
    if (name !== state.self && !state.peers[name]) {
      state.peers[name] = newPeer(name, manifest.nodes[name]?.priority ?? 0);
    }
  }
  for (const name of Object.keys(state.peers)) {
    if (!manifest.nodes[name]) delete state.peers[name];
  }
  out.record(
    "info",
    null,
    "reload",
    `manifest ${manifest.hash} loaded: ${added.length} added, ${removed.length} removed, ` +
      `${changed.length} changed` +
      (added.length + removed.length + changed.length > 0
        ? ` (${
          [
            ...added.map((a) => `+${a}`),
            ...removed.map((a) => `-${a}`),
            ...changed.map((a) => `~${a}`),
          ].join(" ")
        })`
        : ""),
  );
}
