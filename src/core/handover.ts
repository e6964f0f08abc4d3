/**
 * Handover of every movable app: the sending side (escalation, prepare, stop, fence,
 * commit) and the receiving side (prepare acknowledged, commit starts the apps here).
 *
 * @module
 */
import { awaitReady, switchoverOutcome } from "./ready_wait.ts";
import { releaseVips } from "./vip.ts";
import { nodeInfo, peerAlive, plausibleEpoch, setRole } from "./node_state.ts";
import { watchdogBlocks } from "./watchdog_rule.ts";
import type { Out } from "./out.ts";
import type { AppState, Event, Handover, NodeState, PeerState } from "./types.ts";
import { takeOver } from "./roles.ts";

/** How long a standby that acknowledged a handover waits for the commit. */
const EXPECT_GRACE_MS = 60_000;
// ---------------------------------------------------------------- handover (sending side)

/** The best standby to hand the movable apps to: alive, not in maintenance, by priority. */
export function bestStandby(state: NodeState, now: number): PeerState | null {
  const candidates = Object.values(state.peers).filter((p) =>
    p.role === "standby" && !p.maintenance && peerAlive(state, p, now)
  );
  candidates.sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  return candidates[0] ?? null;
}

/** Why no peer can take over right now, for the log. */
export function noPeerReason(state: NodeState, now: number): string {
  const peers = Object.values(state.peers);
  if (peers.length === 0) return "single-node cluster";
  return peers.map((p) => {
    if (!peerAlive(state, p, now)) return `${p.name} unreachable`;
    if (p.maintenance) return `${p.name} in maintenance`;
    return `${p.name} is ${p.role}`;
  }).join(", ");
}

/**
 * Escalation of an app: hand every movable app to the best standby. Returns whether a
 * handover is under way; if not, the caller keeps restarting the app here with backoff.
 */
export function escalate(state: NodeState, app: AppState, reason: string, now: number, out: Out) {
  if (state.role === "failed") {
    out.record("warn", app.name, "no_handover", "node is failed: nothing to hand over");
    return false;
  }
  if (state.role !== "active") {
    // Never deferred: kept until the node is active, it would hand over everything then.
    const was = state.role;
    const why = `${app.name}: ${reason} (escalated while ${was})`;
    setRole(state, "failed", `failed: ${why} (run "baton clear" once the host is repaired)`);
    state.failedAt = now;
    state.failedReason = why;
    state.claiming = null;
    out.record(
      "error",
      app.name,
      "failed",
      `escalation while ${was}: this node is ` +
        `failed at once and takes no apps until "baton clear": ${reason}`,
    );
    return false;
  }
  return startHandover(state, "escalation", null, `${app.name}: ${reason}`, null, now, out);
}

/**
 * Begin a handover of every movable app to `to` (null: the best standby). Returns whether one
 * is under way; when the target is not available it records why and returns false.
 */
export function startHandover(
  state: NodeState,
  kind: Handover["kind"],
  to: string | null,
  reason: string,
  requestId: string | null,
  now: number,
  out: Out,
): boolean {
  if (state.handover) return true;
  if (state.maintenance) {
    out.record("warn", null, "no_handover", "maintenance mode: no moves");
    return false;
  }
  const target = to === null ? bestStandby(state, now) : state.peers[to];
  if (
    !target || target.role !== "standby" || target.maintenance || !peerAlive(state, target, now)
  ) {
    out.record(
      "error",
      null,
      "no_handover",
      `cannot hand over (${kind}): ${
        to === null ? noPeerReason(state, now) : `${to} is not an available standby`
      }`,
    );
    state.handoverRetryAt = now + state.manifest.cluster.heartbeat.deadAfterMs;
    return false;
  }
  state.handover = {
    kind,
    to: target.name,
    epoch: state.epoch,
    reason,
    phase: "preparing",
    startedAt: now,
    requestId,
  };
  out.record("warn", null, "handover", `${kind}: asking ${target.name} to take over (${reason})`);
  out.push({ type: "send_prepare", to: target.name, epoch: state.epoch, reason });
  return true;
}

/** The standby answered our prepare. */
export function onPrepareResult(
  state: NodeState,
  ev: Extract<Event, { type: "prepare_result" }>,
  now: number,
  out: Out,
): void {
  const h = state.handover;
  if (!h || h.to !== ev.to || h.phase !== "preparing") return;
  if (!ev.ok) {
    out.record(
      "error",
      null,
      "handover_refused",
      `${ev.to} did not acknowledge the handover (${ev.detail}): keeping the apps here`,
    );
    if (h.requestId) {
      out.push({
        type: "reply",
        id: h.requestId,
        status: 409,
        body: { ok: false, error: ev.detail },
      });
    }
    state.handover = null;
    state.handoverRetryAt = now + state.manifest.cluster.heartbeat.deadAfterMs;
    return;
  }
  h.phase = "stopping";
  out.record(
    "warn",
    null,
    "handover_ready",
    `${ev.to} is ready: stopping every movable app here first`,
  );
}

/** After reconcile: move the handover on once every movable app here has exited. */
export function progressHandover(state: NodeState, now: number, out: Out): void {
  const h = state.handover;
  if (!h || h.phase !== "stopping") return;
  // A spawn in flight ("starting", no pid yet) counts too: it would come up after the commit.
  const stillRunning = Object.values(state.apps).some((a) =>
    state.manifest.apps[a.name]?.movable && (a.pid !== null || a.phase === "starting")
  );
  if (stillRunning) return;
  // The addresses go with the apps, before the peer is told to start them (vip.ts).
  releaseVips(state, out, `movable apps stopped: handing over to ${h.to}`);
  const fence = state.manifest.cluster.fence;
  if (h.kind === "escalation" && fence) {
    h.phase = "fencing";
    out.record("warn", null, "fence", `movable apps stopped; running the fence command`);
    out.push({ type: "fence", command: fence });
    return;
  }
  finishHandover(state, now, out);
}

/** The fence command finished. */
export function onFenceResult(
  state: NodeState,
  ev: Extract<Event, { type: "fence_result" }>,
  now: number,
  out: Out,
): void {
  if (state.handover?.phase !== "fencing") return;
  out.record(ev.ok ? "info" : "error", null, "fence", `fence command: ${ev.detail}`);
  finishHandover(state, now, out);
}

function finishHandover(state: NodeState, now: number, out: Out): void {
  const h = state.handover;
  if (!h) return;
  h.phase = "committing";
  state.lastHandoverTo = h.to;
  state.viewChangedAt = now; // our own role changes: no priority takeover on old news
  state.activeSince = null;
  // The peer becomes active above the handover's epoch: if this node takes over again without
  // having heard it since, it must take a higher epoch still.
  const peer = state.peers[h.to];
  if (peer) peer.epoch = Math.max(peer.epoch, h.epoch + 1);
  state.quietUntil = now + state.manifest.cluster.heartbeat.deadAfterMs;
  if (h.kind === "escalation") {
    setRole(state, "failed", `failed: ${h.reason} (run "baton clear" once the host is repaired)`);
    state.failedAt = now;
    state.failedReason = h.reason;
  } else {
    setRole(state, "standby", `switched over to ${h.to}`);
  }
  out.record(
    h.kind === "escalation" ? "error" : "info",
    null,
    h.kind === "escalation" ? "failed" : "standby",
    `movable apps stopped; this node is now ${state.role}; asking ${h.to} to start them`,
  );
  // The new role must be on disk before the peer may start anything.
  out.persist(state);
  // Tell the witness first, so it grants the peer's claim without waiting out our lease.
  if (state.manifest.cluster.witness) out.push({ type: "check_witness", info: nodeInfo(state) });
  // And the peers, with a heartbeat out of turn: a standby that still sees us active drops
  // the witness's grant, so it would otherwise wait for our next beat to take the apps.
  out.push({ type: "heartbeat", info: nodeInfo(state) });
  out.push({ type: "send_commit", to: h.to, epoch: h.epoch, reason: h.reason });
}

/** The standby answered our commit. */
export function onCommitResult(
  state: NodeState,
  ev: Extract<Event, { type: "commit_result" }>,
  now: number,
  out: Out,
): void {
  const h = state.handover;
  if (!h || h.to !== ev.to || h.phase !== "committing") return;
  if (ev.ok) {
    out.record("info", null, "handover_done", `${ev.to} took over: ${ev.detail}`);
    const peer = state.peers[ev.to];
    if (
      peer && ev.epoch !== undefined && ev.epoch >= peer.epoch && plausibleEpoch(state, ev.epoch)
    ) {
      // Its reply is news of it: active now. Without this, a lost heartbeat or two could make
      // us think the cluster has no active and take the apps straight back.
      peer.role = "active";
      peer.epoch = ev.epoch;
      peer.lastHeardAt = now;
      state.viewChangedAt = now;
    }
  } else {
    out.record(
      "warn",
      null,
      "handover_commit",
      `${ev.to} did not confirm (${ev.detail}); it takes over when it sees this node ${state.role}`,
    );
  }
  switchoverOutcome(state, h, ev, out); // success only if every app is ready there (ready_wait.ts)
  state.handover = null;
}

// ---------------------------------------------------------------- handover (receiving side)

/** A peer announces it will hand us its movable apps. */
export function onPrepare(
  state: NodeState,
  ev: Extract<Event, { type: "takeover_prepare" }>,
  now: number,
  out: Out,
): void {
  const refuse = (why: string) => {
    out.record("warn", null, "prepare_refused", `refused handover from ${ev.from}: ${why}`);
    out.push({ type: "reply", id: ev.id, status: 409, body: { ok: false, error: why } });
  };
  if (!state.peers[ev.from]) return refuse(`unknown node ${ev.from}`);
  if (state.role !== "standby") return refuse(`this node is ${state.role}`);
  if (state.maintenance) return refuse("this node is in maintenance");
  const blocked = watchdogBlocks(state);
  if (blocked) return refuse(blocked);
  if (ev.epoch < state.epoch) return refuse(`stale epoch ${ev.epoch} (ours ${state.epoch})`);
  if (!plausibleEpoch(state, ev.epoch)) return refuse(`implausible epoch ${ev.epoch}`);
  state.expecting = { from: ev.from, epoch: ev.epoch, since: now, until: now + EXPECT_GRACE_MS };
  // The sender is active at ev.epoch: a heartbeat of its older epoch delivered late (standby
  // then) must not read as "it handed over" in takeoverReason (a duplicate the simulation
  // found; core_start_order_test "onPrepare: ...").
  const sender = state.peers[ev.from];
  if (sender && ev.epoch > sender.epoch) Object.assign(sender, { role: "active", epoch: ev.epoch });
  out.record("warn", null, "prepare", `${ev.from} will hand over its apps (${ev.reason})`);
  out.push({ type: "reply", id: ev.id, status: 200, body: { ok: true, node: state.self } });
}

/** The peer stopped its movable apps: start them here. */
export function onCommit(
  state: NodeState,
  ev: Extract<Event, { type: "takeover_commit" }>,
  now: number,
  out: Out,
): void {
  const reply = (status: number, body: Record<string, unknown>) =>
    out.push({ type: "reply", id: ev.id, status, body });
  const from = state.peers[ev.from];
  if (!from) return reply(409, { ok: false, error: `unknown node ${ev.from}` });
  if (!plausibleEpoch(state, ev.epoch)) {
    return reply(409, { ok: false, error: `implausible epoch ${ev.epoch}` });
  }
  if (ev.epoch < state.epoch && state.role !== "active") {
    return reply(409, { ok: false, error: `stale epoch ${ev.epoch} (ours ${state.epoch})` });
  }
  // Already active (the handover was seen in a heartbeat first): answered once ready too.
  if (state.role === "active") return awaitReady(state, ev.id, ev.from, now, out);
  if (state.role === "failed") return reply(409, { ok: false, error: "this node is failed" });
  if (state.maintenance) return reply(409, { ok: false, error: "this node is in maintenance" });
  state.expecting = { from: ev.from, epoch: ev.epoch, since: now, until: now + EXPECT_GRACE_MS };
  const blocked = watchdogBlocks(state);
  if (blocked) return reply(409, { ok: false, error: blocked });
  // The handover's epoch is the sender's: ours must be above it.
  from.epoch = Math.max(from.epoch, ev.epoch);
  // The sender commits only once its movable apps are stopped and it left the active role:
  // what we last heard of it ("active", from a heartbeat before the handover or from its
  // prepare) is out of date, and a witness's grant must not be dropped because of it (a
  // switchover failed with "beta is not active (starting)" in a soak run). The role counter
  // moves on so that a heartbeat of its active past, delivered late, reads as stale.
  if (from.role === "active") {
    from.role = "standby";
    from.roleSeq++;
    state.viewChangedAt = now;
  }
  state.epochFloorKnown = true;
  takeOver(state, `handover from ${ev.from}: ${ev.reason}`, now, out);
  awaitReady(state, ev.id, ev.from, now, out); // answered once the apps are ready (ready_wait.ts)
}
