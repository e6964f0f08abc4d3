/**
 * Cluster settings agreement: the manifest keys that decide safety (heartbeat timings,
 * fencing, the witness, the set of nodes and of movable apps) must agree between nodes, and
 * no node may take over on timings the active did not agree to.
 *
 * Every heartbeat carries the sender's {@linkcode ClusterSettings}: a digest per safety key,
 * their hash, and the `deadAfter`/`fenceAfter` in force at the sender; and `seen`, the hash
 * of each peer's settings it has received. From these:
 * - a standby waits for the **longest** `deadAfter` in force anywhere it has heard of
 *   ({@linkcode deadAfterInForce});
 * - an active that reloaded new timings keeps the **shorter** of its old and new
 *   `fenceAfter` (and advertises the longer `deadAfter`) until every peer has acknowledged the
 *   new settings ({@linkcode fenceAfterInForce});
 * - any difference is a loud warning naming the differing keys ({@linkcode settingsMismatch}).
 *
 * Keys that may rightly differ per host (TLS file paths, the secret file, notification
 * sinks, a floating IP's interface, app commands and checks) are not part of the agreement.
 * Pure and clock-free.
 *
 * @module
 */
import type { Manifest } from "../manifest/types.ts";
import type { NodeState } from "./types.ts";

import type { ClusterSettings } from "./settings_types.ts";

export type { ClusterSettings, HeldTimings } from "./settings_types.ts";

/** FNV-1a (32 bit) of a string, as 8 hex digits: a digest for agreement, not for secrecy. */
function _fnv(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/**
 * The safety keys of a manifest and their values (long values as digests).
 *
 * @example
 * ```ts
 * import type { Manifest } from "../manifest/types.ts";
 * declare const manifest: Manifest;
 * safetyKeys(manifest)["heartbeat.deadAfter"]; // "1000"
 * ```
 */
export function safetyKeys(m: Manifest): Record<string, string> {
  const hb = m.cluster.heartbeat;
  const nodes = Object.values(m.nodes).map((n) => `${n.name}=${n.url}@${n.priority}`).sort();
  const movable = Object.values(m.apps).filter((a) => a.movable)
    .map((a) => `${a.name}:${a.nodes === null ? "*" : [...a.nodes].sort().join(",")}`).sort();
  const w = m.cluster.witness;
  return {
    "heartbeat.interval": String(hb.intervalMs),
    "heartbeat.deadAfter": String(hb.deadAfterMs),
    "heartbeat.fenceAfter": String(hb.fenceAfterMs),
    "witness": m.cluster.coordinator
      ? `etcd ${m.cluster.coordinator.etcd.prefix} ttl ${m.cluster.coordinator.etcd.ttlSeconds}s`
      : w === null
      ? "none"
      : `${w.kind} ${w.url}`,
    "fence": m.cluster.fence === null ? "none" : _fnv(JSON.stringify(m.cluster.fence)),
    "nodes": _fnv(nodes.join(";")),
    "apps.movable": _fnv(movable.join(";")),
    // Floating IPs (only when configured, so other manifests keep their hash): the addresses,
    // not the interface, which may rightly differ per host (eth0 here, ens3 there).
    ...(m.cluster.vip?.length
      ? { "vip": _fnv(m.cluster.vip.map((v) => v.cidr).sort().join(";")) }
      : {}),
  };
}

/** Hash of a set of safety keys. */
export function settingsHash(keys: Record<string, string>): string {
  return _fnv(Object.keys(keys).sort().map((k) => `${k}=${keys[k]}`).join("\n"));
}

/** What this node advertises in its heartbeats. */
export function ownSettings(state: NodeState): ClusterSettings {
  const keys = safetyKeys(state.manifest);
  const hb = state.manifest.cluster.heartbeat;
  return {
    hash: settingsHash(keys),
    keys,
    deadAfterMs: Math.max(hb.deadAfterMs, state.heldTimings?.deadAfterMs ?? 0),
    fenceAfterMs: fenceAfterInForce(state),
  };
}

/**
 * How long a peer (or the witness) may be silent before it counts as gone: the longest
 * `deadAfter` in force anywhere this node has heard of (its own, one it still honours after
 * a reload, and every peer's).
 */
export function deadAfterInForce(state: NodeState): number {
  let dead = Math.max(
    state.manifest.cluster.heartbeat.deadAfterMs,
    state.heldTimings?.deadAfterMs ?? 0,
  );
  for (const p of Object.values(state.peers)) dead = Math.max(dead, p.settings?.deadAfterMs ?? 0);
  return dead;
}

/** The `fenceAfter` this node applies as an active: the shorter of its new and held one. */
export function fenceAfterInForce(state: NodeState): number {
  const own = state.manifest.cluster.heartbeat.fenceAfterMs;
  return Math.min(own, state.heldTimings?.fenceAfterMs ?? Infinity);
}

/**
 * Called when the manifest changes: if the timings changed and there are peers, keep the
 * safer of old and new (shorter fenceAfter, longer deadAfter) until every peer acknowledged.
 */
export function holdTimings(state: NodeState, before: Manifest): void {
  const old = before.cluster.heartbeat;
  const cur = state.manifest.cluster.heartbeat;
  if (Object.keys(state.peers).length === 0) return;
  if (old.deadAfterMs === cur.deadAfterMs && old.fenceAfterMs === cur.fenceAfterMs) return;
  const held = state.heldTimings;
  state.heldTimings = {
    deadAfterMs: Math.max(old.deadAfterMs, held?.deadAfterMs ?? 0),
    fenceAfterMs: Math.min(old.fenceAfterMs, held?.fenceAfterMs ?? Infinity),
  };
}

/** Drop the held timings once every peer has acknowledged our current settings. */
export function releaseHeldTimings(state: NodeState): boolean {
  if (state.heldTimings === null) return false;
  const hash = settingsHash(safetyKeys(state.manifest));
  if (!Object.values(state.peers).every((p) => p.acked === hash)) return false;
  state.heldTimings = null;
  return true;
}

/** Peers whose advertised safety settings differ from ours, with the differing keys. */
export function settingsMismatch(state: NodeState): { peer: string; keys: string[] }[] {
  const mine = safetyKeys(state.manifest);
  const out: { peer: string; keys: string[] }[] = [];
  for (const p of Object.values(state.peers)) {
    const theirs = p.settings?.keys;
    if (!theirs) continue;
    const all = new Set([...Object.keys(mine), ...Object.keys(theirs)]);
    const keys = [...all].filter((k) => mine[k] !== theirs[k]).sort();
    if (keys.length > 0) out.push({ peer: p.name, keys });
  }
  return out;
}

/** One line per mismatch for status: `cluster settings differ from beta: heartbeat.deadAfter (1000 here, 10000 there)`. */
export function describeMismatch(state: NodeState): string[] {
  const mine = safetyKeys(state.manifest);
  return settingsMismatch(state).map(({ peer, keys }) => {
    const theirs = state.peers[peer]?.settings?.keys ?? {};
    const parts = keys.map((k) =>
      `${k} (${mine[k] ?? "unset"} here, ${theirs[k] ?? "unset"} there)`
    );
    return `CLUSTER SETTINGS DIFFER from ${peer}: ${parts.join(", ")}; the longest deadAfter ` +
      `(${deadAfterInForce(state)}ms) and the shortest fenceAfter are in force`;
  });
}
