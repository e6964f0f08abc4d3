/**
 * What a notification says, and which decisions are announced: a pure mapping from the event
 * log's records (`kind` as the core writes it) to the notification kinds operators subscribe
 * to, and the flapping detector (a check that changed state 5 times within 5 minutes).
 *
 * @example
 * ```ts
 * import type { EventRecord } from "../store/event_log.ts";
 * import type { Notifier } from "./notifier.ts";
 * declare const rec: EventRecord;
 * declare const notifier: Notifier;
 * const n = toNotification(rec, { cluster: "prod", role: "active" });
 * if (n) notifier.push(n);
 * ```
 *
 * @module
 */
import type { NotifyKind } from "../manifest/types.ts";
import type { EventRecord } from "../store/event_log.ts";

/** The document a sink receives (a webhook's JSON body; `BATON_EVENT_*` for a command). */
export interface NotifyEvent {
  cluster: string;
  node: string;
  /** This node's role right after the decision. */
  role: string;
  epoch: number;
  app: string | null;
  kind: NotifyKind;
  level: "info" | "warn" | "error";
  /** The decision's reason, as in the event log. */
  reason: string;
  /** ISO wall time of the decision. */
  time: string;
}

/** What the record does not say: the cluster and the node's role now. */
export interface NotifyContext {
  cluster: string;
  role: string;
}

/** Notification kind of a record, or null when the record is not announced. */
export function notifyKind(rec: EventRecord): NotifyKind | null {
  switch (rec.kind) {
    case "restart":
    case "escalation":
    case "handover_done":
    case "manifest_mismatch":
    case "flapping":
    case "vip_conflict":
      return rec.kind;
    case "handover":
      return "handover_started";
    case "active":
      return "takeover";
    case "step_down":
    case "lease_lost": // the guard fenced this node's movable apps
      return "self_fence";
    case "fence":
      // The "running the fence command" line (warn) is followed by its result.
      return rec.level === "info" ? "fence_run" : rec.level === "error" ? "fence_failed" : null;
    case "failed":
      return rec.app === null ? "node_failed" : null;
    case "clear":
      return rec.message.startsWith("cleared") ? "node_cleared" : null;
    case "standby":
      return rec.message.includes("failed → standby") ? "node_cleared" : null;
    case "peer_down":
      return "peer_lost";
    case "peer_up":
      return "peer_back";
    case "witness_down":
      return "witness_lost";
    case "witness_up":
      return "witness_back";
    case "maintenance":
      return rec.message.startsWith("maintenance on") ? "maintenance_on" : "maintenance_off";
    default:
      return null;
  }
}

/** The notification for a record, or null when it is not announced. */
export function toNotification(rec: EventRecord, ctx: NotifyContext): NotifyEvent | null {
  const kind = notifyKind(rec);
  if (kind === null) return null;
  return {
    cluster: ctx.cluster,
    node: rec.node,
    role: ctx.role,
    epoch: rec.epoch,
    app: rec.app,
    kind,
    level: rec.level,
    reason: rec.message,
    time: rec.time,
  };
}

/** State changes of one check within {@linkcode FLAP_WINDOW_MS} that make it flapping. */
export const FLAP_CHANGES = 5;
/** Window of the flapping check. */
export const FLAP_WINDOW_MS = 5 * 60_000;

/**
 * Counts the state changes of each app's check (passing → failing on its first failed
 * result, failing → passing on `check_ok`, and a restart, which starts the check afresh) and
 * says when one changed {@linkcode FLAP_CHANGES} times within {@linkcode FLAP_WINDOW_MS}.
 * After a report, the count starts again.
 *
 * @example
 * ```ts
 * import type { EventRecord } from "../store/event_log.ts";
 * declare const rec: EventRecord;
 * const flaps = new FlapDetector();
 * const why = flaps.observe(rec, Date.now()); // a sentence, or null
 * ```
 */
export class FlapDetector {
  #failing = new Map<string, boolean>();
  #changes = new Map<string, number[]>();

  /** Feed one record; returns the reason to record a `flapping` event, or null. */
  observe(rec: EventRecord, now: number): string | null {
    const app = rec.app;
    if (app === null) return null;
    const failing = this.#failing.get(app) ?? false;
    let changed = false;
    if (rec.kind === "check_failed" && !failing) {
      this.#failing.set(app, true);
      changed = true;
    } else if ((rec.kind === "check_ok" || rec.kind === "started") && failing) {
      this.#failing.set(app, false);
      changed = true;
    } else if (rec.kind === "restart" || rec.kind === "escalation") {
      changed = true;
      this.#failing.set(app, false);
    }
    if (!changed) return null;
    const times = (this.#changes.get(app) ?? []).filter((t) => now - t < FLAP_WINDOW_MS);
    times.push(now);
    if (times.length < FLAP_CHANGES) {
      this.#changes.set(app, times);
      return null;
    }
    this.#changes.set(app, []);
    const span = Math.max(1, Math.round((now - times[0]!) / 1000));
    return `${app} changed state ${times.length} times within ${span} s: it is flapping`;
  }
}
