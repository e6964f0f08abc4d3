/**
 * The normalized manifest: what the rest of baton consumes after the YAML has been parsed
 * and validated by `schema.ts`. Durations are milliseconds, defaults are filled in.
 *
 * @module
 */
import type { CoordinatorSpec } from "./coordinator.ts";
import type { GroupSpec } from "./groups.ts";

/** A check on one app. `process` watches presence only; the others call the app's interface. */
export type CheckSpec =
  | { type: "process" }
  | (CheckTiming & {
    type: "http";
    url: string;
    /** Accepted status codes; default any 2xx. */
    expectStatus: number[] | null;
    /** Substring the body must contain, if set. */
    expectBody: string | null;
  })
  | (CheckTiming & { type: "tcp"; host: string; port: number })
  | (CheckTiming & { type: "exec"; command: string[] });

/** Timing shared by the interface checks. */
export interface CheckTiming {
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures that make the app failed. */
  failures: number;
  /** Delay after start before the first check. Default 0: checks run from the first second. */
  initialDelayMs: number;
}

/** One supervised app. */
export interface AppSpec {
  name: string;
  command: string[];
  cwd: string | null;
  env: Record<string, string>;
  /** Movable apps run on the active node and move on failover; others run where they are. */
  movable: boolean;
  /** Nodes this app may run on; null means every node. */
  nodes: string[] | null;
  check: CheckSpec;
  restart: {
    /** Restarts allowed inside `windowMs` before the failure escalates. Default 1. */
    limit: number;
    windowMs: number;
    /** First delay of the capped exponential backoff used when nothing can take over. */
    backoffMs: number;
    backoffMaxMs: number;
  };
  stop: { signal: Deno.Signal; timeoutMs: number };
  // s3trust (issue 11 #4): who the app runs as, and what it inherits of the agent's environment.
  /** `user:`/`group:` resolved to ids; absent: the agent's own user. */
  runAs?: RunAs;
  /** `inheritEnv:` names of the agent's variables passed on (absent: none). */
  inheritEnv?: string[];
  /**
   * Apps that must be ready before this one starts (systemd's `Requires=` + `After=`): it
   * stops before them and restarts after them. Absent: none (the loader always fills it).
   */
  dependsOn?: string[];
  /** How long a switchover waits for this app to be ready on the target. Absent: 60 s. */
  readyTimeoutMs?: number;
  // --- s3proc (issue 13) ---
  /** Forking daemon: the pid file (absolute) whose PID baton follows; null: the command itself. */
  pidFile?: string | null;
  /** Resource limits (src/supervisor/limits.ts); absent: none. */
  limits?: AppLimits;
  /** Log rotation by the per-host log writer (src/logs/); absent: append to one file. */
  logs?: AppLogs;
  /** Stable hash of everything that needs a restart when it changes. */
  hash: string;
}

/** The user an app runs as (`apps.X.user` / `group`), resolved to ids at validation. */
export interface RunAs {
  uid: number;
  gid: number;
  /** User name (USER, LOGNAME), or the uid as text when it has no passwd entry. */
  name: string;
  /** Home directory (HOME); "/" when the user has no passwd entry. */
  home: string;
}

/** `limits:` of an app, normalized: bytes and counts; absent keys are not limited. */
export interface AppLimits {
  memoryBytes?: number;
  /** Relative CPU weight 1..10000 (100 = normal), as cgroup v2 `cpu.weight`. */
  cpuWeight?: number;
  tasks?: number;
  openFiles?: number;
}

/** `logs:` of an app: rotate `<app>.log` past `maxBytes`, keep `keep` rotated files. */
export interface AppLogs {
  maxBytes: number;
  keep: number;
}

/** One node of the cluster. */
export interface NodeSpec {
  name: string;
  url: string;
  priority: number;
  /** How many groups of movable apps it may run at once (issue 14); absent: no limit. */
  maxGroups?: number;
  /**
   * Survivor fencing: the command another node runs against this one when it takes over from
   * it (`{node}`, `{url}`, `{credentials}` substituted). Absent: this node is never fenced.
   */
  fence?: string[];
  /** Absolute path of the file `{credentials}` names (read by the fence command itself). */
  fenceCredentials?: string;
}

/** Survivor fencing policy (`cluster.fencing`, `fenceTimeout`, `fenceDelay`, `fenceRetry`). */
export interface FencingSpec {
  /** required: no takeover without a fence; best-effort: try, then go on; off: never fence. */
  mode: "required" | "best-effort" | "off";
  /** One attempt must exit 0 within this long. Default 30 s. */
  timeoutMs: number;
  /** Without an arbiter, the lower-priority node waits this long before it fences. Default 5 s. */
  delayMs: number;
  /** Delay between failed attempts (required). Default 5 s. */
  retryMs: number;
}

/** The witness: a third party both nodes can reach, used to break partitions. */
export interface WitnessSpec {
  url: string;
  /**
   * `baton`: a baton witness (`witness: URL`), whose signed replies arbitrate takeovers;
   * `http`: any HTTP server (`witness: { url, kind: http }`), which only proves reachability.
   */
  kind: "baton" | "http";
}

/** Kinds of notification a sink can ask for (`cluster.notify[].kinds`). */
export const NOTIFY_KINDS = [
  "restart",
  "escalation",
  "handover_started",
  "handover_done",
  "takeover",
  "self_fence",
  "fence_run",
  "fence_failed",
  "node_failed",
  "node_cleared",
  "peer_lost",
  "peer_back",
  "witness_lost",
  "witness_back",
  "manifest_mismatch",
  "maintenance_on",
  "maintenance_off",
  "flapping",
  "notify_failed",
  "vip_conflict",
] as const;

/** One kind of notification. */
export type NotifyKind = typeof NOTIFY_KINDS[number];

/** One notification sink under `cluster.notify`: a webhook or a command. */
export interface NotifySink {
  /** URL that gets one JSON POST per event (null for a command sink). */
  webhook: string | null;
  /** Command run once per event with `BATON_EVENT_*` variables (null for a webhook). */
  exec: string[] | null;
  /** File holding the key that signs webhook bodies (HMAC-SHA256); null: unsigned. */
  secretFile: string | null;
  /** Only these kinds; null: every kind. */
  kinds: NotifyKind[] | null;
  /** Lowest level delivered. */
  level: "info" | "warn" | "error";
  /** Bound of one delivery attempt. */
  timeoutMs: number;
}

/** One floating IP (`cluster.vip`), normalized: the address in canonical form. */
export interface VipSpec {
  /** Canonical address, as `ip -o addr` prints it. */
  address: string;
  prefix: number;
  family: 4 | 6;
  /** `address/prefix`. */
  cidr: string;
  interface: string;
}

/** The whole manifest, normalized. */
export interface Manifest {
  cluster: {
    name: string;
    secretFile: string | null;
    heartbeat: {
      intervalMs: number;
      deadAfterMs: number;
      /** An isolated active stops its movable apps after this long without peer or witness. */
      fenceAfterMs: number;
    };
    witness: WitnessSpec | null;
    /** Self-fencing: command run by an escalating host on itself once its apps are stopped. */
    fence: string[] | null;
    /** Survivor fencing (`nodes.X.fence`); absent: the defaults (see `survivor_fence.ts`). */
    fencing?: FencingSpec;
    /** A failed node becomes standby again after this long; null = only `baton clear`. */
    failedCooldownMs: number | null;
    tls: { cert: string; key: string; ca: string | null } | null;
    /** Where events are announced (`cluster.notify`); absent or empty: nowhere. */
    notify?: NotifySink[];
    /**
     * A watchdog device to pet while healthy: `automatic` uses it if it opens, `required`
     * refuses the active role without it. Absent = off.
     */
    watchdog?: { mode: "off" | "automatic" | "required"; device: string };
    /** Floating IPs the active holds while its movable apps may run (`cluster.vip`). */
    vip?: VipSpec[];
    /** etcd as the coordinator (`cluster.coordinator.etcd`), instead of a witness; absent: none. */
    coordinator?: CoordinatorSpec;
  };
  nodes: Record<string, NodeSpec>;
  apps: Record<string, AppSpec>;
  /**
   * Groups of movable apps (issue 14; `default` holds the movable apps outside every group),
   * sorted by name. Absent in hand-built manifests. Not acted on yet: see groups.ts.
   */
  groups?: GroupSpec[];
  /** Hash of the whole manifest as parsed; peers compare it. */
  hash: string;
  /** Absolute path of the file it was read from (for resolving relative paths). */
  path: string;
}
