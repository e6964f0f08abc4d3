/**
 * What the agent tells its guard, decided from the core state alone (pure, no I/O): arm the
 * lease until a deadline, disarm it, or say nothing (nothing yet justifies a change).
 *
 * Rules (docs/guard.md has the timing argument):
 * - An active with peers and a witness holds a lease: its self-fencing deadline
 *   ({@linkcode fenceDeadline}) plus {@linkcode GUARD_GRACE_MS}, so a live agent always fences
 *   itself first and the guard only acts when the agent cannot.
 * - After an agent restart the core counts contacts from the restart (`activeSince` = boot);
 *   that is no contact, so until the witness or a peer answers a request sent after the boot the
 *   guard keeps the deadline the previous agent gave it (nothing is sent).
 * - Maintenance holds the lease by agreement: once every peer has answered a request sent after
 *   this node entered maintenance (so each of them has heard it and will not take over from it
 *   while it is silent), the lease is disarmed; a planned agent restart then keeps every app.
 * - Otherwise (standby, failed, one node, no witness) there is no lease: disarmed.
 *
 * @module
 */
import { fenceDeadline } from "../core/lease.ts";
import type { NodeState } from "../core/types.ts";

/** Added to the core's self-fencing deadline: the agent's own tick (≤ 50 ms late) fences first. */
export const GUARD_GRACE_MS = 25;

/** An order for the guard (core-clock deadline), or null: keep what it has. */
export type LeaseOrder = { kind: "arm"; deadline: number } | { kind: "disarm" } | null;

/** What the driver remembers between steps to decide an order. */
export interface LeaseMemory {
  /** `activeSince` the boot gave (a restart, not a contact); null if none. */
  bootActiveSince: number | null;
  /** Core time this node entered maintenance (or booted in it); null when not in maintenance. */
  maintenanceSince: number | null;
}

/**
 * The order for the guard after a step.
 *
 * @example
 * ```ts
 * import type { NodeState } from "../core/types.ts";
 * import type { GuardProcess } from "./guard.ts";
 * declare const state: NodeState; // the agent's
 * declare const memory: LeaseMemory;
 * declare const guard: GuardProcess;
 * const order = leaseOrder(state, memory);
 * if (order?.kind === "arm") guard.arm(order.deadline);
 * ```
 */
export function leaseOrder(state: NodeState, memory: LeaseMemory): LeaseOrder {
  const since = state.activeSince !== null && state.activeSince === memory.bootActiveSince
    ? null
    : state.activeSince;
  const deadline = fenceDeadline(state, since);
  if (deadline === null) return { kind: "disarm" };
  if (state.maintenance && memory.maintenanceSince !== null) {
    const t = memory.maintenanceSince;
    const agreed = Object.values(state.peers).every((p) =>
      p.lastAckAt !== null && p.lastAckAt >= t
    );
    if (agreed) return { kind: "disarm" };
  }
  if (deadline === -Infinity) return null;
  return { kind: "arm", deadline: deadline + GUARD_GRACE_MS };
}
