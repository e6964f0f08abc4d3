/**
 * The status document: what `GET /v1/status` serves and `baton status --json` prints.
 * A pure function of the core state, the clock and the recent records.
 *
 * @module
 */
import type { EventRecord } from "../store/event_log.ts";
import type { Handover, NodeState } from "../core/types.ts";
import { targetProblem } from "../core/switchover.ts";
import { peerAlive } from "../core/node_state.ts";
import { describeMismatch } from "../core/settings.ts";
import { fenceWarnings } from "../core/survivor_fence.ts";
import type { AppStatus, PeerStatus, StatusDoc } from "../peer/api_types.ts";

export type { AppStatus, PeerStatus, StatusDoc } from "../peer/api_types.ts";

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
  const warnings: string[] = [...fenceWarnings(state, now)];
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
        waitingFor: handoverWaitsFor(state.handover),
        sinceMs: Math.round(now - state.handover.startedAt),
      }
      : null,
    switchover: switchoverStatus(state, now),
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
    ...(state.fencing.jobs.length > 0
      ? {
        fencing: state.fencing.jobs.map((j) => ({
          node: j.node,
          state: j.settled ?? (j.phase === "running" ? "fencing" : "pending"),
          attempts: j.attempts,
          last: j.last === null ? null : {
            exitCode: j.last.exitCode,
            durationMs: j.last.durationMs,
            firstLine: j.last.firstLine,
          },
        })),
      }
      : {}),
    events,
  };
}

/** What a handover in `h.phase` waits for, in words. */
export function handoverWaitsFor(h: Handover): string {
  switch (h.phase) {
    case "preparing":
      return `${h.to} to acknowledge the handover`;
    case "stopping":
      return "the movable apps to stop on this node";
    case "fencing":
      return "this host's fence command";
    case "committing":
      return `${h.to} to confirm it took the apps`;
  }
}

/** The waiting switchover of `state` as status shows it, or null. */
function switchoverStatus(state: NodeState, now: number): StatusDoc["switchover"] {
  const w = state.switchoverWait;
  if (!w) return null;
  const problem = targetProblem(state, w.to, now);
  const who = w.to ?? "a standby";
  return {
    to: w.to,
    waitingFor: `${who} to be seen as an available standby` + (problem ? ` (now: ${problem})` : ""),
    sinceMs: Math.round(now - w.since),
    leftMs: Math.max(0, Math.round(w.until - now)),
  };
}
