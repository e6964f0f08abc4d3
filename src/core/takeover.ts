/**
 * The takeover protocol: roles, epochs, heartbeats, handover of every movable app
 * (escalation and switchover), standby takeover, witness arbitration and self-fencing.
 *
 * Safety rules, in the order they are checked:
 * - An active that sees another active with a higher epoch stops its movable apps at once
 *   (SIGKILL) and becomes standby.
 * - An active that hears neither a peer nor the witness for `fenceAfter` stops its movable
 *   apps by itself; the standby waits `deadAfter` > `fenceAfter` + interval before it starts
 *   them, so the isolated active always stops first.
 * - A standby that cannot see every peer takes over only with the witness's agreement (a
 *   baton witness grants the claim; a plain HTTP witness only proves reachability).
 * - A handing-over active stops its movable apps, and only then asks the peer to start them.
 *
 * @module
 */
import { assertNever } from "./assert.ts";
import { arbiterFenceAfter, claimsArbitrated, hasArbiter } from "./arbiter.ts";
import { killMovable } from "./reconcile.ts";
import {
  human,
  knownEpoch,
  livePeerActives,
  nodeInfo,
  peerAlive,
  plausibleEpoch,
  selfPriority,
  setRole,
} from "./node_state.ts";
import { watchdogBlocks } from "./watchdog_rule.ts";
import { awaitReady, switchoverOutcome } from "./ready_wait.ts";
import { releaseVips } from "./vip.ts";
import { beginFences, oweFence } from "./survivor_fence.ts";
import type { Out } from "./out.ts";
import { deadAfterInForce, fenceAfterInForce, releaseHeldTimings } from "./settings.ts";
import type { AppState, Command, Event, Handover, NodeState, PeerState } from "./types.ts";

/** How long a standby that acknowledged a handover waits for the commit. */
const EXPECT_GRACE_MS = 60_000;
/** Earlier incarnations remembered per peer, so their late messages are known stale. */
const RETIRED_INCARNATIONS = 4;

// ---------------------------------------------------------------- peers and the witness

/** A peer told us about itself (its heartbeat, or its reply to ours). */
export function onPeerInfo(
  state: NodeState,
  ev: Extract<Event, { type: "peer_info" }>,
  now: number,
  out: Out,
): void {
  const peer = state.peers[ev.info.node];
  if (!peer) return;
  const info = ev.info;
  if (!plausibleEpoch(state, info.epoch)) {
    // Not an epoch the cluster can have reached: a forgery or a bug. Adopting it would make
    // an active SIGKILL its apps and leave no epoch to take after it; it proves nothing.
    const why = `implausible epoch ${info.epoch} from ${info.node} (highest known ` +
      `${knownEpoch(state)}): ignored`;
    if (peer.lastError !== why) out.record("error", null, "bad_epoch", why);
    peer.lastError = why;
    return;
  }
  const inc = info.incarnation ?? null;
  if (inc !== null && peer.retired.includes(inc)) return; // a late message of an older boot
  let reborn = false;
  if (inc !== null && inc !== peer.incarnation) {
    if (peer.incarnation !== null) {
      peer.retired = [...peer.retired, peer.incarnation].slice(-RETIRED_INCARNATIONS);
      reborn = true;
      out.record(
        "info",
        null,
        "peer_restarted",
        `peer ${info.node} restarted (new incarnation; ${info.role}, epoch ${info.epoch})`,
      );
      state.viewChangedAt = now;
    }
    peer.incarnation = inc;
  }
  state.epochFloorKnown = true; // a peer told us its epoch
  if (peer.role !== info.role && peer.lastHeardAt !== null) {
    out.record(
      "info",
      null,
      "peer_role",
      `peer ${info.node} is now ${info.role} (epoch ${info.epoch})`,
    );
  } else if (peer.lastHeardAt === null || (peer.lastError !== null)) {
    out.record(
      "info",
      null,
      "peer_up",
      `peer ${info.node} is reachable (${info.role}, epoch ${info.epoch})`,
    );
  }
  // A peer heard again after a silence is news too: decide on a view that has settled.
  if (!peerAlive(state, peer, now)) state.viewChangedAt = now;
  peer.lastHeardAt = now;
  if (ev.sentAt !== undefined) peer.lastAckAt = Math.max(peer.lastAckAt ?? ev.sentAt, ev.sentAt);
  peer.lastError = null;
  // Messages can arrive out of order: one older than what we know (lower epoch, or the same
  // epoch and a lower role counter) proves the peer alive but says nothing new about it.
  // A new incarnation counts afresh: its role counter (and, if its state was lost, its epoch)
  // restarted at 0.
  const stale = !reborn && (info.epoch < peer.epoch ||
    (info.epoch === peer.epoch && info.roleSeq < peer.roleSeq));
  if (stale) return;
  if (peer.role !== info.role || peer.maintenance !== info.maintenance) state.viewChangedAt = now;
  peer.role = info.role;
  peer.hears = info.hears;
  peer.handoverTo = info.handoverTo ?? null;
  if (state.expecting?.from === info.node && info.handoverTo && info.handoverTo !== state.self) {
    state.expecting = null; // the apps went to another node
  }
  peer.roleSeq = info.roleSeq;
  peer.epoch = info.epoch;
  peer.priority = info.priority;
  peer.maintenance = info.maintenance;
  if (info.manifestHash !== peer.manifestHash && info.manifestHash !== state.manifest.hash) {
    out.record(
      "warn",
      null,
      "manifest_mismatch",
      `peer ${info.node} runs manifest ${info.manifestHash.slice(0, 12)}, this node ` +
        `${state.manifest.hash.slice(0, 12)}: run "baton reload" where the file is out of date`,
    );
  }
  peer.manifestHash = info.manifestHash;
  if (info.settings) peer.settings = info.settings;
  if (info.seen) peer.acked = info.seen[state.self] ?? null;
  if (releaseHeldTimings(state)) {
    out.record("info", null, "settings_acked", "every peer acknowledged the new settings");
  }
  if (info.role === "active") state.seenActive = true;
  if (state.expecting && info.role === "active" && info.epoch > state.expecting.epoch) {
    state.expecting = null; // someone else took the apps
  }

  if (state.role === "active" && info.epoch > state.epoch) {
    // A higher epoch exists, so a newer active was made while we were not looking.
    stepDown(
      state,
      `peer ${info.node} reports epoch ${info.epoch} (ours ${state.epoch}): a newer active exists`,
      now,
      out,
    );
  } else if (state.role === "active" && info.role === "active" && outranks(info, state)) {
    stepDown(
      state,
      `peer ${info.node} is active at epoch ${info.epoch} (ours ${state.epoch}): ` +
        `the lower epoch yields`,
      now,
      out,
    );
  }
  if (state.role !== "active" && info.epoch > state.epoch) {
    state.epoch = info.epoch;
  }
  if (state.claiming && info.role === "active") {
    out.record("info", null, "claim_dropped", `peer ${info.node} is active: dropping our claim`);
    state.claiming = null;
  }
}

/** Whether a peer claiming active beats this active node (higher epoch, then priority, then name). */
function outranks(
  info: { node: string; epoch: number; priority: number },
  state: NodeState,
): boolean {
  if (info.epoch !== state.epoch) return info.epoch > state.epoch;
  const mine = selfPriority(state);
  if (info.priority !== mine) return info.priority > mine;
  return info.node < state.self;
}

/** A heartbeat exchange with a peer failed. */
export function onPeerUnreachable(
  state: NodeState,
  ev: Extract<Event, { type: "peer_unreachable" }>,
  now: number,
  out: Out,
): void {
  const peer = state.peers[ev.node];
  if (!peer) return;
  if (peer.lastError === null && peer.lastHeardAt !== null) {
    out.record("warn", null, "peer_down", `peer ${ev.node} unreachable: ${ev.error}`);
  }
  peer.lastError = ev.error;
  void now;
}

/** The witness answered (or did not). */
export function onWitness(
  state: NodeState,
  ev: Extract<Event, { type: "witness" }>,
  now: number,
  out: Out,
): void {
  const wasOk = witnessFresh(state, now);
  if (
    ev.ok && ev.kind !== "etcd" && ((ev.active && !plausibleEpoch(state, ev.active.epoch)) ||
      (ev.maxEpoch !== undefined && !plausibleEpoch(state, ev.maxEpoch)))
  ) {
    out.record("error", null, "bad_epoch", "implausible epoch in a witness reply: ignored");
    return;
  }
  if (ev.ok) {
    const prev = state.witness.lastAckAt;
    const ack = ev.sentAt === undefined ? prev : Math.max(prev ?? ev.sentAt, ev.sentAt);
    state.witness = {
      lastOkAt: now,
      lastAckAt: ack,
      active: ev.active,
      kind: ev.kind,
      failing: false,
      maxEpoch: Math.max(state.witness.maxEpoch, ev.maxEpoch ?? 0),
    };
    if ((ev.kind === "baton" || ev.kind === "etcd") && ev.maxEpoch !== undefined) {
      state.epochFloorKnown = true;
    }
    if (!wasOk && state.witness.lastOkAt !== null) {
      out.record("info", null, "witness_up", `witness reachable (${ev.kind ?? "http"})`);
    }
    const w = ev.active;
    if (
      ev.kind === "etcd" && state.role === "active" &&
      (!w || w.node !== state.self || w.epoch !== state.epoch)
    ) {
      // etcd answered and the key is not ours at our epoch: the right to run is gone.
      stepDown(
        state,
        `etcd: the key of the movable apps is ${
          w ? `held by ${w.node} at revision ${w.epoch}` : "absent"
        } (ours: epoch ${state.epoch})`,
        now,
        out,
      );
    } else if (state.role === "active" && w && w.node !== state.self && w.epoch > state.epoch) {
      stepDown(
        state,
        `the witness knows ${w.node} active at epoch ${w.epoch} (ours ${state.epoch})`,
        now,
        out,
      );
    }
  } else if (!state.witness.failing) {
    state.witness.failing = true;
    if (wasOk) {
      out.record("warn", null, "witness_down", `witness unreachable: ${ev.error ?? "no reply"}`);
    }
  }
}

function witnessFresh(state: NodeState, now: number): boolean {
  const at = state.witness.lastOkAt;
  return at !== null && now - at < deadAfterInForce(state);
}

/** Age of the freshest active the baton witness has heard, seen from `now`. */
function witnessActiveAge(state: NodeState, now: number): number | null {
  const w = state.witness;
  if (!w.active || w.lastOkAt === null) return null;
  return w.active.ageMs + (now - w.lastOkAt);
}

/** The baton witness answered our claim for the active role. */
export function onClaimResult(
  state: NodeState,
  ev: Extract<Event, { type: "claim_result" }>,
  now: number,
  out: Out,
): void {
  const claim = state.claiming;
  if (!claim || claim.epoch !== ev.epoch) return;
  state.claiming = null;
  if (!ev.ok) {
    out.record("warn", null, "claim_refused", `witness refused our takeover: ${ev.detail}`);
    state.quietUntil = now + state.manifest.cluster.heartbeat.intervalMs;
    return;
  }
  if (state.role !== "standby" || state.maintenance || livePeerActives(state, now).length > 0) {
    return;
  }
  if (watchdogBlocks(state)) return;
  const granted = ev.granted ?? ev.epoch;
  if (ev.granted !== undefined ? knownEpoch(state) >= granted : nextEpoch(state) > ev.epoch) {
    // We heard of a higher epoch while the claim was on its way: the grant is outdated.
    out.record("warn", null, "claim_outdated", `granted epoch ${granted} is already taken`);
    state.quietUntil = now + state.manifest.cluster.heartbeat.intervalMs;
    return;
  }
  const who = ev.granted !== undefined ? "etcd" : "witness";
  becomeActive(state, `${claim.reason}; ${who} granted epoch ${granted}`, now, out, granted);
  if (ev.sentAt !== undefined && ev.sentAt <= now) {
    // etcd: the lease was granted at or after sentAt, so it runs at least ttl from then; the
    // term's contacts count from there, not from the (later) answer.
    state.activeSince = ev.sentAt;
    state.witness.lastAckAt = Math.max(state.witness.lastAckAt ?? ev.sentAt, ev.sentAt);
  }
}

// ---------------------------------------------------------------- roles

/** Take the active role with a new epoch; reconcile then starts every movable app. */
export function becomeActive(
  state: NodeState,
  reason: string,
  now: number,
  out: Out,
  epoch: number = nextEpoch(state),
): void {
  state.epoch = epoch;
  beginFences(state, reason, now, out); // a takeover from a silent active fences it first
  setRole(state, "active", reason);
  state.activeSince = now;
  state.lastHandoverTo = null;
  state.expecting = null;
  state.claiming = null;
  state.bootUntil = now;
  out.record("info", null, "active", `active at epoch ${state.epoch}: ${reason}`);
}

/**
 * The next epoch this node may take: above every epoch it has heard of (its own, its peers',
 * the witness's) and, like a Paxos ballot, in this node's own residue class modulo the number
 * of nodes (sorted by name). Two nodes deciding at once, each unaware of the other, therefore
 * never pick the same epoch, and the lower one yields when they meet.
 */
export function nextEpoch(state: NodeState): number {
  const max = knownEpoch(state);
  const names = Object.keys(state.manifest.nodes).sort();
  const n = names.length;
  const slot = names.indexOf(state.self);
  let epoch = max + 1;
  if (n > 1 && slot >= 0) epoch += (((slot + 1 - epoch) % n) + n) % n;
  return epoch;
}

/** Give up the active role at once: SIGKILL movable apps, become standby, stay quiet a while. */
export function stepDown(state: NodeState, reason: string, now: number, out: Out): void {
  setRole(state, "standby", reason);
  state.activeSince = null;
  state.quietUntil = now + state.manifest.cluster.heartbeat.deadAfterMs;
  out.record("error", null, "step_down", `stepping down to standby: ${reason}`);
  if (state.handover?.requestId) {
    out.push({
      type: "reply",
      id: state.handover.requestId,
      status: 409,
      body: { ok: false, error: `stepped down: ${reason}` },
    });
  }
  state.handover = null;
  killMovable(state, reason, out);
}

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
  state.epochFloorKnown = true;
  takeOver(state, `handover from ${ev.from}: ${ev.reason}`, now, out);
  awaitReady(state, ev.id, ev.from, now, out); // answered once the apps are ready (ready_wait.ts)
}

// ---------------------------------------------------------------- operator commands

/** maintenance, clear (a switchover is `onSwitchover`, in switchover.ts). */
export function onCommand(
  state: NodeState,
  id: string,
  command: Exclude<Command, { type: "switchover" | "fence_ok" }>,
  now: number,
  out: Out,
): void {
  const reply = (status: number, body: Record<string, unknown>) =>
    out.push({ type: "reply", id, status, body });
  switch (command.type) {
    case "maintenance":
      if (state.maintenance !== command.on) {
        state.maintenance = command.on;
        state.viewChangedAt = now; // our eligibility changed: let peers learn it first
        out.record(
          "warn",
          null,
          "maintenance",
          command.on ? "maintenance on: no restarts, no moves" : "maintenance off",
        );
      }
      return reply(200, { ok: true, maintenance: state.maintenance });
    case "clear": {
      const wasFailed = state.role === "failed";
      if (wasFailed) leaveFailed(state, "cleared by the operator", now);
      else clearCounters(state);
      out.record(
        "info",
        null,
        "clear",
        wasFailed ? "cleared: failed → standby" : "counters cleared",
      );
      return reply(200, { ok: true, role: state.role });
    }
    default:
      assertNever(command);
  }
}

/**
 * Failed → standby (operator `clear` or the failed cooldown). The restart counters and
 * escalations that made the node fail are cleared too: kept, they would make the node hand its
 * apps on again as soon as it is active.
 */
function leaveFailed(state: NodeState, reason: string, now: number): void {
  setRole(state, "standby", reason);
  // Our view of the cluster may be old: learn it again before any takeover.
  state.quietUntil = now + state.manifest.cluster.heartbeat.deadAfterMs;
  state.failedReason = null;
  state.failedAt = null;
  clearCounters(state);
}

/** Zero every app's restart counter, escalation and backoff. */
function clearCounters(state: NodeState): void {
  for (const app of Object.values(state.apps)) {
    app.restarts = 0;
    app.escalated = false;
    const spec = state.manifest.apps[app.name];
    if (spec) app.backoffMs = spec.restart.backoffMs;
  }
}

// ---------------------------------------------------------------- the periodic cycle

/** Timers of the cluster: heartbeats, cooldowns, retries, self-fencing and takeover. */
export function tickCluster(state: NodeState, now: number, out: Out): void {
  const hb = state.manifest.cluster.heartbeat;
  const hasPeers = Object.keys(state.peers).length > 0;
  const gap = state.lastTickAt === null ? 0 : now - state.lastTickAt;
  state.lastTickAt = now;
  if (gap > hb.deadAfterMs && hasPeers) {
    // No tick for longer than deadAfter (suspended VM, starved process): what this node knows
    // of its peers is that old, and their silence is ours. Listen again before a takeover.
    state.quietUntil = Math.max(state.quietUntil, now + hb.deadAfterMs);
    out.record(
      "warn",
      null,
      "clock_gap",
      `no tick for ${human(gap)}: listening to the cluster for ${human(hb.deadAfterMs)} ` +
        `before any takeover`,
    );
  }
  if (state.lastHeartbeatAt === null || now - state.lastHeartbeatAt >= hb.intervalMs) {
    state.lastHeartbeatAt = now;
    if (hasPeers) out.push({ type: "heartbeat", info: nodeInfo(state) });
    if (hasArbiter(state.manifest)) out.push({ type: "check_witness", info: nodeInfo(state) });
  }

  const cooldown = state.manifest.cluster.failedCooldownMs;
  if (
    state.role === "failed" && cooldown !== null && state.failedAt !== null &&
    now - state.failedAt >= cooldown
  ) {
    leaveFailed(state, `failed cooldown of ${human(cooldown)} passed`, now);
    out.record("info", null, "standby", `${state.roleReason}: failed → standby, counters cleared`);
  }

  if (state.expecting && now >= state.expecting.until) {
    out.record("warn", null, "expect_expired", `handover from ${state.expecting.from} never came`);
    state.expecting = null;
  }
  if (state.claiming && now - state.claiming.since >= deadAfterInForce(state)) {
    state.claiming = null;
  }

  if (state.role === "active") {
    tickActive(state, now, out);
  } else if (state.role === "standby") {
    tickStandby(state, now, out);
  }
}

function tickActive(state: NodeState, now: number, out: Out): void {
  if (
    !state.handover && !state.maintenance && now >= state.handoverRetryAt &&
    Object.values(state.apps).some((a) => a.escalated)
  ) {
    const app = Object.values(state.apps).find((a) => a.escalated);
    if (app && bestStandby(state, now)) {
      startHandover(state, "escalation", null, `${app.name}: ${app.lastFailure}`, null, now, out);
    }
  }
  // Self-fencing: an active cut off from every peer and from the witness stops its apps.
  if (!hasArbiter(state.manifest) || Object.keys(state.peers).length === 0) return;
  const since = state.activeSince ?? now;
  // Contact = an exchange we started and the other side answered, dated by when we sent it.
  // The apps may stay while the witness hears us (it grants no claim against us) or while
  // every peer does (none of them takes over). Otherwise a peer we cannot reach might be
  // granted the apps: stop them before it may start them.
  const fence = fenceAfterInForce(state);
  const age = (t: number | null) => now - Math.max(since, t ?? -Infinity);
  const witnessAge = age(state.witness.lastAckAt);
  const witnessFence = arbiterFenceAfter(state);
  const lost = Object.values(state.peers).filter((p) => age(p.lastAckAt) >= fence);
  if (witnessAge >= witnessFence && lost.length > 0) {
    const arbiter = state.manifest.cluster.coordinator ? "etcd" : "the witness";
    stepDown(
      state,
      `isolated: no answer from ${arbiter} for ${human(witnessAge)} nor from ` +
        `${lost.map((p) => p.name).join(", ")} (fenceAfter ${human(fence)}` +
        (witnessFence !== fence ? `, ${arbiter} ${human(witnessFence)})` : ")"),
      now,
      out,
    );
  }
}

function tickStandby(state: NodeState, now: number, out: Out): void {
  if (state.maintenance || state.claiming || now < state.quietUntil) return;
  if (livePeerActives(state, now).length > 0) return;
  let reason = takeoverReason(state, now, out);
  if (reason === null) return;
  const unseen = Object.values(state.peers).filter((p) => !peerAlive(state, p, now));
  if (hasArbiter(state.manifest)) {
    if (unseen.length > 0 && !witnessFresh(state, now)) {
      // We cannot see every peer: only the witness may tell us it is safe.
      const names = unseen.map((p) => p.name).join(", ");
      return hold(state, now, out, `cannot see ${names} nor the witness: not guessing`);
    }
    const age = witnessActiveAge(state, now);
    const w = state.witness.active;
    if (w && age !== null && age < deadAfterInForce(state) && w.node !== state.self) {
      return hold(state, now, out, `the witness still hears active ${w.node} (${human(age)} ago)`);
    }
    if (unseen.length > 0 && !batonWitness(state)) reason += "; witness reachable";
  }
  if (!state.epochFloorKnown) {
    if (claimsArbitrated(state.manifest) || now < state.floorWaitUntil) {
      return hold(
        state,
        now,
        out,
        "no state on disk and no peer or witness heard yet: the cluster's epoch is unknown " +
          "(an epoch this node used before could be taken again)",
      );
    }
    // No baton witness to ask, nobody heard for 2 × deadAfter: a first start alone, or a
    // node that lost its state while cut off. Go on, loudly.
    state.epochFloorKnown = true;
    out.record(
      "warn",
      null,
      "epoch_unknown",
      "no state on disk and no peer heard for 2 × deadAfter: taking an epoch without " +
        "knowing the cluster's (it may repeat one this node used before its state was lost)",
    );
  }
  oweFence(state, reason, nextEpoch(state), now); // survivor fencing, if it wins
  takeOver(state, reason, now, out);
}

/**
 * Why this standby should take the active role now, or null. Three ways: the node that
 * announced a handover to us is no longer active (news heard after its announcement); the
 * active went silent for `deadAfter`; or there is no active and we are the best standby in a
 * view that has been stable for `deadAfter` (so decisions are not made on stale news).
 */
function takeoverReason(state: NodeState, now: number, out: Out): string | null {
  const peers = Object.values(state.peers);
  const expecting = state.expecting;
  if (expecting) {
    const from = state.peers[expecting.from];
    if (
      from && from.role !== "active" && from.lastHeardAt !== null &&
      from.lastHeardAt > expecting.since &&
      (from.handoverTo === null || from.handoverTo === state.self)
    ) {
      return `${expecting.from} handed over its apps`;
    }
  }
  if (state.mode === "standby" && !state.seenActive) {
    hold(state, now, out, "--mode standby: waiting for an active node");
    return null;
  }
  const mine = selfPriority(state);
  const better = peers.some((p) =>
    peerAlive(state, p, now) && p.role === "standby" && !p.maintenance &&
    (p.priority > mine || (p.priority === mine && p.name < state.self))
  );
  if (better) return null;
  const lost = peers.filter((p) => p.role === "active" && !peerAlive(state, p, now));
  // An active last heard in maintenance holds its apps by agreement (its lease is off while
  // its agent restarts): its silence is no reason to take over. The operator ends it.
  const held = lost.filter((p) => p.maintenance);
  if (held.length > 0) {
    const names = held.map((p) => p.name).join(", ");
    hold(state, now, out, `active ${names} went silent in maintenance: its apps stay there`);
    return null;
  }
  if (lost.length > 0) {
    // Another node that still hears the silent active vouches for it: we are the one cut off.
    const voucher = peers.find((p) =>
      peerAlive(state, p, now) && lost.some((l) => p.hears.includes(l.name))
    );
    if (voucher) {
      hold(state, now, out, `${voucher.name} still hears ${lost.map((p) => p.name).join(", ")}`);
      return null;
    }
    return `no heartbeat from active ${lost.map((p) => p.name).join(", ")} for ${
      human(deadAfterInForce(state))
    }`;
  }
  if (peers.length === 0) return "single-node cluster";
  if (now - state.viewChangedAt < deadAfterInForce(state)) return null;
  return "no active node in the cluster; highest-priority standby";
}

/**
 * Become active now, or, with a baton witness, ask it first (it grants one claim at a time,
 * so two nodes deciding at once cannot both win). Returns whether the node is active now.
 */
export function takeOver(state: NodeState, reason: string, now: number, out: Out): boolean {
  const blocked = watchdogBlocks(state);
  if (blocked) {
    hold(state, now, out, blocked);
    return false;
  }
  // Always ask a baton witness, even with every peer in sight: our view may be old (a
  // partition just healed), and the witness grants one claim at a time. Safety first: while
  // it is unreachable nobody takes over.
  if (batonWitness(state)) {
    const epoch = nextEpoch(state);
    state.claiming = { epoch, reason, since: now };
    out.record("warn", null, "claim", `${reason}; asking the witness for epoch ${epoch}`);
    out.push({ type: "claim_witness", info: { ...nodeInfo(state), role: "active", epoch } });
    return false;
  }
  becomeActive(state, reason, now, out);
  return true;
}

/**
 * Whether takeovers go through a baton witness's claim: the manifest says so (`witness: URL`),
 * or the witness answered as one.
 */
function batonWitness(state: NodeState): boolean {
  return claimsArbitrated(state.manifest) || state.witness.kind === "baton";
}

/** Record, at most once per 5 × `deadAfter`, why a standby does not take over. */
function hold(state: NodeState, now: number, out: Out, why: string): void {
  if (now < state.holdNoticeAt) return;
  state.holdNoticeAt = now + state.manifest.cluster.heartbeat.deadAfterMs * 5;
  out.record("warn", null, "hold", `not taking over: ${why}`);
}

/** The watchdog device's state changed (input fact); an active that now lacks it steps down. */
export function onWatchdogFact(
  state: NodeState,
  ev: { ok: boolean; detail: string },
  now: number,
  out: Out,
): void {
  const before = state.watchdogOk;
  state.watchdogOk = ev.ok;
  if (before !== ev.ok) {
    out.record(ev.ok ? "info" : "error", null, "watchdog", `watchdog device: ${ev.detail}`);
  }
  const blocked = watchdogBlocks(state);
  if (blocked && state.role === "active") stepDown(state, blocked, now, out);
}
