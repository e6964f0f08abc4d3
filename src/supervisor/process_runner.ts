/**
 * The process supervisor interface: the only way the agent starts, watches and stops app
 * processes. {@linkcode RealProcessRunner} (real_runner.ts) does it with real processes,
 * {@linkcode FakeProcessRunner} (fake_runner.ts) is its in-memory twin for tests.
 *
 * @example
 * ```ts
 * import { RealProcessRunner } from "./real_runner.ts";
 * const runner: ProcessRunner = new RealProcessRunner();
 * runner.onExit((exit) => console.log(exit.app, exit.detail));
 * const { pid } = await runner.spawn({
 *   app: "web", command: ["sleep", "30"], cwd: null, env: {}, logDir: "/var/log/baton",
 * });
 * await runner.stop("web", pid, { signal: "SIGTERM", timeoutMs: 10_000, mode: "graceful" });
 * ```
 *
 * @module
 */
import type { AppLimits, AppLogs } from "../manifest/types.ts";
import type { NodeCgroups } from "./cgroup.ts";
import type { RunAs } from "../manifest/types.ts";
import type { SpawnLedger } from "./spawn_token.ts";

/** What to start. */
export interface SpawnSpec {
  app: string;
  /** argv; `command[0]` is looked up in PATH (the spec's `env.PATH` if set) unless it has a `/`. */
  command: string[];
  /** Working directory; null = the agent's. */
  cwd: string | null;
  /**
   * Variables set for the app, on top of a clean environment (app_env.ts: PATH, LANG, LC_*,
   * TZ, HOME/USER/LOGNAME of its user and `inheritEnv`); never the agent's whole environment.
   */
  env: Record<string, string>;
  /** Names of the agent's variables passed on as well (`apps.X.inheritEnv`). */
  inheritEnv?: string[];
  /** User and group to run as, privileges dropped before exec (absent: the agent's). */
  runAs?: RunAs;
  /** stdout and stderr are appended to `${logDir}/${app}.log`. */
  logDir: string;
  // --- s3proc: forking daemons, limits, logs (pid_file.ts, limits.ts, src/logs/) ---
  /** Forking daemon: follow the PID it writes to this file (absolute path), not the command. */
  pidFile?: string | null;
  /** Resource limits (limits.ts). */
  limits?: AppLimits;
  /** Rotated logs through the per-host log writer (src/logs/) instead of a plain append. */
  logs?: AppLogs;
}

/** A started process: PID plus /proc start time, its identity. */
export interface Spawned {
  pid: number;
  /**
   * /proc start time (clock ticks since boot). 0 if the process was already gone before it
   * could be read; its exit is reported through `onExit` as usual.
   */
  startTime: number;
}

/** A watched process ended. */
export interface ExitInfo {
  app: string;
  pid: number;
  /** e.g. "exited with code 1", "killed by SIGKILL". */
  detail: string;
}

/** How to stop an app. */
export interface StopOptions {
  /** Signal sent to the process group in graceful mode. */
  signal: Deno.Signal;
  /** Graceful mode: how long to wait for the leader before SIGKILL to the group. */
  timeoutMs: number;
  /** graceful: `signal`, then SIGKILL after `timeoutMs`. kill: SIGKILL at once (fencing). */
  mode: "graceful" | "kill";
  /** Recorded start time of `pid`: a PID that is not watched is signalled only if it matches. */
  startTime?: number;
}

/** Starts, watches and stops app processes (real or in-memory). */
export interface ProcessRunner {
  /**
   * Start the app in its own process group, stdout+stderr appended to `${logDir}/${app}.log`.
   * Rejects with a clear Error if the command cannot be started (e.g. not found).
   */
  spawn(spec: SpawnSpec): Promise<Spawned>;
  /**
   * Watch a process we did not spawn in this agent's life (adopted after an agent restart);
   * its exit is reported by polling /proc.
   */
  adopt(
    app: string,
    pid: number,
    startTime: number,
    extras?: Pick<SpawnSpec, "limits" | "logs" | "pidFile">,
  ): void;
  /**
   * Stop the app's whole process group: graceful = signal to the group, SIGKILL to the group
   * after timeoutMs if the leader is still alive; kill = SIGKILL at once. Resolves once the
   * leader is gone (exited or zombie); then SIGKILLs the group to clear stragglers. Never
   * throws for an already-dead process. The exit is ALSO reported through onExit.
   */
  stop(app: string, pid: number, options: StopOptions): Promise<void>;
  /**
   * Called exactly once per watched process (spawned or adopted) when it exits, after any
   * stragglers left in its process group were SIGKILLed (a restart never finds a duplicate
   * holding its port).
   */
  onExit(callback: (exit: ExitInfo) => void): void;
  /** Stop watching everything without touching the processes (agent shutdown). */
  detachAll(): void;
  /** The spawn tokens recorded before each spawn (adoption proves a process by its token). */
  readonly spawnLedger?: SpawnLedger | null;
  /** This node's app cgroups, if apps run in cgroups (adoption proves membership). */
  readonly cgroups?: NodeCgroups | null;
  /** How the whole tree of a watched process is reached (status); null if not watched. */
  containment?(pid: number): Containment | null;
  /** The limits of a watched process and how each is applied (status); null if none. */
  limitsOf?(pid: number): string | null;
  /**
   * After adoption at start: kill and remove what is left of apps not in `adopted` (their
   * cgroups hold only processes that outlived their app). Returns those apps' names.
   */
  cleanStale?(adopted: string[]): string[];
}

/** How an app's whole tree is reached: its cgroup, its process group, or only its PID. */
export type Containment = "cgroup" | "process group" | "pid";

/**
 * Formats a child's exit status the way every runner reports it.
 *
 * @example
 * ```ts
 * exitDetail({ code: 1, signal: null }); // "exited with code 1"
 * exitDetail({ code: 137, signal: "SIGKILL" }); // "killed by SIGKILL"
 * ```
 */
export function exitDetail(status: { code: number; signal: Deno.Signal | null }): string {
  return status.signal !== null ? `killed by ${status.signal}` : `exited with code ${status.code}`;
}
