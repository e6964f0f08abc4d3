/**
 * Invariants of the seeded simulation, checked after every step: functions of a
 * {@linkcode WorldView} (what every node believes, what every host really runs, what the
 * network delivered) and of a {@linkcode Monitor} (the history they need: highest epochs,
 * when a node failed, open overlap episodes). They read no clock and do no I/O; the only thing
 * they change is the monitor passed in.
 *
 * Invariants:
 * 1. `one-active-per-epoch`: no two live nodes hold the role `active` with the same epoch at
 *    the same instant.
 * 2. `epoch-monotonic`: a node's epoch never decreases, across agent restarts too.
 *    `durable-state`: after every step the persisted role and epoch equal the in-memory ones
 *    (that is what makes 2 hold across restarts, and what a peer may rely on).
 * 3. `failed-stays-failed`: a node that became `failed` leaves that role only after a `clear`
 *    command reached it or its `failedCooldown` passed (restarts do not count).
 * 4. `single-runner` (safety): no two hosts run a process of the same movable app at the same
 *    instant, except in the situations below that the design states it cannot prevent.
 * 5. `liveness` (end of run): after faults stop and the network heals, within the settle time,
 *    exactly one node is active, every movable app runs exactly once and on it, every
 *    non-movable app runs exactly once on every host, and no process is unmanaged.
 * 6. `durable-before-spawn`: a movable app is spawned only under a persisted role `active`
 *    at the epoch of the spawn.
 *
 * 4 is physical: the process table of each host is the world, and apps outlive a dead or
 * paused agent as on Linux. No overlap is excused because an agent was down or paused: a
 * duplicate then is a real duplicate (the guard twin, sim_guard.ts, must prevent it). The one
 * exception, decided when an overlap begins and valid only while its cause lasts plus a grace
 * period {@linkcode graceMs} (time to notice and stop), is a cluster without an arbiter:
 * - `no-arbiter-silence` (also for 1): the cluster has no witness or only a plain HTTP
 *   witness (which proves reachability, not exclusivity), and one of the two nodes became
 *   active after hearing nothing at all from the other for `deadAfter` (ground truth of the
 *   network, not the node's belief). Without an arbiter, a partition or heavy loss makes a
 *   standby take over from a live active: the design cannot tell "dead" from "cut off". The
 *   grace starts once messages flowed both ways again after the overlap began.
 * Everything else counts, in particular: overlaps with a baton witness and a live agent on
 * both hosts, whatever the partition shape (one-way, partial, node↔witness), because the
 * witness lease and self-fencing are meant to prevent exactly those.
 *
 * @example
 * ```ts
 * declare const view: WorldView; // the simulated hosts and processes, now
 * const monitor = newMonitor();
 * const violations = checkWorld(monitor, view); // after every simulated step
 * const end = checkLiveness(view);              // once, at the end of the run
 * ```
 *
 * The invariant families live in `node_invariants.ts` (1–3), `process_invariants.ts` (4, 6),
 * `liveness.ts` (5) and `excuses.ts` (overlap episodes); `world_view.ts` holds the types.
 * This module runs them after a step and re-exports them.
 *
 * @module
 */
import type { Monitor, Violation, WorldView } from "./world_view.ts";
import { checkSameEpoch, trackNodes } from "./node_invariants.ts";
import { checkSingleRunner } from "./process_invariants.ts";

export type {
  Activation,
  Episode,
  Excuse,
  HostView,
  InvariantName,
  Monitor,
  ProcView,
  Violation,
  WitnessKind,
  WorldView,
} from "./world_view.ts";
export { fmtMs, graceMs, newMonitor } from "./world_view.ts";
export { findExcuses } from "./excuses.ts";
export { checkSpawn } from "./process_invariants.ts";
export { checkLiveness } from "./liveness.ts";

/**
 * Check invariants 1–4 against the world after one step; record history in `monitor`.
 * Returns the violations found (empty when all hold).
 */
export function checkWorld(monitor: Monitor, world: WorldView): Violation[] {
  const out: Violation[] = [];
  trackNodes(monitor, world, out);
  checkSameEpoch(monitor, world, out);
  checkSingleRunner(monitor, world, out);
  return out;
}
