/**
 * The watchdog rule (like Patroni's `watchdog: required`): with `cluster.watchdog.mode:
 * required`, a node whose watchdog device is not open and petted must not hold the active
 * role, since nothing would reset the host if its agent hung while running the apps. The
 * device's state is an input fact (`boot.watchdog`, the `watchdog` event).
 *
 * @module
 */
import type { NodeState } from "./types.ts";

/**
 * Why this node may not be active for want of its watchdog, or null when it may.
 *
 * @example
 * ```ts
 * import type { NodeState } from "./types.ts";
 * declare const state: NodeState;
 * const blocked = watchdogBlocks(state);
 * if (blocked !== null) console.log(`no takeover: ${blocked}`);
 * ```
 */
export function watchdogBlocks(state: NodeState): string | null {
  const w = state.manifest.cluster.watchdog;
  if (!w || w.mode !== "required" || state.watchdogOk === true) return null;
  return `watchdog required but ${w.device} is not ${
    state.watchdogOk === null ? "known to be open" : "available"
  }`;
}
