/**
 * The cluster view: what this node knows of its peers and the witness (heartbeats, failed
 * exchanges, witness answers and claim results), and the step-downs that news forces.
 *
 * @module
 */
import {
  knownEpoch,
  livePeerActives,
  peerAlive,
  plausibleEpoch,
  selfPriority,
} from "./node_state.ts";
import { watchdogBlocks } from "./watchdog_rule.ts";
import type { Out } from "./out.ts";
import { deadAfterInForce, releaseHeldTimings } from "./settings.ts";
import type { Event, NodeState } from "./types.ts";
import { becomeActive, nextEpoch, stepDown } from "./roles.ts";

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
  // A reply to a request older than deadAfter (processed late: this node stalled) proves the
  // peer's state as of the send time only, not now (a duplicate the simulation found;
  // core_stall_test). A timely one counts as heard now (its delay is within the timeout).
  const sent = ev.sentAt ?? now;
  const late = now - sent >= deadAfterInForce(state);
  peer.lastHeardAt = late ? Math.max(peer.lastHeardAt ?? -Infinity, sent) : now;
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

/** Whether the witness answered within `deadAfter` of `now`. */
export function witnessFresh(state: NodeState, now: number): boolean {
  const at = state.witness.lastOkAt;
  return at !== null && now - at < deadAfterInForce(state);
}

/** Age of the freshest active the baton witness has heard, seen from `now`. */
export function witnessActiveAge(state: NodeState, now: number): number | null {
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
  if (state.role !== "standby" || state.maintenance) return;
  const active = livePeerActives(state, now)[0];
  if (active) {
    out.record(
      "warn",
      null,
      "claim_dropped",
      `witness granted epoch ${ev.granted ?? ev.epoch}, but peer ${active.name} is active: ` +
        `dropping our claim`,
    );
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
