/**
 * The lease: the moment an active's movable apps must be gone if nothing renews it. It is the
 * self-fencing deadline of the takeover protocol (takeover.ts `tickActive`) as a value, so a
 * driver can hand it to something that outlives the agent (the per-host guard, src/guard/).
 *
 * An active fences itself once it has heard neither the witness nor some peer for
 * `fenceAfter`, contacts dated by the send time of the request they answered and counted from
 * `since` (when it became active) at the earliest. So the deadline is
 * `max(witnessContact, min over peers of peerContact) + fenceAfter`.
 *
 * @module
 */
import type { NodeState } from "./types.ts";

/**
 * The self-fencing deadline (core clock) of an active with peers and a witness, counting
 * contacts from `since` at the earliest; null when the node has no such deadline (not active,
 * no peer, no witness: it never fences itself). `-Infinity` when no contact at all counts yet
 * (`since` null and nothing answered).
 *
 * @example
 * ```ts
 * import type { NodeState } from "./types.ts";
 * declare const state: NodeState;
 * fenceDeadline(state, state.activeSince); // e.g. 12_700: SIGKILL the movable apps then
 * ```
 */
export function fenceDeadline(state: NodeState, since: number | null): number | null {
  const peers = Object.values(state.peers);
  if (state.role !== "active" || peers.length === 0 || !state.manifest.cluster.witness) {
    return null;
  }
  const floor = since ?? -Infinity;
  const contact = (t: number | null) => Math.max(floor, t ?? -Infinity);
  let peerContact = Infinity;
  for (const p of peers) peerContact = Math.min(peerContact, contact(p.lastAckAt));
  const at = Math.max(contact(state.witness.lastAckAt), peerContact);
  return at + state.manifest.cluster.heartbeat.fenceAfterMs;
}
