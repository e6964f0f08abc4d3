/**
 * The takeover protocol: roles, epochs, heartbeats, handover of every movable app
 * (escalation and switchover), standby takeover, witness arbitration and self-fencing.
 *
 * Safety rules, in the order they are checked:
 * - An active that sees another active with a higher epoch stops its movable apps at once
 *   (SIGKILL) and becomes standby.
 * - An active that hears neither a peer nor the witness for `fenceAfter` stops its movable
 *   apps by itself; the standby waits `deadAfter` > `fenceAfter` + interval before it starts
 *   them, so the isolated active always stops first.
 * - A standby that cannot see every peer takes over only with the witness's agreement (a
 *   baton witness grants the claim; a plain HTTP witness only proves reachability).
 * - A handing-over active stops its movable apps, and only then asks the peer to start them.
 *
 * The state machine lives in: `cluster_view.ts` (peers and the witness), `roles.ts` (roles and
 * epochs), `handover.ts` (sending and receiving side of a handover), `commands.ts` (operator
 * commands) and `cluster_tick.ts` (the periodic cycle). This module re-exports them.
 *
 * @module
 */
export { onClaimResult, onPeerInfo, onPeerUnreachable, onWitness } from "./cluster_view.ts";
export { becomeActive, nextEpoch, onWatchdogFact, stepDown, takeOver } from "./roles.ts";
export {
  bestStandby,
  escalate,
  noPeerReason,
  onCommit,
  onCommitResult,
  onFenceResult,
  onPrepare,
  onPrepareResult,
  progressHandover,
  startHandover,
} from "./handover.ts";
export { onCommand } from "./commands.ts";
export { tickCluster } from "./cluster_tick.ts";
