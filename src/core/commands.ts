/**
 * Operator commands handled by the core: maintenance on/off and clear (a switchover is
 * `onSwitchover`, in switchover.ts).
 *
 * @module
 */
import { assertNever } from "./assert.ts";
import { setRole } from "./node_state.ts";
import type { Out } from "./out.ts";
import type { Command, NodeState } from "./types.ts";

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
export function leaveFailed(state: NodeState, reason: string, now: number): void {
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
