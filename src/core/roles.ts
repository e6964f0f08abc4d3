/**
 * Roles and epochs: take the active role (directly or through the witness's claim), pick
 * the next epoch (a ballot slot), step down, and the watchdog rule that forbids being active.
 *
 * @module
 */
import { claimsArbitrated } from "./arbiter.ts";
import { beginFences } from "./survivor_fence.ts";
import { killMovable } from "./reconcile.ts";
import { knownEpoch, nodeInfo, setRole } from "./node_state.ts";
import { watchdogBlocks } from "./watchdog_rule.ts";
import type { Out } from "./out.ts";
import type { NodeState } from "./types.ts";

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
export function batonWitness(state: NodeState): boolean {
  return claimsArbitrated(state.manifest) || state.witness.kind === "baton";
}

/** Record, at most once per 5 × `deadAfter`, why a standby does not take over. */
export function hold(state: NodeState, now: number, out: Out, why: string): void {
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
