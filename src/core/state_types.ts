/**
 * The core's state: a node's role and everything it knows (its apps, its peers, the witness,
 * handovers in flight) and the part of it that is persisted.
 *
 * @module
 */
import type { Manifest, VipSpec } from "../manifest/types.ts";
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
  /**
   * When the current process became ready (its check passed once, or it runs, for a `process`
   * check); null: not yet. Read only while `phase` is running (see `start_order.ts`).
   */
  readyAt?: number | null;
  /**
   * The pid of each app it depends on when this process was started (or adopted): a different
   * one means that dependency restarted, so this app restarts after it.
   */
  depPids?: Record<string, number | null> | null;
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
  /**
   * Whether the witness is a baton witness (knows about actives) or only reachable; `etcd`:
   * the etcd coordinator (`active` is the key's holder, its create revision the epoch).
   */
  kind: "baton" | "http" | "etcd" | null;
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
  /** Survivor fencing: nodes this active still owes a fence (absent: none). */
  fencing?: string[] | undefined;
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
  /**
   * Floating IPs this node ordered up and not down since (see `vip.ts`); null after a boot,
   * until the first order says what this node holds.
   */
  vipHeld: VipSpec[] | null;
  /** A handover commit answered once every movable app is ready here (see `ready_wait.ts`). */
  readyWait?: ReadyWait | null;
  /** Fencing by the survivor (`survivor_fence.ts`): fences owed and running. */
  fencing: FencingState;
}

// ---- survivor fencing (issue 10 item 3; src/core/survivor_fence.ts)

/** What a fence attempt told the driver: never the command line nor its full output. */
export interface FenceOutcome {
  ok: boolean;
  /** Exit code; null if it did not exit (timed out and killed, or could not start). */
  exitCode: number | null;
  durationMs: number;
  /** First line of its output, redacted (credentials, arguments) and bounded. */
  firstLine: string;
}

/** One node this node must fence before it starts the movable apps it took from it. */
export interface FenceJob {
  node: string;
  /** The epoch this node took over at: the fence belongs to that takeover. */
  epoch: number;
  phase: "waiting" | "running";
  /** Earliest time of the next attempt (after `fenceDelay`, or the retry delay). */
  due: number;
  attempts: number;
  since: number;
  last: FenceOutcome | null;
  /** How it ended: fenced (exit 0), confirmed (`baton fence-ok`), or tried (best-effort). */
  settled: "fenced" | "confirmed" | "tried" | null;
}

/** Survivor fencing state: a takeover that owes fences, and the fence jobs. */
export interface FencingState {
  /** Set when a standby decides to take over from a silent active; consumed on becoming active. */
  owed: { targets: string[]; reason: string; epoch: number } | null;
  jobs: FenceJob[];
}

/** The commit of a handover to this node, waiting for its movable apps to be ready. */
export interface ReadyWait {
  /** The commit request to answer. */
  id: string;
  from: string;
  since: number;
  /** The wait ends by this time whatever the apps do (the sender's request times out later). */
  until: number;
}
