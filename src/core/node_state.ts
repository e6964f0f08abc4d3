/**
 * Construction of a node's core state and the small pure queries every part of the core shares.
 *
 * @module
 */
import type { AppSpec, Manifest } from "../manifest/types.ts";
import type {
  AppState,
  NodeInfo,
  NodeState,
  PeerState,
  PersistedState,
  Role,
  StartMode,
} from "./types.ts";
import { deadAfterInForce, ownSettings } from "./settings.ts";

/**
 * A fresh state for node `self` before its `boot` event.
 *
 * @example
 * ```ts
 * import type { Manifest } from "../manifest/types.ts";
 * declare const manifest: Manifest;
 * const state = initNodeState("alpha", manifest, "auto", 0);
 * ```
 */
export function initNodeState(
  self: string,
  manifest: Manifest,
  mode: StartMode,
  now: number,
): NodeState {
  if (!manifest.nodes[self]) {
    throw new Error(
      `node "${self}" is not in the manifest (nodes: ${Object.keys(manifest.nodes).join(", ")})`,
    );
  }
  const peers: Record<string, PeerState> = {};
  for (const node of Object.values(manifest.nodes)) {
    if (node.name !== self) peers[node.name] = newPeer(node.name, node.priority);
  }
  return {
    self,
    manifest,
    mode,
    role: "standby",
    roleSeq: 0,
    viewChangedAt: now,
    epoch: 0,
    maintenance: false,
    failedReason: null,
    failedAt: null,
    quietUntil: now,
    bootUntil: now,
    activeSince: null,
    seenActive: false,
    handoverRetryAt: now,
    claiming: null,
    holdNoticeAt: now,
    lastHeartbeatAt: null,
    lastTickAt: null,
    lastWitnessCheckAt: null,
    apps: {},
    checking: {},
    peers,
    witness: {
      lastOkAt: null,
      lastAckAt: null,
      active: null,
      kind: null,
      failing: false,
      maxEpoch: 0,
    },
    handover: null,
    switchoverWait: null,
    expecting: null,
    lastHandoverTo: null,
    roleReason: "starting",
    resume: null,
    watchdogOk: null,
    incarnation: "",
    epochFloorKnown: true,
    floorWaitUntil: now,
    heldTimings: null,
    readyWait: null,
    vipHeld: null,
    fencing: { owed: null, jobs: [] },
  };
}

/**
 * Highest epoch the cluster may ever use: far below `Number.MAX_SAFE_INTEGER`, so the next
 * epoch of any node is still an exact integer. A message carrying more is refused.
 */
export const MAX_EPOCH = 2 ** 48;

/**
 * How far beyond the highest epoch this node knows a message's epoch may be. Each takeover
 * raises the cluster's epoch by at most the number of nodes; a million takeovers while this
 * node was not listening is beyond any real cluster, so a bigger jump is a forgery or a bug
 * and is ignored (adopting it would make the active SIGKILL its apps for nothing).
 */
export const MAX_EPOCH_JUMP = 1_000_000;

/** The highest epoch this node has heard of (its own, its peers', the witness's). */
export function knownEpoch(state: NodeState): number {
  let max = Math.max(state.epoch, state.witness.active?.epoch ?? 0, state.witness.maxEpoch);
  for (const p of Object.values(state.peers)) max = Math.max(max, p.epoch);
  return max;
}

/**
 * Whether `epoch` is one the cluster could legitimately have reached: a safe integer, at most
 * {@linkcode MAX_EPOCH}, and at most {@linkcode MAX_EPOCH_JUMP} above {@linkcode knownEpoch}.
 */
export function plausibleEpoch(state: NodeState, epoch: number): boolean {
  return Number.isSafeInteger(epoch) && epoch >= 0 && epoch <= MAX_EPOCH &&
    epoch <= knownEpoch(state) + MAX_EPOCH_JUMP;
}

/** A peer we have not heard from yet. */
export function newPeer(name: string, priority: number): PeerState {
  return {
    name,
    lastHeardAt: null,
    lastAckAt: null,
    roleSeq: 0,
    hears: [],
    handoverTo: null,
    role: null,
    epoch: 0,
    priority,
    maintenance: false,
    manifestHash: null,
    lastError: null,
    incarnation: null,
    retired: [],
    settings: null,
    acked: null,
  };
}

/** A stopped app with zeroed counters. */
export function newApp(name: string, backoffMs: number): AppState {
  return {
    name,
    phase: "stopped",
    pid: null,
    startTime: null,
    specHash: null,
    startedAt: null,
    restarts: 0,
    totalRestarts: 0,
    lastFailureAt: null,
    lastFailure: null,
    backoffUntil: null,
    backoffMs,
    consecutiveCheckFailures: 0,
    lastCheck: null,
    escalated: false,
    stopping: null,
    stopWith: null,
    readyAt: null,
    depPids: null,
  };
}

/** This node's priority from the manifest. */
export function selfPriority(state: NodeState): number {
  return state.manifest.nodes[state.self]?.priority ?? 0;
}

/** What this node tells its peers and the witness about itself. */
export function nodeInfo(state: NodeState): NodeInfo {
  const handoverTo = state.handover?.to ?? state.lastHandoverTo;
  return {
    ...(handoverTo ? { handoverTo } : {}),
    node: state.self,
    role: state.role,
    roleSeq: state.roleSeq,
    hears: state.lastTickAt === null
      ? []
      : Object.values(state.peers).filter((p) => peerAlive(state, p, state.lastTickAt!)).map((
        p,
      ) => p.name),
    epoch: state.epoch,
    priority: selfPriority(state),
    maintenance: state.maintenance,
    manifestHash: state.manifest.hash,
    ...(state.incarnation ? { incarnation: state.incarnation } : {}),
    settings: ownSettings(state),
    seen: Object.fromEntries(
      Object.values(state.peers).flatMap((p) => p.settings ? [[p.name, p.settings.hash]] : []),
    ),
  };
}

/**
 * The durable part of the state, as written to the state directory. With `prev` (a view built
 * here before), the entries of apps that did not change are its objects.
 */
export function toPersisted(state: NodeState, prev: PersistedState | null = null): PersistedState {
  const apps: PersistedState["apps"] = {};
  const before = prev !== null && builtViews.has(prev) ? prev.apps : null;
  for (const name in state.apps) {
    const app = state.apps[name]!;
    if (app.pid !== null && app.startTime !== null && app.specHash !== null) {
      // An entry that did not change is shared with the previous view (views are never
      // mutated): a start of N apps builds ~N views, and a fresh entry per app in each was
      // O(N²) garbage (docs/memory.md).
      const old = before !== null && Object.hasOwn(before, app.name) ? before[app.name] : undefined;
      apps[app.name] = old !== undefined && old.pid === app.pid &&
          old.startTime === app.startTime && old.specHash === app.specHash &&
          old.restarts === app.restarts
        ? old
        : {
          pid: app.pid,
          startTime: app.startTime,
          specHash: app.specHash,
          restarts: app.restarts,
        };
    }
  }
  const fencing = state.fencing.jobs.filter((j) => j.settled === null).map((j) => j.node);
  const view: PersistedState = {
    version: 1,
    node: state.self,
    epoch: state.epoch,
    role: state.role,
    roleSeq: state.roleSeq,
    maintenance: state.maintenance,
    failedReason: state.failedReason,
    apps,
    ...(fencing.length > 0 ? { fencing } : {}),
  };
  builtViews.add(view);
  return view;
}

/** Views {@linkcode toPersisted} built (their entries have its keys only: safe to share). */
const builtViews = new WeakSet<PersistedState>();

/** Whether a peer was heard within `deadAfter` (the longest in force, see `settings.ts`). */
export function peerAlive(state: NodeState, peer: PeerState, now: number): boolean {
  return peer.lastHeardAt !== null && now - peer.lastHeardAt < deadAfterInForce(state);
}

/** Peers heard within `deadAfter` that report the active role. */
export function livePeerActives(state: NodeState, now: number): PeerState[] {
  return Object.values(state.peers).filter((p) => p.role === "active" && peerAlive(state, p, now));
}

/** Whether the handover has gone past the point where this node still runs movable apps. */
export function releasing(state: NodeState): boolean {
  return state.handover !== null && state.handover.phase !== "preparing";
}

/**
 * Whether a process of `spec` may run on this node now (a running one is kept).
 *
 * Non-movable apps run on every node they are assigned to, whatever its role. Movable apps
 * run only on the active node, and not while it hands them over.
 */
export function allowedHere(state: NodeState, spec: AppSpec): boolean {
  if (spec.nodes !== null && !spec.nodes.includes(state.self)) return false;
  if (!spec.movable) return true;
  return state.role === "active" && !releasing(state);
}

/**
 * Whether `spec` should be started on this node now: {@linkcode allowedHere}, except that a
 * resumed active that has not yet heard its peers starts no missing movable app (it might have
 * been replaced while its agent was down). The ones still running are kept meanwhile.
 */
export function desiredHere(state: NodeState, spec: AppSpec, now: number): boolean {
  if (!allowedHere(state, spec)) return false;
  if (!spec.movable) return true;
  if (state.resume !== null) return false; // the lease is not re-established yet
  // Survivor fencing: the node taken over from is not fenced yet (survivor_fence.ts).
  if (state.fencing.jobs.some((j) => j.settled === null)) return false;
  if (now < state.bootUntil) {
    return Object.values(state.peers).every((p) => peerAlive(state, p, now));
  }
  return true;
}

/** Milliseconds as a short human string for messages (`250ms`, `1.5s`, `2m`). */
export function human(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10}s`;
  return `${Math.round(ms / 6000) / 10}m`;
}

/** Change this node's role (and its role counter, so peers can order our messages). */
export function setRole(state: NodeState, role: Role, reason: string): void {
  if (state.role !== role) state.roleSeq++;
  state.role = role;
  state.roleReason = reason;
}
