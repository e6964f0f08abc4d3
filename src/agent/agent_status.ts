/**
 * The agent's status document: the core's (status.ts) plus what only the drivers know (a state
 * write that failed, process containment, floating IPs, the guard, etcd, the event-loop lag).
 *
 * @module
 */
import type { NodeState } from "../core/types.ts";
import type { EventRecord } from "../store/event_log.ts";
import type { AgentOptions } from "./agent_options.ts";
import { buildStatus, type StatusDoc } from "./status.ts";

/** Lateness of the agent's tick timers (event-loop lag), in ms. */
export interface LoopLag {
  /** Worst since start. */
  maxMs: number;
  /** The latest. */
  lastMs: number;
  /** Ticks later than one heartbeat interval. */
  lateTicks: number;
}

/**
 * Build the status document of a running agent. `persistError`: why the latest state save
 * failed (null once one succeeds).
 */
export function agentStatus(
  state: NodeState,
  now: number,
  recent: EventRecord[],
  persistError: string | null,
  lag: LoopLag,
  opts: AgentOptions,
): StatusDoc {
  const doc = buildStatus(state, now, recent);
  if (persistError !== null) {
    // The role shown may not be on disk: nothing is started under it until it is.
    doc.warnings.unshift(`STATE NOT WRITTEN: ${persistError}; no app starts until it is`);
  }
  doc.warnings.push(...(opts.warnings?.() ?? []));
  const runner = opts.runner;
  if (runner.containment) {
    for (const app of doc.apps) app.containment = app.pid ? runner.containment(app.pid) : null;
  }
  const vips = state.manifest.cluster.vip ?? [];
  if (opts.vip && vips.length > 0) {
    doc.vips = opts.vip.status(vips);
    for (const v of doc.vips) if (v.error !== null) doc.warnings.push(`VIP: ${v.error}`);
  }
  for (const app of doc.apps) if (app.pid) app.limits = runner.limitsOf?.(app.pid) ?? null;
  if (opts.lease) {
    doc.guard = opts.lease.status();
    const error = doc.guard["error"];
    if (typeof error === "string") doc.warnings.push(`GUARD: ${error}`);
  }
  if (opts.coordinator) {
    doc.coordinator = opts.coordinator.status();
    if (doc.coordinator["reachable"] !== true) {
      doc.warnings.push(`ETCD UNREACHABLE: ${doc.coordinator["lastError"] ?? "no answer yet"}`);
    }
  }
  return {
    ...doc,
    eventLoop: {
      maxLagMs: Math.round(lag.maxMs),
      lastLagMs: Math.round(lag.lastMs),
      lateTicks: lag.lateTicks,
    },
  };
}
