/**
 * The status document: what `GET /v1/status` serves and `baton status --json` prints.
 * A pure function of the core state, the clock and the recent records.
 *
 * @module
 */
import type { EventRecord } from "../store/event_log.ts";
import type { NodeState } from "../core/types.ts";
import { peerAlive } from "../core/node_state.ts";
import { describeMismatch } from "../core/settings.ts";

/** One app in the status document. */
export interface AppStatus {
  name: string;
  state: string;
  pid: number | null;
  restarts: number;
  totalRestarts: number;
  movable: boolean;
  escalated: boolean;
  uptimeMs: number | null;
  check: string;
  lastCheck: { ok: boolean; detail: string; ageMs: number } | null;
  lastFailure: string | null;
  /** How a stop reaches everything the app started (filled in by the agent). */
  containment?: "cgroup" | "process group" | "pid" | null;
  /** `limits:` and how each is applied, e.g. "memory 64M: cgroup v1" (filled in by the agent). */
  limits?: string | null;
}

/** One peer as this node sees it. */
export interface PeerStatus {
  name: string;
  url: string;
  reachable: boolean;
  role: string | null;
  epoch: number;
  priority: number;
  maintenance: boolean;
  lastHeartbeatAgeMs: number | null;
  manifestHash: string | null;
  manifestMatches: boolean | null;
  error: string | null;
}

/** The whole document. */
export interface StatusDoc {
  node: string;
  cluster: string;
  role: string;
  roleReason: string;
  epoch: number;
  mode: string;
  maintenance: boolean;
  failedReason: string | null;
  manifestHash: string;
  handover: { kind: string; to: string; phase: string; reason: string } | null;
  escalations: { app: string; reason: string | null }[];
  apps: AppStatus[];
  peers: PeerStatus[];
  witness: { url: string; reachable: boolean; kind: string | null; ageMs: number | null } | null;
  warnings: string[];
  events: EventRecord[];
  /**
   * How late the agent's tick timers fired (event-loop lag, ms): the worst since the agent
   * started, the latest, and how many were later than one heartbeat interval. Filled in by the
   * agent (absent from a document built by {@linkcode buildStatus} alone).
   */
  eventLoop?: { maxLagMs: number; lastLagMs: number; lateTicks: number };
  /** The per-host guard holding the lease (filled in by the agent; absent without one). */
  guard?: Record<string, unknown>;
}

/** Build the status document. */
export function buildStatus(state: NodeState, now: number, events: EventRecord[]): StatusDoc {
  const m = state.manifest;
  const apps: AppStatus[] = Object.values(m.apps).map((spec) => {
    const a = state.apps[spec.name];
    return {
      name: spec.name,
      state: a?.phase ?? "stopped",
      pid: a?.pid ?? null,
      restarts: a?.restarts ?? 0,
      totalRestarts: a?.totalRestarts ?? 0,
      movable: spec.movable,
      escalated: a?.escalated ?? false,
      uptimeMs: a?.startedAt != null && a.phase === "running"
        ? Math.round(now - a.startedAt)
        : null,
      check: spec.check.type,
      lastCheck: a?.lastCheck
        ? {
          ok: a.lastCheck.ok,
          detail: a.lastCheck.detail,
          ageMs: Math.round(now - a.lastCheck.at),
        }
        : null,
      lastFailure: a?.lastFailure ?? null,
    };
  });
  for (const a of Object.values(state.apps)) {
    if (!m.apps[a.name]) {
      apps.push({
        name: a.name,
        state: a.phase,
        pid: a.pid,
        restarts: a.restarts,
        totalRestarts: a.totalRestarts,
        movable: false,
        escalated: a.escalated,
        uptimeMs: null,
        check: "removed",
        lastCheck: null,
        lastFailure: a.lastFailure,
      });
    }
  }
  const peers: PeerStatus[] = Object.values(state.peers).map((p) => ({
    name: p.name,
    url: m.nodes[p.name]?.url ?? "",
    reachable: peerAlive(state, p, now),
    role: p.role,
    epoch: p.epoch,
    priority: p.priority,
    maintenance: p.maintenance,
    lastHeartbeatAgeMs: p.lastHeardAt === null ? null : Math.round(now - p.lastHeardAt),
    manifestHash: p.manifestHash,
    manifestMatches: p.manifestHash === null ? null : p.manifestHash === m.hash,
    error: p.lastError,
  }));
  const warnings: string[] = [];
  for (const p of peers) {
    if (p.manifestMatches === false) {
      warnings.push(`manifest differs from ${p.name} (${p.manifestHash} vs ${m.hash})`);
    }
  }
  warnings.push(...describeMismatch(state));
  if (state.heldTimings) {
    warnings.push(
      `new heartbeat timings not yet acknowledged by every peer: keeping fenceAfter ` +
        `${Math.min(state.heldTimings.fenceAfterMs, m.cluster.heartbeat.fenceAfterMs)}ms and ` +
        `deadAfter ${Math.max(state.heldTimings.deadAfterMs, m.cluster.heartbeat.deadAfterMs)}ms`,
    );
  }
  if (m.cluster.witness?.kind === "http") {
    warnings.push(
      "the witness is a plain HTTP server (kind: http): it proves reachability only and " +
        "cannot arbitrate a partition where both nodes reach it",
    );
  }
  const escalations = Object.values(state.apps).filter((a) => a.escalated).map((a) => ({
    app: a.name,
    reason: a.lastFailure,
  }));
  for (const e of escalations) {
    warnings.push(`ESCALATION: ${e.app} failed again after restart (${e.reason ?? "unknown"})`);
  }
  if (state.role === "failed") warnings.push(`node failed: ${state.failedReason ?? "unknown"}`);
  if (state.maintenance) warnings.push("maintenance mode: no restarts, no moves");
  const w = m.cluster.witness;
  return {
    node: state.self,
    cluster: m.cluster.name,
    role: state.role,
    roleReason: state.roleReason,
    epoch: state.epoch,
    mode: state.mode,
    maintenance: state.maintenance,
    failedReason: state.failedReason,
    manifestHash: m.hash,
    handover: state.handover
      ? {
        kind: state.handover.kind,
        to: state.handover.to,
        phase: state.handover.phase,
        reason: state.handover.reason,
      }
      : null,
    escalations,
    apps,
    peers,
    witness: w
      ? {
        url: w.url,
        reachable: state.witness.lastOkAt !== null &&
          now - state.witness.lastOkAt < m.cluster.heartbeat.deadAfterMs,
        kind: state.witness.kind,
        ageMs: state.witness.lastOkAt === null ? null : Math.round(now - state.witness.lastOkAt),
      }
      : null,
    warnings,
    events,
  };
}
