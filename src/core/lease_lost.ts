/**
 * The guard fenced this node (`src/guard/`): its lease ran out before the renewal reached it
 * (a starved or paused agent, a late answer), and it SIGKILLed the movable apps. That is a lost
 * lease, not an app failure: the node steps down as on isolation, the apps' exits that follow
 * are expected stops (no restart, nothing counted towards `restart.limit`), and the standby, or
 * this node again after its quiet period, takes over through the usual claim.
 *
 * @module
 */
import { killMovable } from "./reconcile.ts";
import { stepDown } from "./takeover.ts";
import type { Out } from "./out.ts";
import type { NodeState } from "./types.ts";

/**
 * The driver learnt from the guard that it fenced (event `lease_lost`).
 *
 * @example
 * ```ts
 * import { step } from "./step.ts";
 * import type { NodeState } from "./types.ts";
 * declare const state: NodeState;
 * step(state, { type: "lease_lost", detail: "the guard's lease expired" }, performance.now());
 * ```
 */
export function onLeaseLost(state: NodeState, detail: string, now: number, out: Out): void {
  out.record(
    "error",
    null,
    "lease_lost",
    `the lease is lost: ${detail}; the movable apps were SIGKILLed by the guard (not an app ` +
      "failure)",
  );
  if (state.role === "active") {
    stepDown(state, `lease lost (${detail})`, now, out);
  } else {
    // Already stepped down: any movable app still marked running here was hit too.
    killMovable(state, `lease lost (${detail})`, out);
  }
}
