/**
 * The documents of the node HTTP API (`peer_api.ts`): the status document that
 * `GET /v1/status` serves and `baton status --json` prints, the reply to a request that went
 * through the core, and what a reload found. Plain types, so the protocol, the views
 * (metrics, page, explain) and the CLI can name them without importing the agent that builds
 * them (`agent/status.ts`, `agent/agent.ts`).
 *
 * @module
 */
import type { EventRecord } from "../store/event_log.ts";

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
  /** A handover under way; `waitingFor` says what its current phase waits for. */
  handover: {
    kind: string;
    to: string;
    phase: string;
    reason: string;
    waitingFor: string;
    sinceMs: number;
  } | null;
  /**
   * An operator switchover waiting for its target to be seen as an available standby (the
   * handover starts as soon as it is, and the request is refused once `leftMs` reaches 0).
   */
  switchover: {
    to: string | null;
    waitingFor: string;
    sinceMs: number;
    leftMs: number;
  } | null;
  escalations: { app: string; reason: string | null }[];
  apps: AppStatus[];
  peers: PeerStatus[];
  witness: { url: string; reachable: boolean; kind: string | null; ageMs: number | null } | null;
  warnings: string[];
  /**
   * Survivor fences owed by this node's takeover: exit code, duration and a redacted first line
   * of the latest attempt, never the command or its output.
   */
  fencing?: {
    node: string;
    state: string;
    attempts: number;
    last: { exitCode: number | null; durationMs: number; firstLine: string } | null;
  }[];
  events: EventRecord[];
  /**
   * How late the agent's tick timers fired (event-loop lag, ms): the worst since the agent
   * started, the latest, and how many were later than one heartbeat interval. Filled in by the
   * agent (absent from a document built by `buildStatus` (agent/status.ts) alone).
   */
  eventLoop?: { maxLagMs: number; lastLagMs: number; lateTicks: number };
  /** The per-host guard holding the lease (filled in by the agent; absent without one). */
  guard?: Record<string, unknown>;
  /** Each floating IP (`cluster.vip`) and whether this node holds it (filled in by the agent). */
  vips?: { address: string; interface: string; held: boolean; error: string | null }[];
  /** etcd as the coordinator: reachability, the key's holder, lease time left (src/coord/). */
  coordinator?: Record<string, unknown>;
}

/** A reply to an operator or peer request that went through the core. */
export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** What reloading the manifest found. */
export type ReloadResult =
  | { ok: true; hash: string; warnings: string[] }
  | { ok: false; errors: string[] };
