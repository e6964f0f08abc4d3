/**
 * The agent: the drivers around the pure core. It turns the world into events (process
 * exits, check results, peer messages, timer ticks, operator requests), feeds them to
 * `step`, and carries out the actions in order. It holds no policy of its own.
 *
 * @module
 */
import { CheckScheduler } from "../checks/check_scheduler.ts";
import { nextDeadline } from "../core/deadline.ts";
import { readyWaitBoundMs } from "../core/ready_wait.ts";
import { initNodeState, nodeInfo } from "../core/node_state.ts";
import { step } from "../core/step.ts";
import type {
  Action,
  Command,
  DriverRecordKind,
  Event,
  NodeState,
  PersistedState,
  RecordKind,
} from "../core/types.ts";
import { EventLog, type EventSink } from "../store/event_log.ts";
import { type StateStorage, StateStore } from "../store/state_store.ts";
import { adoptRunning } from "./adopt.ts";
import { loadForReload } from "./reload.ts";
import { type Clock, realClock, realTimers, type Timers } from "./clock.ts";
import { PeerLink } from "./peer_link.ts";
import { errText } from "./effects.ts";
import { ActionExecutor } from "./executor.ts";
import type { StatusDoc } from "./status.ts";
import { agentStatus } from "./agent_status.ts";
import type { ReloadResult, Reply } from "../peer/api_types.ts";
import type { AgentOptions } from "./agent_options.ts";

export type { ReloadResult, Reply } from "../peer/api_types.ts";
export type { AgentOptions } from "./agent_options.ts";

/** One node's running agent. */
export class Agent {
  readonly state: NodeState;
  readonly events: EventSink;
  #opts: AgentOptions;
  #clock: Clock;
  #timers: Timers;
  #store: StateStorage;
  #checks: CheckScheduler;
  #link: PeerLink;
  /** Carries out the actions, behind their saves (executor.ts). */
  #exec: ActionExecutor;
  #pending = new Map<string, (r: Reply) => void>();
  #timer: unknown = null;
  /** Deadline-driven ticks (no `tickMs`): the pending tick and when it is due (core clock). */
  #adaptive = false;
  #tickTimer: unknown = null;
  #tickAt: number | null = null;
  /** Lateness of the tick timers (event-loop lag), in ms: worst since start, and the latest. */
  #lag = { maxMs: 0, lastMs: 0, lateTicks: 0 };
  #releaseLock: (() => void) | null = null;
  #log: (line: string) => void;
  #stopped = false;
  /** A step threw since the last {@linkcode Agent.cycle} began. */
  #stepFailed = false;

  /** Build the agent; nothing runs until {@linkcode Agent.start}. */
  constructor(opts: AgentOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
    const timers = this.#timers = opts.timers ?? realTimers;
    this.#log = opts.log ?? ((line) => console.error(line));
    this.state = initNodeState(opts.node, opts.manifest, opts.mode, this.#clock.now());
    this.#store = opts.store ?? new StateStore(opts.stateDir);
    this.events = opts.events ?? new EventLog(opts.stateDir);
    this.#checks = opts.checks ??
      new CheckScheduler(
        (r) => this.dispatch({ type: "check", app: r.app, pid: r.pid, ok: r.ok, detail: r.detail }),
        {
          timers: {
            now: () => this.#clock.now(),
            set: (fn, ms) => timers.set(fn, ms),
            clear: (h) => timers.clear(h),
          },
          ...(opts.runCheck ? { run: opts.runCheck } : {}),
        },
      );
    this.#link = new PeerLink(
      opts.node,
      () => this.state.manifest,
      opts.transport,
      (e) => this.dispatch(e),
      () => this.#clock.now(),
    );
    this.#exec = new ActionExecutor(this.#store, {
      state: this.state,
      opts,
      link: this.#link,
      checks: this.#checks,
      pending: this.#pending,
      dispatch: (e) => this.dispatch(e),
      record: (level, app, kind, message) => this.#record(level, app, kind, message),
    });
    opts.runner.onExit((exit) => {
      // Did the guard kill it? It notes its fence before its first kill: a lost lease, not an
      // app failure (the core steps down and takes the exit as an expected stop).
      opts.lease?.poll?.();
      // Timers first: an exit seen late (a paused agent, the guard fenced) must find the core
      // already fenced, not restart an app whose lease ran out.
      this.dispatch({ type: "tick" });
      this.dispatch({ type: "app_exited", app: exit.app, pid: exit.pid, detail: exit.detail });
    });
    opts.lease?.attach(
      (level, kind, message) => this.#record(level, null, kind, message),
      (detail) => this.dispatch({ type: "lease_lost", detail }),
    );
    opts.vip?.attach((level, kind, message) => this.#record(level, null, kind, message));
    opts.coordinator?.attach(
      (e) => this.dispatch(e),
      () => this.#clock.now(),
      (level, kind, message) => this.#record(level, null, kind, message),
    );
  }

  /**
   * Take the state directory, adopt the apps still running from before, and start the cycle.
   * Throws (and starts nothing) if the state directory is in use or its state is unreadable:
   * guessing could start a second copy of an app.
   */
  async start(): Promise<void> {
    this.#releaseLock = await this.#store.lock();
    const loaded = await this.#store.load();
    if (!loaded.ok) {
      this.#releaseLock();
      throw new Error(
        `${loaded.error}\nbaton will not guess which apps run here. Check the apps by hand, ` +
          `then move the file aside to start fresh.`,
      );
    }
    const persisted: PersistedState | null = loaded.state;
    if (persisted) this.#exec.setOnDisk(persisted.role, persisted.epoch);
    if (persisted && persisted.node !== this.#opts.node) {
      this.#releaseLock();
      throw new Error(
        `state directory ${this.#opts.stateDir} belongs to node "${persisted.node}", ` +
          `not "${this.#opts.node}"`,
      );
    }
    const { adopted, lost } = adoptRunning(
      this.#opts,
      persisted,
      (level, app, kind, message) => this.#record(level, app, kind, message),
    );
    const reboot = await (this.#opts.checkReboot?.() ?? Promise.resolve(null)).catch(() => null);
    const watchdog = this.#opts.watchdogFact ?? null;
    this.dispatch({
      type: "boot",
      persisted,
      adopted,
      lost,
      reboot,
      watchdog,
      incarnation: crypto.randomUUID(),
    });
    if (this.#opts.tickMs !== undefined) {
      const every = this.#opts.tickMs;
      const again = () => {
        this.#timer = this.#timers.set(again, every);
        this.dispatch({ type: "tick" });
      };
      this.#timer = this.#timers.set(again, every);
    } else {
      this.#adaptive = true;
    }
    this.dispatch({ type: "tick" });
  }

  /** Feed one event to the core and carry out what it decides. */
  dispatch(event: Event): void {
    if (this.#stopped) return;
    const now = this.#clock.now();
    let actions: Action[];
    try {
      ({ actions } = step(this.state, event, now));
    } catch (err) {
      // A bug in the core must not take the agent (and the lease it keeps) down with it.
      this.#stepFailed = true;
      this.#record("error", null, "internal_error", `${event.type}: ${errText(err)}`);
      if (this.#adaptive) this.#armTick(now, false);
      return;
    }
    this.#exec.execute(actions);
    this.#opts.lease?.observe(this.state, now, event, actions.length > 0);
    this.#opts.coordinator?.observe(this.state);
    if (!this.#adaptive) return;
    if (event.type === "tick") {
      this.#armTick(now, true);
    } else if (event.type !== "check" || actions.length > 0) {
      // The event may have made a timer's condition true (a peer back as a standby, a handover
      // announced): the core looks at once, with a tick at the same time.
      this.dispatch({ type: "tick" });
    } else {
      this.#armTick(now, false);
    }
  }

  /**
   * Arm the tick for the core's next deadline (at most {@linkcode IDLE_TICK_MAX_MS} away).
   * After a tick the timer is set anew; after another event it may only come earlier.
   */
  #armTick(now: number, afterTick: boolean): void {
    const wake = Math.min(nextDeadline(this.state, now), now + IDLE_TICK_MAX_MS);
    if (!afterTick && this.#tickAt !== null && this.#tickAt <= wake) return;
    if (this.#tickTimer !== null) this.#timers.clear(this.#tickTimer);
    // +1 ms: a timer never fires before its deadline, so the tick finds it due.
    const delay = Math.max(0, Math.ceil(wake - now)) + 1;
    const due = this.#clock.now() + delay;
    this.#tickAt = wake;
    this.#tickTimer = this.#timers.set(() => {
      this.#tickTimer = null;
      this.#tickAt = null;
      this.#noteLag(this.#clock.now() - due);
      this.dispatch({ type: "tick" });
    }, delay);
  }

  /** Record how late a tick timer fired; a lag beyond one heartbeat interval is an event. */
  #noteLag(lateMs: number): void {
    const lag = Math.max(0, lateMs);
    this.#lag.lastMs = lag;
    this.#lag.maxMs = Math.max(this.#lag.maxMs, lag);
    const interval = this.state.manifest.cluster.heartbeat.intervalMs;
    if (lag > interval) {
      this.#lag.lateTicks++;
      this.#record(
        "warn",
        null,
        "loop_lag",
        `the agent's event loop ran ${Math.round(lag)} ms late (heartbeat interval ` +
          `${interval} ms): the host is overloaded or the agent was paused`,
      );
    }
  }

  /**
   * One decision cycle on demand (a core tick): whether it completed without error. The
   * watchdog pets only after such a cycle (`watchdog.ts`).
   */
  cycle(): boolean {
    if (this.#stopped) return false;
    this.#stepFailed = false;
    this.dispatch({ type: "tick" });
    return !this.#stepFailed;
  }

  /** An event that expects a reply (operator commands, handover requests from a peer). */
  request(
    make: (id: string) => Event,
    // A switchover and a commit wait for the apps to be ready on the target (ready_wait.ts).
    timeoutMs = 120_000 + readyWaitBoundMs(this.state.manifest),
  ): Promise<Reply> {
    const id = crypto.randomUUID();
    return new Promise<Reply>((resolve) => {
      const timer = this.#timers.set(() => {
        this.#pending.delete(id);
        resolve({ status: 504, body: { ok: false, error: "no decision in time" } });
      }, timeoutMs);
      this.#pending.set(id, (r) => {
        this.#timers.clear(timer);
        resolve(r);
      });
      this.dispatch(make(id));
      if (this.#stopped) resolve({ status: 503, body: { ok: false, error: "agent stopping" } });
    });
  }

  /** Operator command through the core. */
  command(command: Command): Promise<Reply> {
    return this.request((id) => ({ type: "command", id, command }));
  }

  /** Re-read the manifest; an invalid one changes nothing. */
  async reload(): Promise<ReloadResult> {
    const { result, manifest } = await loadForReload(
      this.#opts,
      this.state,
      (level, app, kind, message) => this.#record(level, app, kind, message),
      this.#log,
    );
    if (manifest !== null) this.dispatch({ type: "manifest", manifest });
    return result;
  }

  /** The status document. */
  status(): StatusDoc {
    return agentStatus(
      this.state,
      this.#clock.now(),
      this.events.recent(20),
      this.#exec.persistError,
      this.#lag,
      this.#opts,
    );
  }

  /** What this node says about itself to peers. */
  info() {
    return nodeInfo(this.state);
  }

  /**
   * Stop the agent and leave every app running: a restarted agent adopts them. Waits for
   * queued actions (a pending state write) to finish.
   */
  async shutdown(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== null) this.#timers.clear(this.#timer);
    if (this.#tickTimer !== null) this.#timers.clear(this.#tickTimer);
    this.#checks.stopAll();
    this.#opts.runner.detachAll();
    this.#opts.lease?.close();
    this.#opts.vip?.close();
    await this.#opts.coordinator?.close();
    for (const resolve of this.#pending.values()) {
      resolve({ status: 503, body: { ok: false, error: "agent stopping" } });
    }
    this.#pending.clear();
    await this.#exec.drain();
    this.#releaseLock?.();
  }

  #record(
    level: "info" | "warn" | "error",
    app: string | null,
    kind: RecordKind,
    message: string,
  ) {
    const rec = {
      time: new Date(this.#clock.wallNow()).toISOString(),
      node: this.state.self,
      level,
      app,
      kind,
      message,
      epoch: this.state.epoch,
    };
    try {
      this.events.append(rec);
    } catch (err) {
      this.#log(`event log write failed: ${errText(err)}`);
    }
    this.#log(`${rec.time} ${rec.node} ${level.padEnd(5)} ${app ?? "-"} ${kind}: ${message}`);
    try {
      this.#opts.onRecord?.(rec);
    } catch (err) {
      this.#log(`event observer failed: ${errText(err)}`);
    }
  }

  /** Record an event that is no decision of the core (a notification not delivered). */
  note(
    level: "info" | "warn" | "error",
    app: string | null,
    kind: DriverRecordKind,
    message: string,
  ) {
    this.#record(level, app, kind, message);
  }
}

/** Longest sleep between ticks when no timer of the core is pending (a safety net). */
export const IDLE_TICK_MAX_MS = 5_000;
