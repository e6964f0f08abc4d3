/**
 * The periodic cycle of the cluster: heartbeats, cooldowns, retries, self-fencing of an
 * isolated active, and a standby's decision to take over.
 *
 * @module
 */
import { arbiterFenceAfter, claimsArbitrated, hasArbiter } from "./arbiter.ts";
import { oweFence } from "./survivor_fence.ts";
import { nextEpoch } from "./roles.ts";
import { human, livePeerActives, nodeInfo, peerAlive, selfPriority } from "./node_state.ts";
import type { Out } from "./out.ts";
import { deadAfterInForce, fenceAfterInForce } from "./settings.ts";
import type { NodeState } from "./types.ts";
import { batonWitness, hold, stepDown, takeOver } from "./roles.ts";
import { witnessActiveAge, witnessFresh } from "./cluster_view.ts";
import { bestStandby, startHandover } from "./handover.ts";
import { leaveFailed } from "./commands.ts";

// ---------------------------------------------------------------- the periodic cycle

/** Timers of the cluster: heartbeats, cooldowns, retries, self-fencing and takeover. */
export function tickCluster(state: NodeState, now: number, out: Out): void {
  const hb = state.manifest.cluster.heartbeat;
  const hasPeers = Object.keys(state.peers).length > 0;
  noteClockGap(state, now, out);
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

/**
 * Notice a stall of this node (suspended VM, SIGSTOP, starved process): no step for longer
 * than deadAfter. Checked before every event, not only at ticks, since the first step after a
 * stall is often a reply queued meanwhile. What this node knows of its peers is that old and
 * their silence is ours: it listens again for deadAfter before any takeover and, if active,
 * starts no missing movable app until every peer is heard afresh (the boot guard of
 * `desiredHere`), since a peer may have taken the apps over meanwhile.
 */
export function noteClockGap(state: NodeState, now: number, out: Out): void {
  const deadAfter = state.manifest.cluster.heartbeat.deadAfterMs;
  const gap = state.lastTickAt === null ? 0 : now - state.lastTickAt;
  state.lastTickAt = now;
  if (gap <= deadAfter || Object.keys(state.peers).length === 0) return;
  state.quietUntil = Math.max(state.quietUntil, now + deadAfter);
  state.bootUntil = Math.max(state.bootUntil, now + deadAfter);
  out.record(
    "warn",
    null,
    "clock_gap",
    `no tick for ${human(gap)}: listening to the cluster for ${human(deadAfter)} ` +
      `before any takeover or start of a movable app`,
  );
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
