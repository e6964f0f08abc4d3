/**
 * Floating IPs (`cluster.vip`) in the core: which addresses this node must hold, as orders
 * (`vip` actions) emitted at the right place of a step. The rule: the addresses are held
 * exactly while the movable apps may run here.
 *
 * - Up: the node is active (not resuming, not past the stopping phase of a handover). They are
 *   added after the new role and epoch are persisted and before any movable app is spawned
 *   (`step` calls {@linkcode syncVips} with `add` after its first `persist`).
 * - Down: as soon as the movable apps must stop. A step-down (higher epoch, self-fencing, a
 *   lost lease) removes them right after its SIGKILLs, before the save (`step` calls
 *   {@linkcode syncVips} without `add` before it); a handover removes them once every movable
 *   app has exited, before it tells the peer to take over ({@linkcode releaseVips}).
 * - A resumed active touches nothing until it knows it is still the active; a boot as anything
 *   else removes whatever is configured (a leftover of an agent that died holding them).
 *
 * @module
 */
import type { VipSpec } from "../manifest/types.ts";
import type { Out } from "./out.ts";
import type { NodeState } from "./types.ts";

/**
 * Whether this node must hold its floating IPs now (null: leave them as they are).
 *
 * @example
 * ```ts
 * import type { NodeState } from "./types.ts";
 * declare const state: NodeState;
 * if (vipWanted(state) === true) console.log("holding", state.manifest.cluster.vip);
 * ```
 */
export function vipWanted(state: NodeState): boolean | null {
  if (state.role !== "active") return false;
  if (state.resume !== null) return null; // not known yet whether it is still the active
  const h = state.handover;
  return h === null || h.phase === "preparing" || h.phase === "stopping";
}

/**
 * Emit the `vip` orders that bring what this node holds in line with {@linkcode vipWanted}:
 * removals always, additions only with `add` (after the step's first persist).
 *
 * @example
 * ```ts
 * import { Out } from "./out.ts";
 * import type { NodeState } from "./types.ts";
 * declare const state: NodeState;
 * const out = new Out();
 * syncVips(state, out, false); // before the save: drop what must go
 * out.persist(state);
 * syncVips(state, out, true); // after it: add what must come, then the apps start
 * ```
 */
export function syncVips(state: NodeState, out: Out, add: boolean): void {
  const vips = state.manifest.cluster.vip ?? [];
  const wantedNow = vipWanted(state);
  if (wantedNow === null) return;
  const wanted = wantedNow ? vips : [];
  const wantKeys = new Set(wanted.map(vipKey));
  const held = state.vipHeld;
  const drop = (held ?? vips).filter((v) => !wantKeys.has(vipKey(v)));
  if (drop.length > 0) {
    out.push({ type: "vip", op: "remove", vips: drop, adopt: false, reason: _downReason(state) });
  }
  let next: VipSpec[] | null = held === null
    ? (wanted.length === 0 ? [] : null)
    : held.filter((v) => wantKeys.has(vipKey(v)));
  if (add && wanted.length > 0) {
    const have = new Set((next ?? []).map(vipKey));
    const missing = wanted.filter((v) => !have.has(vipKey(v)));
    if (missing.length > 0) {
      const adopt = next === null;
      out.push({
        type: "vip",
        op: "add",
        vips: missing,
        adopt,
        reason: `active at epoch ${state.epoch}${adopt ? " (resumed: ours if present)" : ""}`,
      });
    }
    next = [...wanted];
  }
  state.vipHeld = next;
}

/**
 * Remove every floating IP now, whatever {@linkcode vipWanted} says: a handover calls it when
 * its movable apps have all exited, before the peer is told to start them.
 *
 * @example
 * ```ts
 * import { Out } from "./out.ts";
 * import type { NodeState } from "./types.ts";
 * declare const state: NodeState;
 * releaseVips(state, new Out(), "movable apps stopped: handing over to beta");
 * ```
 */
export function releaseVips(state: NodeState, out: Out, reason: string): void {
  const vips = state.vipHeld ?? state.manifest.cluster.vip ?? [];
  state.vipHeld = [];
  if (vips.length > 0) out.push({ type: "vip", op: "remove", vips, adopt: false, reason });
}

/**
 * The key of one floating IP (`cidr dev interface`), as the core and the drivers name it.
 *
 * @example
 * ```ts
 * vipKey({ address: "10.0.0.100", prefix: 24, family: 4, cidr: "10.0.0.100/24", interface: "eth0" });
 * // "10.0.0.100/24 dev eth0"
 * ```
 */
export function vipKey(v: VipSpec): string {
  return `${v.cidr} dev ${v.interface}`;
}

function _downReason(state: NodeState): string {
  if (state.role !== "active") return `node is ${state.role}: ${state.roleReason}`;
  if (state.handover) return `handing over to ${state.handover.to}`;
  return "no longer in cluster.vip";
}
