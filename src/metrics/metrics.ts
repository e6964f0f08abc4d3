/**
 * The node's Prometheus metrics (`GET /metrics`), kept with `prom-client`. Gauges are read
 * from the status document at scrape time (no work between scrapes); counters and histograms
 * are fed by the agent's records, the check loop and the heartbeat transport.
 *
 * @example
 * ```ts
 * import type { Agent } from "../agent/agent.ts";
 * import type { EventRecord } from "../store/event_log.ts";
 * declare const agent: Agent;
 * declare const rec: EventRecord;
 * const m = new Metrics(() => agent.status(), { node: "alpha", cluster: "prod" });
 * m.onRecord(rec);
 * const text = await m.text(); // exposition format, m.contentType
 * ```
 *
 * @module
 */
import client from "prom-client";
import type { StatusDoc } from "../peer/api_types.ts";
import type { EventRecord } from "../store/event_log.ts";
import { VERSION } from "../version.ts";

const APP_STATES = ["stopped", "starting", "running", "stopping", "backoff"] as const;
const ROLES = ["active", "standby", "failed"] as const;

/** Cause of an app failure, from the reason the core gives it. */
export function failureCause(message: string): "start" | "check" | "exit" {
  if (message.startsWith("cannot start")) return "start";
  if (/\bcheck failed\b/.test(message)) return "check";
  return "exit";
}

/** Every metric of one node, in its own registry. */
export class Metrics {
  /** The registry (one per agent, so tests can run several). */
  readonly registry: client.Registry = new client.Registry();
  #status: () => StatusDoc;
  #g: Record<string, client.Gauge> = {};
  #restarts: client.Counter;
  #failures: client.Counter;
  #takeovers: client.Counter;
  #handovers: client.Counter;
  #events: client.Counter;
  #notifyFailures: client.Counter;
  #check: client.Histogram;
  #rtt: client.Histogram;

  /** `status` is called once per scrape (never before the first). */
  constructor(status: () => StatusDoc, labels: { node: string; cluster: string }) {
    this.#status = status;
    const r = [this.registry];
    this.registry.setDefaultLabels(labels);
    const gauge = (name: string, help: string, labelNames: string[] = []) => {
      this.#g[name] = new client.Gauge({ name, help, labelNames, registers: r });
    };
    const counter = (name: string, help: string, labelNames: string[] = []) =>
      new client.Counter({ name, help, labelNames, registers: r });
    gauge("baton_build_info", "Version of baton and of Deno running it.", ["version", "deno"]);
    gauge("baton_app_up", "1 if the app is running here.", ["app"]);
    gauge("baton_app_state", "1 for the app's current state.", ["app", "state"]);
    gauge("baton_app_window_restarts", "Restarts inside the current restart window.", ["app"]);
    gauge("baton_app_escalated", "1 if the app's failure escalated (host suspect).", ["app"]);
    gauge("baton_node_role", "1 for this node's current role.", ["role"]);
    gauge("baton_node_epoch", "This node's epoch.");
    gauge("baton_node_maintenance", "1 in maintenance mode.");
    gauge("baton_peer_up", "1 if the peer answered within deadAfter.", ["peer"]);
    gauge("baton_peer_epoch", "The peer's epoch as last heard.", ["peer"]);
    gauge("baton_witness_up", "1 if the witness answered within deadAfter.", ["url"]);
    gauge("baton_event_loop_lag_seconds", "How late the latest tick timer fired.");
    gauge("baton_event_loop_lag_max_seconds", "Worst tick timer lateness since start.");
    gauge("baton_event_loop_late_ticks", "Ticks later than one heartbeat interval since start.");
    gauge("baton_warnings", "Warnings in the status document.");
    this.#restarts = counter("baton_app_restarts_total", "Restarts in place.", ["app"]);
    this.#failures = counter("baton_app_failures_total", "App failures by cause.", [
      "app",
      "cause",
    ]);
    this.#takeovers = counter("baton_takeovers_total", "Times this node became active.");
    this.#handovers = counter("baton_handovers_total", "Handovers from this node by outcome.", [
      "result",
    ]);
    this.#events = counter("baton_events_total", "Event log records by level.", ["level"]);
    this.#notifyFailures = counter(
      "baton_notify_failures_total",
      "Notifications given up or dropped, by sink.",
      ["sink"],
    );
    this.#check = new client.Histogram({
      name: "baton_check_duration_seconds",
      help: "Duration of interface checks.",
      labelNames: ["app", "result"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    });
    this.#rtt = new client.Histogram({
      name: "baton_heartbeat_rtt_seconds",
      help: "Round trip of acknowledged heartbeats to a peer.",
      labelNames: ["peer"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: r,
    });
    for (const result of ["started", "done", "refused"]) this.#handovers.inc({ result }, 0);
    this.#takeovers.inc(0);
  }

  /** Content-Type of {@linkcode Metrics.text}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Count one event log record. */
  onRecord(rec: EventRecord): void {
    this.#events.inc({ level: rec.level });
    const app = rec.app ?? "";
    switch (rec.kind) {
      case "restart":
        this.#restarts.inc({ app });
        this.#failures.inc({ app, cause: failureCause(rec.message) });
        return;
      case "escalation":
      case "failed":
        if (rec.app !== null) this.#failures.inc({ app, cause: failureCause(rec.message) });
        return;
      case "active":
        this.#takeovers.inc();
        return;
      case "handover":
        this.#handovers.inc({ result: "started" });
        return;
      case "handover_done":
        this.#handovers.inc({ result: "done" });
        return;
      case "handover_refused":
        this.#handovers.inc({ result: "refused" });
        return;
    }
  }

  /** One interface check took `ms`. */
  observeCheck(app: string, ok: boolean, ms: number): void {
    this.#check.observe({ app, result: ok ? "ok" : "failed" }, ms / 1000);
  }

  /** One heartbeat to `peer` was acknowledged after `ms`. */
  observeHeartbeat(peer: string, ms: number): void {
    this.#rtt.observe({ peer }, ms / 1000);
  }

  /** A notification to `sink` was given up or dropped. */
  notifyFailed(sink: string): void {
    this.#notifyFailures.inc({ sink });
  }

  /** The exposition text: gauges refreshed from one status document. */
  async text(): Promise<string> {
    const s = this.#status();
    const g = this.#g;
    for (const m of Object.values(g)) m.reset();
    g.baton_build_info!.set({ version: VERSION, deno: Deno.version.deno }, 1);
    for (const a of s.apps) {
      // Counters of every app show from the first scrape, at 0 until something happens.
      this.#restarts.inc({ app: a.name }, 0);
      for (const cause of ["start", "check", "exit"]) this.#failures.inc({ app: a.name, cause }, 0);
      g.baton_app_up!.set({ app: a.name }, a.state === "running" ? 1 : 0);
      for (const st of APP_STATES) {
        g.baton_app_state!.set({ app: a.name, state: st }, a.state === st ? 1 : 0);
      }
      g.baton_app_window_restarts!.set({ app: a.name }, a.restarts);
      g.baton_app_escalated!.set({ app: a.name }, a.escalated ? 1 : 0);
    }
    for (const role of ROLES) g.baton_node_role!.set({ role }, s.role === role ? 1 : 0);
    g.baton_node_epoch!.set(s.epoch);
    g.baton_node_maintenance!.set(s.maintenance ? 1 : 0);
    for (const p of s.peers) {
      g.baton_peer_up!.set({ peer: p.name }, p.reachable ? 1 : 0);
      g.baton_peer_epoch!.set({ peer: p.name }, p.epoch);
    }
    if (s.witness) g.baton_witness_up!.set({ url: s.witness.url }, s.witness.reachable ? 1 : 0);
    const lag = s.eventLoop ?? { lastLagMs: 0, maxLagMs: 0, lateTicks: 0 };
    g.baton_event_loop_lag_seconds!.set(lag.lastLagMs / 1000);
    g.baton_event_loop_lag_max_seconds!.set(lag.maxLagMs / 1000);
    g.baton_event_loop_late_ticks!.set(lag.lateTicks);
    g.baton_warnings!.set(s.warnings.length);
    return await this.registry.metrics();
  }
}
