/**
 * The `deadline` probe of the simulation (`RunOptions.deadlineCheck`): `nextDeadline` is when
 * the agent sleeps until, so a tick before it must change nothing.
 *
 * @module
 */
import { nextDeadline } from "../core/deadline.ts";
import { step } from "../core/step.ts";
import type { NodeState } from "../core/types.ts";
import type { Violation } from "./invariants.ts";
import type { SimHost } from "./sim_host.ts";

/**
 * A tick before the core's next deadline must do nothing: probed on a copy of a running
 * agent's state (the agent itself is not touched). Returns the violation, if any.
 */
export function probeDeadline(h: SimHost, at: number): Violation | null {
  const inc = h.live;
  if (!inc?.booted || inc.group.frozen) return null;
  const local = inc.group.now();
  const state = inc.agent.state;
  // The deadline as of the agent's latest tick (a deadline exactly at a time counts from
  // before it): the agent sleeps until then.
  const due = nextDeadline(state, state.lastTickAt ?? local);
  if (due <= local) return null;
  const copy = structuredClone(state);
  const before = _decisionState(copy);
  const { actions } = step(copy, { type: "tick" }, local);
  if (actions.length > 0 || _decisionState(copy) !== before) {
    return {
      invariant: "deadline",
      at,
      message:
        `${h.name}: a tick at ${local} (last tick ${state.lastTickAt}, beat ${state.lastHeartbeatAt}) before nextDeadline ${due} acted: ${
          actions.map((a) => a.type === "record" ? `${a.kind}: ${a.message}` : a.type).join(
            "; ",
          ) ||
          "changed the state"
        }`,
    };
  }
  return null;
}

/** The core state minus the manifest and the tick bookkeeping, as text to compare. */
function _decisionState(state: NodeState): string {
  return JSON.stringify(
    state,
    (k, v) => k === "manifest" || k === "lastTickAt" || k === "lastHeartbeatAt" ? undefined : v,
  );
}
