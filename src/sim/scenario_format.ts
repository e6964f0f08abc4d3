/**
 * One-line descriptions of a simulation scenario and its faults (for the seed reports).
 *
 * @module
 */
import type { Command } from "../core/types.ts";
import { fmtMs } from "./invariants.ts";
import type { Fault, Scenario } from "./scenario.ts";

function fmtCommand(c: Command): string {
  switch (c.type) {
    case "switchover":
      return `switchover${c.to ? ` to ${c.to}` : ""}`;
    case "maintenance":
      return `maintenance ${c.on ? "on" : "off"}`;
    case "clear":
      return "clear";
    case "fence_ok":
      return `fence-ok ${c.node}`;
  }
}

/** A fault as one line. */
export function fmtFault(f: Fault): string {
  const span = (at: number, until: number | null) =>
    `${fmtMs(at)}–${until === null ? "heal" : fmtMs(until)}`;
  switch (f.kind) {
    case "partition":
      return `${span(f.at, f.until)} partition ${f.label}`;
    case "app_crash":
      return `${fmtMs(f.at)} crash ${f.app} on ${f.host}`;
    case "check_fail":
      return `${span(f.at, f.until)} checks of ${f.app} fail on ${f.host}`;
    case "sick_host":
      return `${span(f.at, f.until)} sick host ${f.host}`;
    case "agent_crash":
      return `${span(f.at, f.until)} agent of ${f.host} down`;
    case "agent_pause":
      return `${span(f.at, f.until)} agent of ${f.host} paused (SIGSTOP)${
        f.edge ? `, ${f.edge === "before_renewal" ? "just before" : "just after"} a renewal` : ""
      }`;
    case "reboot":
      return `${span(f.at, f.until)} host ${f.host} reboots`;
    case "slow_disk":
      return `${span(f.at, f.until)} state writes on ${f.host} take ${f.delayMs} ms`;
    case "failing_disk":
      return `${span(f.at, f.until)} state writes on ${f.host} fail`;
    case "reload":
      return `${fmtMs(f.at)} operator reloads the manifest on ${f.host}${
        f.spec ? " (web changed)" : ""
      }`;
    case "host_death":
      return `${span(f.at, f.until)} host ${f.host} dead`;
    case "maintenance":
      return `${span(f.at, f.until)} maintenance on ${f.host}`;
    case "command":
      return `${fmtMs(f.at)} operator on ${f.host}: ${fmtCommand(f.command)}`;
    case "witness_restart":
      return `${fmtMs(f.at)} witness restarts`;
    case "rogue_process":
      return `${fmtMs(f.at)} ${f.app} started by hand on ${f.host}`;
  }
}

/** A scenario's cluster as one line. */
export function fmtScenario(s: Scenario): string {
  return `seed ${s.seed}: ${s.nodes.length} nodes (${
    s.nodes.map((n) => `${n}=${s.priorities[n]}`).join(" ")
  }), witness ${s.witness}, fence ${s.fence ? "on" : "off"}, cooldown ${
    s.failedCooldownMs === null ? "none" : fmtMs(s.failedCooldownMs)
  }, loss ${(s.lossRate * 100).toFixed(1)}%, slow ${
    (s.spikeRate * 100).toFixed(1)
  }%, ${s.faults.length} fault(s)`;
}
