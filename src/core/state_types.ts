/**
 * The core's state: a node's role and everything it knows (its apps, its peers, the witness,
 * handovers in flight) and the part of it that is persisted.
 *
 * @module
 */
import type { Manifest } from "../manifest/types.ts";
import type { ClusterSettings, HeldTimings } from "./settings_types.ts";

/** A node's role in the cluster. */
export type Role = "standby" | "active" | "failed";

/** How the node was told to start (`baton run --mode`). */
export type StartMode = "auto" | "active" | "standby";

/** Lifecycle of one app on this node. */
export type AppPhase = "stopped" | "starting" | "running" | "stopping" | "backoff";

/** Result of the latest interface check. */
export interface CheckResult {
  ok: boolean;
  at: number;
  detail: string;
}

/** How a process is stopped: the settings of the spec it was started from. */
export interface StopSettings {
  signal: Deno.Signal;
  timeoutMs: number;
}

/** Stop settings of a process whose spec is unknown. */
export const DEFAULT_STOP: StopSettings = { signal: "SIGTERM", timeoutMs: 10_000 };

/** Everything the core tracks about one app on this node. */
export interface AppState {
  name: string;
  phase: AppPhase;
  pid: number | null;
  /** Process start time from /proc (clock ticks since boot): with the PID, the identity. */
  startTime: number | null;
  /** Manifest hash of the spec the running process was started from. */
  specHash: string | null;
  /** When the current process started (core clock); null if unknown (adopted). */
  startedAt: number | null;
  /** Restarts counted in the current window (reset after `restart.window` of health). */
  restarts: number;
  /** Restarts since the agent started, never reset. */
  totalRestarts: number;
  lastFailureAt: number | null;
  lastFailure: string | null;
  backoffUntil: number | null;
  /** Next backoff delay once the app is escalated and nothing can take it. */
  backoffMs: number;
  consecutiveCheckFailures: number;
  lastCheck: CheckResult | null;
  /** The restarted app failed again inside the window: the host is suspect. */
  escalated: boolean;
  /** Why the current stop was requested; `restartAfterMs` delays the start after a failure. */
  stopping: { reason: string; restartAfterMs: number | null } | null;
  /** Stop settings of the spec the current process was started from (null: none runs). */
  stopWith: StopSettings | null;
}

/** What this node knows of a peer. */
export interface PeerState {
  name: string;
  /** Core-clock time we last heard from the peer (its heartbeat or its reply to ours). */
  lastHeardAt: number | null;
  /**
   * Send time of the latest exchange this node started that the peer answered: the peer heard
   * us at or after this time. Self-fencing counts from it, so a slow reply cannot make an
   * isolated active believe it was heard later than it was.
   */
  lastAckAt: number | null;
  role: Role | null;
  /** The peer's role counter with its role: a late message with an older one is ignored. */
  roleSeq: number;
  /** The nodes the peer said it hears. */
  hears: string[];
  /** Where the peer said it hands (or handed) its apps. */
  handoverTo: string | null;
  epoch: number;
  priority: number;
  maintenance: boolean;
  manifestHash: string | null;
  /** Error of the latest failed exchange, if the latest one failed. */
  lastError: string | null;
  /**
   * The peer's boot id (a restarted agent has a new one): its role counter and epoch start
   * afresh with it, so a node whose state was wiped is not ignored as stale.
   */
  incarnation: string | null;
  /** Earlier incarnations of the peer (latest last, a few): their late messages are stale. */
  retired: string[];
  /** The safety settings the peer advertised last (see `settings.ts`). */
  settings: ClusterSettings | null;
  /** Hash of our settings the peer said it has seen: it acknowledged them. */
  acked: string | null;
}

/** What the witness told us last. */
export interface WitnessState {
  /** Core-clock time of the last successful exchange with the witness. */
  lastOkAt: number | null;
  /** Send time of the latest beat the witness answered (see `PeerState.lastAckAt`). */
  lastAckAt: number | null;
  /**
   * For a baton witness: the freshest active it has heard (node, epoch, age at `lastOkAt`).
   * Null for a plain HTTP witness, which only proves reachability.
   */
  active: { node: string; epoch: number; ageMs: number } | null;
  /** The latest exchange with the witness failed (its failure is recorded once). */
  failing: boolean;
  /** Whether the witness is a baton witness (knows about actives) or only reachable. */
  kind: "baton" | "http" | null;
  /** Highest epoch a baton witness said it granted or heard: a floor for our next epoch. */
  maxEpoch: number;
}

/** A planned or forced move of every movable app from this node to a peer. */
export interface Handover {
  kind: "escalation" | "switchover";
  to: string;
  /** Epoch at the time the handover began. */
  epoch: number;
  reason: string;
  phase: "preparing" | "stopping" | "fencing" | "committing";
  startedAt: number;
  /** Operator request waiting for the outcome (switchover), if any. */
  requestId: string | null;
}

/**
 * An operator switchover waiting for its target to be seen as an available standby (for
 * example a node cleared a moment ago, whose next heartbeat has not arrived yet). It starts
 * the handover as soon as the target is available, or is refused at `until`.
 */
export interface PendingSwitchover {
  /** The operator request waiting for the outcome. */
  id: string;
  /** The requested target, or null for the best standby. */
  to: string | null;
  since: number;
  until: number;
}

/** A handover a peer announced to us, that we acknowledged. */
export interface ExpectedHandover {
  from: string;
  epoch: number;
  /** When the prepare arrived: only news of the sender heard after it counts. */
  since: number;
  until: number;
}

/** The durable part of the state, written to the state directory after every change. */
export interface PersistedState {
  version: 1;
  node: string;
  epoch: number;
  role: Role;
  /** Grows on every role change, so peers can order this node's messages within an epoch. */
  roleSeq: number;
  maintenance: boolean;
  failedReason: string | null;
  apps: Record<string, PersistedApp>;
}

/** Identity of one running app, as written to the state directory. */
export interface PersistedApp {
  pid: number;
  startTime: number;
  specHash: string;
  restarts: number;
}

/** A live process found at boot whose PID and start time match the persisted record. */
export interface AdoptedApp {
  app: string;
  pid: number;
  startTime: number;
  specHash: string;
  restarts: number;
}

/** The complete state of one node's core. */
export interface NodeState {
  self: string;
  manifest: Manifest;
  mode: StartMode;
  role: Role;
  /** Grows on every role change (persisted); see {@linkcode PersistedState.roleSeq}. */
  roleSeq: number;
  /** When a peer's role last changed in our view: a priority takeover waits for a stable view. */
  viewChangedAt: number;
  epoch: number;
  maintenance: boolean;
  failedReason: string | null;
  failedAt: number | null;
  /**
   * Until this time, a standby does not take over (it is learning the cluster after a boot or a
   * clock gap, or it just handed over).
   */
  quietUntil: number;
  /** Until this time (or until a peer is heard), a resumed active does not start missing movable apps. */
  bootUntil: number;
  /** When this node last became active (core clock); contact ages for self-fencing count from here. */
  activeSince: number | null;
  /** Whether any peer has been seen active since boot (`--mode standby` waits for one). */
  seenActive: boolean;
  /** Earliest time to retry a handover after a refused or failed one. */
  handoverRetryAt: number;
  /** A takeover waiting for the witness to grant it. */
  claiming: { epoch: number; reason: string; since: number } | null;
  /** Earliest time to record again that a takeover is held back (avoids flooding the log). */
  holdNoticeAt: number;
  lastHeartbeatAt: number | null;
  /** Time of the previous tick: a gap longer than `deadAfter` means this node was not running. */
  lastTickAt: number | null;
  lastWitnessCheckAt: number | null;
  apps: Record<string, AppState>;
  /** The check loop of each app the drivers run, by the pid it watches (started by actions). */
  checking: Record<string, number>;
  peers: Record<string, PeerState>;
  witness: WitnessState;
  handover: Handover | null;
  /** A switchover waiting for its target (see {@linkcode PendingSwitchover}). */
  switchoverWait: PendingSwitchover | null;
  expecting: ExpectedHandover | null;
  /** The peer this node last handed its apps to (until it is active again). */
  lastHandoverTo: string | null;
  /** Human sentence saying why the node is in its current role. */
  roleReason: string;
  /** Whether the watchdog device is open and petted (an input fact); null = not reported. */
  watchdogOk: boolean | null;
  /**
   * A resumed active that has not re-established its lease (see `resume.ts`): no movable app is
   * started, restarted or stopped meanwhile. `lost`: apps that died while the agent was away.
   */
  resume: {
    since: number;
    /** With a witness: the lease is lost if not re-established by then (`fenceAfter`). */
    until: number;
    lost: string[];
    reboot: boolean | null;
    /** Peers heard since the boot. */
    heard: string[];
    /** A baton witness answered a beat sent since the boot. */
    witnessOk: boolean;
  } | null;
  /** This boot's id, sent in heartbeats (see {@linkcode PeerState.incarnation}); "" = none. */
  incarnation: string;
  /**
   * False after a boot without persisted state in a cluster with peers, until a peer or a baton
   * witness has told us the cluster's epoch: until then this node takes no epoch (it could
   * reuse one it took before its state was lost).
   */
  epochFloorKnown: boolean;
  /**
   * Without a baton witness nothing else can tell a lone node without state the cluster's
   * epoch: after listening until this time it goes on, with a loud warning.
   */
  floorWaitUntil: number;
  /** Timings kept from before a reload until every peer acknowledged the new settings. */
  heldTimings: HeldTimings | null;
}
