/**
 * What arbitrates takeovers in this cluster, as the core sees it: a baton witness, a plain HTTP
 * witness, or etcd as the coordinator (`cluster.coordinator.etcd`). Every kind reaches the core
 * through the same seam: `check_witness` / `claim_witness` actions out, `witness` /
 * `claim_result` events in. Pure and clock-free.
 *
 * With etcd, the `witness` event says whether the holder's lease renewal was answered (its send
 * time is the contact) and who holds the key (`active`, the key's create revision as the epoch);
 * a claim is an etcd transaction that creates the key only if it is absent, and its create
 * revision is the epoch granted (`claim_result.granted`).
 *
 * @module
 */
import { etcdFenceWindowMs } from "../manifest/coordinator.ts";
import type { Manifest } from "../manifest/types.ts";
import { fenceAfterInForce } from "./settings.ts";
import type { NodeState } from "./types.ts";

/** The kind of arbiter of a manifest; null: none (no witness, no coordinator). */
export type ArbiterKind = "baton" | "http" | "etcd";

/**
 * The arbiter of a manifest, or null.
 *
 * @example
 * ```ts
 * import type { Manifest } from "../manifest/types.ts";
 * declare const manifest: Manifest;
 * arbiterKind(manifest); // "etcd" with cluster.coordinator.etcd
 * ```
 */
export function arbiterKind(m: Manifest): ArbiterKind | null {
  if (m.cluster.coordinator) return "etcd";
  return m.cluster.witness?.kind ?? null;
}

/** Whether the cluster has an arbiter (a witness of either kind, or a coordinator). */
export function hasArbiter(m: Manifest): boolean {
  return arbiterKind(m) !== null;
}

/** Whether every takeover is a claim the arbiter must grant (a baton witness, or etcd). */
export function claimsArbitrated(m: Manifest): boolean {
  const k = arbiterKind(m);
  return k === "baton" || k === "etcd";
}

/**
 * How long an active may go without an answer from its arbiter, counted from the send time of
 * the latest request it answered, before it must fence itself (when some peer is silent too).
 * With a witness: `fenceAfter` (in force). With etcd: the lease's `ttl − renewal interval −
 * margin` ({@linkcode etcdFenceWindowMs}); the peers' term stays `fenceAfter` (see
 * docs/design.md, "etcd as the coordinator").
 */
export function arbiterFenceAfter(state: NodeState): number {
  const etcd = state.manifest.cluster.coordinator?.etcd;
  if (!etcd) return fenceAfterInForce(state);
  return etcdFenceWindowMs(etcd.ttlSeconds * 1000, state.manifest.cluster.heartbeat.intervalMs);
}
