/**
 * The human form of the status document (`baton status` without `--json`).
 *
 * @module
 */
import type { StatusDoc } from "./peer/api_types.ts";

function age(ms: number | null): string {
  if (ms === null) return "never";
  return ms < 1000 ? `${ms}ms ago` : `${(ms / 1000).toFixed(1)}s ago`;
}

/** Render the status document as a few aligned lines. */
export function formatStatus(doc: StatusDoc): string {
  const lines: string[] = [];
  lines.push(
    `node ${doc.node} (cluster ${doc.cluster}): ${doc.role.toUpperCase()} at epoch ${doc.epoch}` +
      (doc.maintenance ? " [MAINTENANCE]" : ""),
  );
  lines.push(`  why: ${doc.roleReason}`);
  if (doc.handover) {
    lines.push(
      `  handover: ${doc.handover.kind} to ${doc.handover.to} (${doc.handover.phase}` +
        (doc.handover.waitingFor ? `: waiting for ${doc.handover.waitingFor}` : "") + ")",
    );
  }
  if (doc.switchover) {
    lines.push(
      `  switchover: waiting for ${doc.switchover.waitingFor} (asked ` +
        `${age(doc.switchover.sinceMs)}; refused in ${
          (doc.switchover.leftMs / 1000).toFixed(1)
        }s ` +
        "if still not)",
    );
  }
  for (const w of doc.warnings) lines.push(`  ! ${w}`);
  lines.push("");
  lines.push("APP              STATE     PID      RESTARTS  MOVABLE  KILLS          CHECK");
  for (const a of doc.apps) {
    const check = a.lastCheck
      ? `${a.check} ${a.lastCheck.ok ? "ok" : "FAIL"}: ${a.lastCheck.detail}`
      : a.check;
    lines.push(
      `${a.name.padEnd(16)} ${a.state.padEnd(9)} ${String(a.pid ?? "-").padEnd(8)} ` +
        `${String(a.restarts).padEnd(9)} ${(a.movable ? "yes" : "no").padEnd(8)} ` +
        `${(a.containment ?? "-").padEnd(14)} ${check}`,
    );
    if (a.limits) lines.push(`  ${"".padEnd(15)}limits: ${a.limits}`);
  }
  if (doc.peers.length) {
    lines.push("");
    lines.push("PEER             REACHABLE  ROLE      EPOCH  HEARD");
    for (const p of doc.peers) {
      lines.push(
        `${p.name.padEnd(16)} ${(p.reachable ? "yes" : "NO").padEnd(10)} ` +
          `${(p.role ?? "?").padEnd(9)} ${String(p.epoch).padEnd(6)} ${age(p.lastHeartbeatAgeMs)}` +
          (p.manifestMatches === false ? "  (manifest differs!)" : ""),
      );
    }
  }
  if (doc.vips?.length) {
    lines.push("");
    lines.push("FLOATING IP          INTERFACE        HELD");
    for (const v of doc.vips) {
      lines.push(
        `${v.address.padEnd(20)} ${v.interface.padEnd(16)} ${v.held ? "yes" : "no"}` +
          (v.error ? `  ! ${v.error}` : ""),
      );
    }
  }
  if (doc.witness) {
    lines.push(
      `witness ${doc.witness.url}: ${doc.witness.reachable ? "reachable" : "UNREACHABLE"}` +
        (doc.witness.kind ? ` (${doc.witness.kind})` : ""),
    );
  }
  const co = doc.coordinator;
  if (co) {
    // etcd as the coordinator (issue 14): reachability, the key's holder, lease time left.
    const holder = co["holder"] as { node: string; revision: number } | null | undefined;
    const left = co["leaseLeftMs"];
    lines.push(
      `etcd ${String(co["key"])}: ${co["reachable"] === true ? "reachable" : "UNREACHABLE"}` +
        `, holder ${holder ? `${holder.node} (revision ${holder.revision})` : "none"}` +
        (typeof left === "number" ? `, our lease ≥ ${(left / 1000).toFixed(1)}s left` : ""),
    );
  }
  if (doc.events.length) {
    lines.push("");
    lines.push("RECENT EVENTS");
    for (const e of doc.events.slice(-10)) {
      lines.push(`  ${e.time} ${e.level.padEnd(5)} ${e.app ?? "-"} ${e.kind}: ${e.message}`);
    }
  }
  return lines.join("\n");
}
