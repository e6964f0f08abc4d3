/**
 * What an `Agent` (agent.ts) is built from: the node, its manifest, and every side effect as a
 * port (runner, transport, clock, timers, store, event log, kill, fence...). Re-exported by
 * `agent.ts`.
 *
 * @module
 */
import type { CheckScheduler } from "../checks/check_scheduler.ts";
import type { CheckResult, InterfaceCheckSpec } from "../checks/run_check.ts";
import type { FenceOutcome, StartMode } from "../core/types.ts";
import type { Manifest } from "../manifest/types.ts";
import type { EventRecord, EventSink } from "../store/event_log.ts";
import type { StateStorage } from "../store/state_store.ts";
import type { AppProcess } from "../supervisor/orphans.ts";
import type { ProcessRunner } from "../supervisor/process_runner.ts";
import type { Clock, Timers } from "./clock.ts";
import type { LeaseSink } from "../guard/lease_driver.ts";
import type { VipSink } from "../vip/vip_driver.ts";
import type { CoordinatorSink } from "../coord/etcd_coordinator.ts";
import type { PeerTransport } from "./peer_link.ts";

/**
 * Everything the agent needs. Every side effect has a twin: the simulation and the tests swap
 * the runner, transport, clock, timers, state store, event log, kill and fence for in-memory
 * ones (the defaults are the real ones).
 */
export interface AgentOptions {
  node: string;
  manifest: Manifest;
  mode: StartMode;
  stateDir: string;
  runner: ProcessRunner;
  transport: PeerTransport;
  /** Re-reads the manifest for `reload`; returns formatted diagnostics on failure. */
  loadManifest: () => Promise<
    { ok: true; manifest: Manifest; warnings: string[] } | {
      ok: false;
      errors: string[];
    }
  >;
  clock?: Clock;
  /** Timers of the tick, of request timeouts, of check loops (default: the real ones). */
  timers?: Timers;
  /** Durable state (default: `state.json` in `stateDir`). */
  store?: StateStorage;
  /** Event records (default: `events.jsonl` in `stateDir`). */
  events?: EventSink;
  /** Send a signal to a pid (negative: its process group); default `Deno.kill`. */
  kill?: (target: number, signal: Deno.Signal) => void;
  /** Run the fence command (default: a child process, bounded to 60 s). */
  fence?: (command: string[]) => Promise<{ ok: boolean; detail: string }>;
  /**
   * Survivor fencing: run `node`'s fence command (default: `fence_runner.ts`, output to
   * `<stateDir>/fence/<node>.log`). The simulation's twin powers the host off.
   */
  fencePeer?: (req: { node: string; attempt: number; timeoutMs: number }) => Promise<FenceOutcome>;
  /** Runs one interface check when the agent makes its own scheduler (default: the real one). */
  runCheck?: (spec: InterfaceCheckSpec) => Promise<CheckResult>;
  /**
   * Period of a fixed tick (tests). Default: no fixed period; the core is ticked when its next
   * timer falls due (`nextDeadline`), after every event, and at least every 5 s.
   */
  tickMs?: number;
  /** Where human log lines go (default stderr). */
  log?: (line: string) => void;
  /** Run checks (default true; tests of the core wiring may turn them off). */
  checks?: CheckScheduler;
  /** This node's app processes found by their environment at boot (default: /proc scan). */
  findAppProcesses?: () => AppProcess[];
  /** Identity check of a recorded process at boot (default: /proc; tests give the fake's). */
  isSameProcess?: (pid: number, startTime: number) => boolean;
  /** Told of every event log record after it is written (notifications, metrics). */
  onRecord?: (rec: EventRecord) => void;
  /** The lease that outlives the agent (src/guard/): told after every step. Absent: none. */
  lease?: LeaseSink;
  /** Floating IPs (`cluster.vip`, src/vip/): carries out the core's `vip` orders. Absent: none. */
  vip?: VipSink;
  /**
   * etcd as the coordinator (src/coord/): carries out the arbiter actions (`check_witness`,
   * `claim_witness`) instead of the HTTP witness, and is told after every step. Absent: none.
   */
  coordinator?: CoordinatorSink;
  /** The boot fact: did the host reboot since the agent last ran (default: unknown). */
  checkReboot?: () => Promise<boolean | null>;
  /** Whether the watchdog device opened (`cluster.watchdog`); null = not configured. */
  watchdogFact?: boolean | null;
  /** Warnings shown in status for as long as the agent runs (e.g. how the secret came). */
  warnings?: () => string[];
}
