/**
 * The operator switchover: a planned handover of every movable app from the active node to a
 * standby (`baton switchover [--to NODE]`).
 *
 * The target may be a moment away from being available: a node cleared a second ago is
 * standby on its side, but the active learns it only from its next heartbeat. So instead of
 * refusing at once, the switchover waits up to `deadAfter` for the target to be seen as an
 * available standby (alive, standby, not in maintenance), recording what it waits for, and
 * starts the handover as soon as it is; the operator's request is answered when the handover
 * ends, or with 409 and the reason once `deadAfter` has passed. The wait is core state
 * ({@linkcode PendingSwitchover}) driven by events and ticks: no sleep anywhere, and
 * `nextDeadline` names its end.
 *
 * @module
 */
import { human, livePeerActives, peerAlive } from "./node_state.ts";
import type { Out } from "./out.ts";
import { bestStandby, noPeerReason, startHandover } from "./takeover.ts";
import type { NodeState, PendingSwitchover } from "./types.ts";

/**
 * Why `to` (null: any standby) cannot take the apps right now, or null if it can.
 *
 * @example
 * ```ts
 * import type { NodeState } from "./types.ts";
 * declare const state: NodeState;
 * targetProblem(state, "beta", performance.now()); // "beta is failed", "beta unreachable (…)", or null
 * ```
 */
export function targetProblem(state: NodeState, to: string | null, now: number): string | null {
  if (to === null) return bestStandby(state, now) ? null : noPeerReason(state, now);
  const p = state.peers[to];
  if (!p) return `${to} is not in the manifest`;
  if (!peerAlive(state, p, now)) {
    return p.lastHeardAt === null
      ? `${to} not heard from yet`
      : `${to} unreachable (last heard ${human(now - p.lastHeardAt)} ago)`;
  }
  if (p.maintenance) return `${to} is in maintenance`;
  if (p.role !== "standby") return `${to} is ${p.role ?? "of unknown role"}`;
  return null;
}

/** The operator asked for a switchover (request `id`, answered by a `reply` action). */
export function onSwitchover(
  state: NodeState,
  id: string,
  to: string | null,
  now: number,
  out: Out,
): void {
  const reply = (status: number, error: string) =>
    out.push({ type: "reply", id, status, body: { ok: false, error } });
  if (state.role !== "active") {
    const active = livePeerActives(state, now)[0];
    return reply(
      409,
      `this node is ${state.role}; run switchover on the active node` +
        (active ? ` (${active.name})` : ""),
    );
  }
  if (state.handover) return reply(409, `a handover to ${state.handover.to} is under way`);
  if (state.switchoverWait) {
    return reply(409, `a switchover is already waiting for ${target(state.switchoverWait)}`);
  }
  if (to !== null && !state.peers[to]) return reply(400, `unknown node ${to}`);
  if (state.maintenance) return reply(409, "this node is in maintenance: no moves");
  const problem = targetProblem(state, to, now);
  if (problem === null) {
    if (!startHandover(state, "switchover", to, "operator switchover", id, now, out)) {
      reply(409, `${to ?? "no standby"} is not an available standby`);
    }
    return; // replied when the handover ends
  }
  const deadAfter = state.manifest.cluster.heartbeat.deadAfterMs;
  state.switchoverWait = { id, to, since: now, until: now + deadAfter };
  out.record(
    "info",
    null,
    "switchover_wait",
    `switchover: waiting up to ${human(deadAfter)} (deadAfter) for ${
      target(state.switchoverWait)
    } to be seen as an available standby (now: ${problem})`,
  );
}

/**
 * After every step: start the waiting switchover once its target is available, or refuse it
 * when it can no longer happen (this node stepped down, another handover began) or its wait
 * is over.
 */
export function progressSwitchover(state: NodeState, now: number, out: Out): void {
  const w = state.switchoverWait;
  if (!w) return;
  const refuse = (status: number, error: string) => {
    state.switchoverWait = null;
    out.record("warn", null, "switchover_refused", `switchover refused: ${error}`);
    out.push({ type: "reply", id: w.id, status, body: { ok: false, error } });
  };
  if (state.role !== "active") {
    return refuse(409, `this node became ${state.role} while the switchover waited`);
  }
  if (state.handover) {
    return refuse(409, `a handover to ${state.handover.to} began while the switchover waited`);
  }
  if (state.maintenance) return refuse(409, "this node is in maintenance: no moves");
  if (w.to !== null && !state.peers[w.to]) return refuse(400, `unknown node ${w.to}`);
  const problem = targetProblem(state, w.to, now);
  if (problem === null) {
    state.switchoverWait = null;
    out.record(
      "info",
      null,
      "switchover_wait",
      `switchover: ${target(w)} is an available standby after ${human(now - w.since)}`,
    );
    if (!startHandover(state, "switchover", w.to, "operator switchover", w.id, now, out)) {
      out.push({
        type: "reply",
        id: w.id,
        status: 409,
        body: { ok: false, error: `${w.to ?? "no standby"} is not an available standby` },
      });
    }
    return;
  }
  if (now >= w.until) {
    refuse(
      409,
      w.to === null
        ? `no standby can take over after waiting ${human(now - w.since)}: ${problem}`
        : `${w.to} is not an available standby after waiting ${
          human(now - w.since)
        } (deadAfter): ${problem}`,
    );
  }
}

function target(w: PendingSwitchover): string {
  return w.to ?? "a standby";
}
