/**
 * {@linkcode GuardLeaseDriver}: the agent's side of the lease. After every step of the core it
 * works out the order for the guard ({@linkcode leaseOrder}, pure) and what the guard would
 * kill (the movable apps' cgroups, or their process groups), and passes both on. Renewing the
 * lease is nothing more: the core's self-fencing deadline moved forward, the guard is told.
 *
 * Talking to the guard process goes through a {@linkcode GuardHost}: the real one
 * ({@linkcode realGuardHost}: the bash guard over its FIFO, /proc/uptime) or the simulation's
 * twin (`src/sim/sim_guard.ts`), so the simulation runs this driver unchanged.
 *
 * @module
 */
import type { Event, NodeState } from "../core/types.ts";
import type { NodeCgroups } from "../supervisor/cgroup.ts";
import { type GuardLease, GuardProcess, type GuardReport, uptimeClock } from "./guard.ts";
import { type LeaseMemory, leaseOrder } from "./lease.ts";

/** The guard process as the driver sees it ({@linkcode GuardProcess} is the real one). */
export interface GuardPort {
  /** Adopt the guard a previous agent left (it keeps its lease), or start one; throws if none. */
  open(): void;
  /** The lease runs until `uptimeMs` of the host's monotonic boot clock. */
  arm(uptimeMs: number): void;
  /** No lease: the guard kills nothing. */
  disarm(): void;
  /** What to kill on expiry: `cg <dir>` and `pg <pgid> <starttime>` lines. */
  setTargets(lines: string[]): void;
  /** For status. */
  status(): { pid: number | null; lease: GuardLease; replaced: number; error: string | null };
  /** Stop watching; the guard keeps running with its lease. */
  close(): void;
}

/** Where the guard runs: whether it can, how to reach it, and the host's boot clock. */
export interface GuardHost {
  /** Null when a guard can run here, else why not (for status and the event log). */
  unavailable(): string | null;
  /** A port to this host's guard (not opened yet). */
  port(report: GuardReport): GuardPort;
  /** The host's boot clock (the guard's, in ms) at core time `now`. */
  toUptime(now: number): number;
}

/**
 * The real host: the bash guard in `dir` (guard_script.ts), /proc/uptime as its clock.
 *
 * @example
 * ```ts
 * const stateDir = "/var/lib/baton/alpha";
 * const lease = new GuardLeaseDriver(null, realGuardHost(`${stateDir}/guard`));
 * ```
 */
export function realGuardHost(dir: string): GuardHost {
  let toUptime: ((perfNow: number) => number) | null = null;
  return {
    unavailable: () =>
      GuardProcess.available()
        ? null
        : "no guard (bash not found): the apps are not stopped if the agent dies",
    port: (report) => new GuardProcess(dir, report),
    toUptime: (now) => (toUptime ??= uptimeClock())(now),
  };
}

/** What the agent calls; see {@linkcode GuardLeaseDriver}. */
export interface LeaseSink {
  /** Where to report what operators should see (the agent's event log). */
  attach(report: GuardReport): void;
  /** After every step: `changed` when the step acted (apps may have started or stopped). */
  observe(state: NodeState, now: number, event: Event, changed: boolean): void;
  /** For status. */
  status(): Record<string, unknown>;
  /** Agent shutdown: the guard keeps its lease. */
  close(): void;
}

/**
 * Feeds the node's guard from the core state. With {@linkcode realGuardHost} the core's `now`
 * must be `performance.now()`.
 *
 * @example
 * ```ts
 * import { Agent, type AgentOptions } from "../agent/agent.ts";
 * import type { NodeCgroups } from "../supervisor/cgroup.ts";
 * declare const options: AgentOptions;
 * declare const cgroups: NodeCgroups | null; // the runner's
 * const lease = new GuardLeaseDriver(cgroups, realGuardHost("/var/lib/baton/guard"));
 * const agent = new Agent({ ...options, lease });
 * ```
 */
export class GuardLeaseDriver implements LeaseSink {
  readonly #host: GuardHost;
  readonly #cgroups: NodeCgroups | null;
  #guard: GuardPort | null = null;
  #report: GuardReport = () => {};
  #memory: LeaseMemory = { bootActiveSince: null, maintenanceSince: null };
  #lastNow = 0;
  #error: string | null = null;

  /** `cgroups`: the node's app cgroups, if apps run in them; `host`: where the guard runs. */
  constructor(cgroups: NodeCgroups | null, host: GuardHost) {
    this.#host = host;
    this.#cgroups = cgroups;
  }

  /** {@inheritDoc LeaseSink.attach} */
  attach(report: GuardReport): void {
    this.#report = report;
  }

  /** {@inheritDoc LeaseSink.observe} */
  observe(state: NodeState, now: number, event: Event, changed: boolean): void {
    this.#lastNow = now;
    if (event.type === "boot") this.#boot(state, now);
    if (this.#guard === null) return;
    if (state.maintenance) this.#memory.maintenanceSince ??= now;
    else this.#memory.maintenanceSince = null;
    if (changed || event.type === "boot" || event.type === "manifest") {
      this.#guard.setTargets(_targets(state, this.#cgroups));
    }
    const order = leaseOrder(state, this.#memory);
    if (order === null) return;
    if (order.kind === "arm") this.#guard.arm(this.#host.toUptime(order.deadline));
    else this.#guard.disarm();
  }

  /** {@inheritDoc LeaseSink.status} */
  status(): Record<string, unknown> {
    if (this.#guard === null) return { running: false, error: this.#error };
    const s = this.#guard.status();
    const nowUptime = this.#host.toUptime(this.#lastNow);
    return {
      running: true,
      pid: s.pid,
      lease: s.lease.kind,
      expiresInMs: s.lease.kind === "armed" ? Math.round(s.lease.uptimeMs - nowUptime) : null,
      replaced: s.replaced,
      error: s.error,
    };
  }

  /** {@inheritDoc LeaseSink.close} */
  close(): void {
    this.#guard?.close();
  }

  #boot(state: NodeState, now: number): void {
    this.#memory.bootActiveSince = state.activeSince;
    // Entered before the restart: the peers must hear it again from this agent.
    this.#memory.maintenanceSince = state.maintenance ? now : null;
    // A one-node cluster has no lease: a dead agent leaves its apps running, as under systemd.
    if (Object.keys(state.peers).length === 0) return;
    const unavailable = this.#host.unavailable();
    if (unavailable !== null) {
      this.#error = unavailable;
      this.#report("error", "guard_error", this.#error);
      return;
    }
    const guard = this.#host.port(this.#report);
    try {
      guard.open();
      this.#guard = guard;
    } catch (error) {
      this.#error = `no guard: ${error instanceof Error ? error.message : String(error)}`;
      this.#report("error", "guard_error", this.#error);
    }
  }
}

/** Targets of the guard: every movable app's cgroup, and the process group of each running one. */
function _targets(state: NodeState, cgroups: NodeCgroups | null): string[] {
  const lines: string[] = [];
  for (const spec of Object.values(state.manifest.apps)) {
    if (!spec.movable) continue;
    if (cgroups !== null) lines.push(`cg ${cgroups.dir}/${spec.name}`);
    const app = state.apps[spec.name];
    if (app?.pid != null && app.startTime != null) lines.push(`pg ${app.pid} ${app.startTime}`);
  }
  return lines;
}
