/**
 * Types of the pure decision core: its state, the events it consumes and the actions it
 * emits. The core never reads a clock, touches a socket or spawns a process; drivers turn
 * the world into {@linkcode Event}s and carry out {@linkcode Action}s.
 *
 * Times inside the core are milliseconds on a monotonic clock supplied by the caller
 * (`now`), so a wall-clock jump cannot fire or delay a timer.
 *
 * The state types live in `state_types.ts` (re-exported here); this module holds the events,
 * commands, record kinds and actions.
 *
 * @module
 */
import type { AppSpec, CheckSpec, Manifest, VipSpec } from "../manifest/types.ts";
import type { ClusterSettings } from "./settings_types.ts";
import type { AdoptedApp, FenceOutcome, PersistedState, Role } from "./state_types.ts";

export { DEFAULT_STOP } from "./state_types.ts";
export type {
  AdoptedApp,
  AppPhase,
  AppState,
  CheckResult,
  ExpectedHandover,
  FenceJob,
  FenceOutcome,
  FencingState,
  Handover,
  NodeState,
  PeerState,
  PendingSwitchover,
  PersistedApp,
  PersistedState,
  ReadyWait,
  Role,
  StartMode,
  StopSettings,
  WitnessState,
} from "./state_types.ts";

/** The view of a node that peers exchange in heartbeats. */
export interface NodeInfo {
  node: string;
  role: Role;
  roleSeq: number;
  /** Peers this node heard within `deadAfter` (as of its last tick): lets a third node vouch. */
  hears: string[];
  /** The node this one is handing (or last handed) its apps to, so another standby that was
   * asked earlier knows the apps went elsewhere. */
  handoverTo?: string | undefined;
  epoch: number;
  priority: number;
  maintenance: boolean;
  manifestHash: string;
  /** The sender's boot id (random per agent start). */
  incarnation?: string | undefined;
  /** The sender's safety settings and the timings in force there. */
  settings?: ClusterSettings | undefined;
  /** Peer name → hash of that peer's settings the sender has received (acknowledgements). */
  seen?: Record<string, string> | undefined;
}

/** Operator commands handled by the core. */
export type Command =
  | { type: "switchover"; to: string | null }
  | { type: "maintenance"; on: boolean }
  | { type: "clear" }
  /** The operator confirms `node` is powered off (`baton fence-ok NODE`). */
  | { type: "fence_ok"; node: string };

/** Inputs of the core. */
export type Event =
  | {
    type: "boot";
    persisted: PersistedState | null;
    adopted: AdoptedApp[];
    /** Persisted apps whose process is gone (or was replaced by another PID owner). */
    lost: string[];
    /**
     * Whether the host rebooted since the agent last ran (its kernel boot id changed); null or
     * absent when unknown. A reboot kills every app: their loss is not their failure.
     */
    reboot?: boolean | null;
    /** Whether the watchdog device opened (only matters with `cluster.watchdog`). */
    watchdog?: boolean | null;
    /** A fresh id for this boot, chosen by the driver (random). */
    incarnation?: string;
  }
  /** The watchdog device became (un)available: a write failed, or it was reopened. */
  | { type: "watchdog"; ok: boolean; detail: string }
  | { type: "tick" }
  | { type: "manifest"; manifest: Manifest }
  | { type: "app_started"; app: string; pid: number; startTime: number; specHash: string }
  | { type: "app_start_failed"; app: string; error: string }
  | { type: "app_exited"; app: string; pid: number; detail: string }
  | { type: "check"; app: string; pid: number; ok: boolean; detail: string }
  /** `sentAt`: when we sent the heartbeat this answers; absent for a heartbeat we received. */
  | { type: "peer_info"; info: NodeInfo; sentAt?: number }
  | { type: "peer_unreachable"; node: string; error: string }
  | {
    type: "witness";
    ok: boolean;
    kind: "baton" | "http" | "etcd" | null;
    active: { node: string; epoch: number; ageMs: number } | null;
    error: string | null;
    /** When the beat this answers was sent. */
    sentAt?: number;
    /** Highest epoch the baton witness granted or heard. */
    maxEpoch?: number;
  }
  | { type: "takeover_prepare"; id: string; from: string; epoch: number; reason: string }
  | { type: "takeover_commit"; id: string; from: string; epoch: number; reason: string }
  | { type: "prepare_result"; to: string; ok: boolean; detail: string }
  /** `epoch`: the peer said it is now active at this epoch. */
  | {
    type: "commit_result";
    to: string;
    ok: boolean;
    detail: string;
    epoch?: number;
    /** The peer took over, but this movable app was not ready within its `readyTimeout`. */
    notReady?: string;
  }
  | { type: "fence_result"; ok: boolean; detail: string }
  /**
   * `epoch`: the epoch claimed (matches `claiming`); `granted`: the epoch the arbiter assigned
   * instead (etcd: the key's create revision), if it assigns one; `sentAt`: when the grant's
   * lease was requested (etcd), the earliest moment the new term's contact may count from.
   */
  | {
    type: "claim_result";
    epoch: number;
    ok: boolean;
    detail: string;
    granted?: number;
    sentAt?: number;
  }
  /** A fence of `node` (action `fence_peer`) finished. */
  | ({ type: "fence_peer_result"; node: string; attempt: number } & FenceOutcome)
  /** The guard fenced this node's movable apps (its lease ran out): the lease is lost. */
  | { type: "lease_lost"; detail: string }
  | { type: "command"; id: string; command: Command };

/** Kinds of the records the core emits (what happened, for filters and tests). */
export type CoreRecordKind =
  | "active"
  | "adopted"
  | "backoff"
  | "bad_epoch"
  | "boot"
  | "check_failed"
  | "check_ok"
  | "claim"
  | "claim_dropped"
  | "claim_outdated"
  | "claim_refused"
  | "clear"
  | "clock_gap"
  | "epoch_unknown"
  | "escalation"
  | "exited"
  | "expect_expired"
  | "failed"
  | "fence"
  | "fence_confirmed"
  | "fence_wait"
  | "handover"
  | "handover_commit"
  | "handover_done"
  | "handover_ready"
  | "handover_refused"
  | "history"
  | "hold"
  | "lease_lost"
  | "lease_resumed"
  | "maintenance"
  | "manifest_mismatch"
  | "not_ready"
  | "no_handover"
  | "peer_down"
  | "peer_restarted"
  | "peer_role"
  | "peer_up"
  | "prepare"
  | "prepare_refused"
  | "ready"
  | "reload"
  | "restart"
  | "resuming"
  | "settings_acked"
  | "standby"
  | "start_after_reboot"
  | "started"
  | "step_down"
  | "stopped"
  | "stray"
  | "switchover_refused"
  | "switchover_wait"
  | "watchdog"
  | "window_reset"
  | "witness_down"
  | "witness_up";

/** Kinds of the records the drivers write themselves (the agent around the core). */
export type DriverRecordKind =
  | "coordinator"
  | "flapping"
  | "guard"
  | "guard_error"
  | "guard_fenced"
  | "guard_replaced"
  | "internal_error"
  | "loop_lag"
  | "notify_failed"
  | "notify_reload"
  | "orphan_adopted"
  | "orphan_killed"
  | "persist_failed"
  | "reload_refused"
  | "stale_killed"
  | "stop_failed"
  | "vip_added"
  | "vip_conflict"
  | "vip_error"
  | "vip_removed";

/** Every kind of event record. */
export type RecordKind = CoreRecordKind | DriverRecordKind;

/** Severity of a recorded decision. */
export type Level = "info" | "warn" | "error";

/** Outputs of the core: data the drivers carry out, in order. */
export type Action =
  /** Start `spec` (everything the driver needs) under `epoch`. */
  | { type: "spawn"; app: string; epoch: number; spec: AppSpec }
  | {
    type: "stop";
    app: string;
    pid: number;
    /** graceful: stop signal, SIGKILL after the timeout. kill: SIGKILL at once (fencing). */
    mode: "graceful" | "kill";
    /** Graceful mode: the signal, then SIGKILL after `timeoutMs` (of the process's spec). */
    signal: Deno.Signal;
    timeoutMs: number;
    reason: string;
  }
  /** Start (or move to a new pid) the check loop of `app`. */
  | { type: "watch_check"; app: string; pid: number; check: CheckSpec }
  /** Stop the check loop of `app`. */
  | { type: "unwatch_check"; app: string }
  | { type: "persist"; state: PersistedState }
  | { type: "record"; level: Level; app: string | null; kind: CoreRecordKind; message: string }
  | { type: "heartbeat"; info: NodeInfo }
  | { type: "check_witness"; info: NodeInfo }
  /** Ask the baton witness to grant this node the active role at `info.epoch`. */
  | { type: "claim_witness"; info: NodeInfo }
  | { type: "send_prepare"; to: string; epoch: number; reason: string }
  | { type: "send_commit"; to: string; epoch: number; reason: string }
  | { type: "fence"; command: string[] }
  /** Run `node`'s fence command (from the manifest), bounded by `timeoutMs`. */
  | { type: "fence_peer"; node: string; attempt: number; timeoutMs: number }
  | { type: "reply"; id: string; status: number; body: Record<string, unknown> }
  /**
   * Floating IPs: add them (after the epoch is persisted, before a movable app starts) or remove
   * them (as soon as the movable apps stop). `adopt`: addresses already present were this node's
   * (a boot that resumes the active role); otherwise one already present is a conflict.
   */
  | { type: "vip"; op: "add" | "remove"; vips: VipSpec[]; adopt: boolean; reason: string };
