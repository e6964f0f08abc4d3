/**
 * What the invariants of the simulation look at: the {@linkcode WorldView} of one instant and
 * the {@linkcode Monitor} history, plus the grace period and time formatting they share.
 *
 * @module
 */
import type { Manifest } from "../manifest/types.ts";
import type { NodeState, PersistedState, Role } from "../core/types.ts";

/** Names of the invariants, as printed. */
export type InvariantName =
  | "one-active-per-epoch"
  | "epoch-monotonic"
  | "durable-state"
  | "failed-stays-failed"
  | "single-runner"
  | "liveness"
  | "durable-before-spawn"
  | "core-threw"
  /** With `deadlineCheck`: a tick before the core's next deadline acted. */
  | "deadline";

/** One broken invariant. */
export interface Violation {
  invariant: InvariantName;
  /** Simulated time (ms). */
  at: number;
  message: string;
}

/** Kind of arbiter the simulated cluster has. */
export type WitnessKind = "none" | "http" | "baton";

/** One host as the invariants see it. */
export interface HostView {
  name: string;
  up: boolean;
  /** The running agent, or null when it is down (crashed, or the host is dead). */
  agent: {
    incarnation: number;
    /** Simulated time the agent (re)started. */
    startedAt: number;
    /** Whether its boot event has been processed. */
    booted: boolean;
    state: NodeState;
  } | null;
  /** Simulated time the host's latest agent outage ended (agent restart), null if none. */
  agentBackAt: number | null;
  /** Last state written to this host's state directory. */
  persisted: PersistedState | null;
  /**
   * A state write is in flight, or the latest one failed: the disk may lag the memory (the
   * agent starts nothing under the new state until it is written: `durable-before-spawn`).
   */
  writing?: boolean;
  /** Simulated time the latest `clear` command reached this node's agent, or null. */
  clearedAt: number | null;
  /**
   * Ground truth: simulated time the current agent last received any message from each
   * other node's agent (absent = never since it started).
   */
  lastReceived: Record<string, number>;
}

/** One live process in the simulated world. */
export interface ProcView {
  pid: number;
  app: string;
  host: string;
  /** Simulated start time. */
  startedAt: number;
  /** Whether the host's running agent watches it (spawned or adopted it). */
  managed: boolean;
}

/** What the invariants read: the whole simulated world at one instant. */
export interface WorldView {
  /** Simulated time (ms). */
  now: number;
  manifest: Manifest;
  witness: WitnessKind;
  hosts: Record<string, HostView>;
  /** Live processes only. */
  procs: ProcView[];
}

/** Why an overlap (or two actives at one epoch) is tolerated. */
export interface Excuse {
  kind: "no-arbiter-silence";
  /** Human explanation. */
  detail: string;
  /** The two hosts of the silence. */
  hosts: string[];
  /** Simulated time the episode began. */
  since: number;
  /** Once the cause ended: the end of the grace period. Null while the cause lasts. */
  validUntil: number | null;
}

/** An open overlap: an app on two hosts, or two actives at one epoch. */
export interface Episode {
  start: number;
  members: string[];
  /** Every excuse that applied when the members last changed; any valid one suffices. */
  excuses: Excuse[];
}

/** When a node became active at its current epoch, and whom it had not heard then. */
export interface Activation {
  epoch: number;
  since: number;
  /** Nodes the new active had received nothing from during the `deadAfter` before. */
  silent: string[];
  /** When it stopped being active (a spawn it started may still come up), or null. */
  endedAt: number | null;
}

/** History the invariants keep between steps. */
export interface Monitor {
  /** Highest epoch on disk per node, and in memory per agent life (`node#incarnation`). */
  maxEpoch: Record<string, number>;
  /** Role after the last check (null: agent down). */
  lastRole: Record<string, Role | null>;
  /** Simulated time the node became failed, kept across restarts; null if not failed. */
  failedSince: Record<string, number | null>;
  /** Agent incarnation seen at the last check, per node. */
  life: Record<string, number>;
  activation: Record<string, Activation | null>;
  /** Open overlap episodes: `app:<name>` or `epoch:<n>`. */
  episodes: Record<string, Episode>;
}

/** A monitor with no history, for a new run. */
export function newMonitor(): Monitor {
  return { maxEpoch: {}, lastRole: {}, failedSince: {}, life: {}, activation: {}, episodes: {} };
}

/**
 * How long after its cause ends an excused overlap may last: the time to hear the peer
 * again, decide, and stop the app (graceful stop timeout included).
 */
export function graceMs(manifest: Manifest): number {
  const hb = manifest.cluster.heartbeat;
  const stopMax = Math.max(0, ...Object.values(manifest.apps).map((a) => a.stop.timeoutMs));
  return hb.deadAfterMs + 3 * hb.intervalMs + stopMax + 600;
}
/** Simulated milliseconds as seconds with three decimals (`12.345s`). */
export function fmtMs(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}
