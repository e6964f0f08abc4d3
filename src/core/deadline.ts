/**
 * When the core next needs a tick. Between events, only the passing of time can make the core
 * act: a heartbeat falls due, a peer or the witness goes silent for `deadAfter`, a backoff or a
 * quiet period ends, a restart window closes. {@linkcode nextDeadline} returns the earliest such
 * time after `now`, so a driver can sleep until then instead of ticking at a fixed rate: an
 * idle node wakes only when something can happen, and a timer fires at its exact time.
 *
 * The contract, checked by the seeded simulation after every step: a tick at any time strictly
 * between `now` and `nextDeadline(state, now)` emits no action and changes nothing but the
 * bookkeeping of ticks (`lastTickAt`, and `lastHeartbeatAt` of a node with nobody to beat).
 *
 * @module
 */
import type { NodeState } from "./types.ts";
import { deadAfterInForce, fenceAfterInForce } from "./settings.ts";

/**
 * The earliest core-clock time after `now` at which a tick may act; `Infinity` when no timer
 * is pending. A driver should still tick now and then (a bounded sleep) as a safety net.
 *
 * @example
 * ```ts
 * import { step } from "./step.ts";
 * import type { Event, NodeState } from "./types.ts";
 * declare const state: NodeState;
 * declare const event: Event;
 * const now = performance.now();
 * const { actions } = step(state, event, now);
 * const wakeAt = Math.min(nextDeadline(state, now), now + 5_000);
 * ```
 */
export function nextDeadline(state: NodeState, now: number): number {
  let next = Infinity;
  const at = (t: number | null | undefined) => {
    if (t !== null && t !== undefined && t > now && t < next) next = t;
  };
  const cluster = state.manifest.cluster;
  const hb = cluster.heartbeat;
  const dead = deadAfterInForce(state);
  const peers = Object.values(state.peers);

  // Heartbeats (and the witness beat), every interval.
  if (peers.length > 0 || cluster.witness) {
    if (state.lastHeartbeatAt === null) return now;
    at(state.lastHeartbeatAt + hb.intervalMs);
  }

  // Apps: backoffs end, restart windows of restarted apps close.
  for (const app of Object.values(state.apps)) {
    if (app.phase === "backoff") at(app.backoffUntil);
    const spec = state.manifest.apps[app.name];
    if (
      spec && app.phase === "running" && app.startedAt !== null &&
      (app.restarts > 0 || app.escalated)
    ) {
      at(app.startedAt + spec.restart.windowMs);
    }
  }

  // Quiet periods, the stable view, retries, notices and pending exchanges.
  at(state.quietUntil);
  if (!state.epochFloorKnown) at(state.floorWaitUntil);
  at(state.bootUntil);
  if (state.resume !== null && cluster.witness) at(state.resume.until);
  if (peers.length > 0) at(state.viewChangedAt + dead);
  if (state.role === "active" && Object.values(state.apps).some((a) => a.escalated)) {
    at(state.handoverRetryAt);
  }
  if (state.role === "standby") at(state.holdNoticeAt);
  if (state.expecting) at(state.expecting.until);
  if (state.switchoverWait) at(state.switchoverWait.until);
  if (state.claiming) at(state.claiming.since + dead);
  if (state.role === "failed" && cluster.failedCooldownMs !== null && state.failedAt !== null) {
    at(state.failedAt + cluster.failedCooldownMs);
  }

  // A peer, or the witness, is no longer heard once deadAfter has passed.
  for (const p of peers) {
    if (p.lastHeardAt !== null) at(p.lastHeardAt + dead);
  }
  const w = state.witness;
  if (w.lastOkAt !== null) {
    at(w.lastOkAt + dead);
    // The active the witness last heard of ages out.
    if (w.active) at(w.lastOkAt + dead - w.active.ageMs);
  }

  // Self-fencing of an active: contact ages reach fenceAfter.
  if (state.role === "active" && cluster.witness && peers.length > 0) {
    const since = state.activeSince ?? now;
    const fence = fenceAfterInForce(state);
    at(Math.max(since, w.lastAckAt ?? -Infinity) + fence);
    for (const p of peers) at(Math.max(since, p.lastAckAt ?? -Infinity) + fence);
  }
  return next;
}
