/**
 * One simulated host: its process table (a {@linkcode FakeProcessRunner}, the world: apps
 * outlive their agent), its state directory (a {@linkcode MemoryDisk}), and per agent
 * process an {@linkcode Incarnation}: the real `Agent` over twins bound to that process's
 * timers, so a paused agent does nothing and a dead one never acts again.
 *
 * @module
 */
import type { Agent } from "../agent/agent.ts";
import type { TimerGroup } from "./virtual_time.ts";
import { FakeProcessRunner } from "../supervisor/fake_runner.ts";
import type {
  ExitInfo,
  ProcessRunner,
  Spawned,
  SpawnSpec,
  StopOptions,
} from "../supervisor/process_runner.ts";
import { type MemoryDisk, newMemoryDisk } from "../store/memory_store.ts";
import type { TimerHandle } from "../clock/clock.ts";
import type { PauseEdge } from "./scenario.ts";
import type { StateStorage } from "../store/state_store.ts";

/** The guard process of one simulated host. */
export interface SimGuard {
  pid: number;
  /** Lease deadline in the host's boot clock (ms), or null: disarmed. */
  deadline: number | null;
  /** Due expiry (world timer), or null. */
  timer: TimerHandle | null;
  targets: string[];
  /** Fences so far. */
  fenced: number;
  /** Told of each fence (the adopting agents' ports). */
  watchers: Set<() => void>;
}

/** One running (or paused) agent process. */
export interface Incarnation {
  n: number;
  agent: Agent;
  group: TimerGroup;
  /** Simulated time the process started. */
  startedAt: number;
  /** `start()` finished: the boot event went through the core. */
  booted: boolean;
  runner: IncarnationRunner;
  /** Saves started and not finished, and whether the latest finished one failed. */
  saving: number;
  saveFailed: boolean;
}

/** A simulated host. */
export interface SimHost {
  name: string;
  up: boolean;
  /** The process table; exits go to the live incarnation. */
  procs: FakeProcessRunner;
  /** Simulated start time of each pid. */
  startedAt: Map<number, number>;
  disk: MemoryDisk;
  live: Incarnation | null;
  clearedAt: number | null;
  agentBackAt: number | null;
  lastReceived: Record<string, number>;
  sick: number;
  checkFail: Map<string, number>;
  /** Write faults in force (counts of open windows) and the slowest delay. */
  slowWrites: number[];
  failingWrites: number;
  /** Simulated time the host last came up (its boot clock, the guard's, reads 0 then). */
  bootAt: number;
  /** The host's guard process (sim_guard.ts), or null: none started since it came up. */
  guard: SimGuard | null;
  /** Guards started on this host so far (their fake PIDs). */
  guardStarts: number;
  /** A pause waiting for the agent's next lease renewal (an `agent_pause` with `edge`). */
  pauseEdge: PauseEdge | null;
}

/** A host with nothing running and an empty state directory. */
export function newHost(name: string, firstPid: number): SimHost {
  const host: SimHost = {
    name,
    up: true,
    procs: null as unknown as FakeProcessRunner,
    startedAt: new Map(),
    disk: newMemoryDisk(),
    live: null,
    clearedAt: null,
    agentBackAt: null,
    lastReceived: {},
    sick: 0,
    checkFail: new Map(),
    slowWrites: [],
    failingWrites: 0,
    bootAt: 0,
    guard: null,
    guardStarts: 0,
    pauseEdge: null,
  };
  // The SIGKILL after a stop timeout is sent by the agent: it waits on the agent's timers.
  host.procs = new FakeProcessRunner({
    firstPid,
    timers: { set: (fn, ms) => host.live?.group.set(fn, ms) ?? null },
  });
  host.procs.onExit((exit) => {
    const inc = host.live;
    if (inc) inc.group.set(() => inc.runner.report(exit), 0);
  });
  return host;
}

/** What the simulation does around each spawn (invariant checks, injected failures). */
export interface SpawnHooks {
  /** Before the spawn: may return an error to fail it with. */
  before(host: SimHost, spec: SpawnSpec): string | null;
  /** After a process started. */
  after(host: SimHost, spec: SpawnSpec, spawned: Spawned): void;
}

/**
 * The {@linkcode ProcessRunner} one agent process sees: the host's process table, with exit
 * reports delivered through that process's timers (a paused agent sees them when it resumes,
 * a dead one never).
 */
export class IncarnationRunner implements ProcessRunner {
  readonly #host: SimHost;
  readonly #hooks: SpawnHooks;
  #callbacks: Array<(exit: ExitInfo) => void> = [];

  /** A view of `host`'s process table. */
  constructor(host: SimHost, hooks: SpawnHooks) {
    this.#host = host;
    this.#hooks = hooks;
  }

  /** {@inheritDoc ProcessRunner.spawn} */
  spawn(spec: SpawnSpec): Promise<Spawned> {
    const error = this.#hooks.before(this.#host, spec);
    if (error !== null) this.#host.procs.failNextSpawn(spec.app, error);
    return this.#host.procs.spawn(spec).then((s) => {
      this.#hooks.after(this.#host, spec, s);
      return s;
    });
  }

  /** {@inheritDoc ProcessRunner.adopt} */
  adopt(app: string, pid: number, startTime: number): void {
    this.#host.procs.adopt(app, pid, startTime);
  }

  /** {@inheritDoc ProcessRunner.stop} */
  stop(app: string, pid: number, options: StopOptions): Promise<void> {
    return this.#host.procs.stop(app, pid, options);
  }

  /** {@inheritDoc ProcessRunner.onExit} */
  onExit(callback: (exit: ExitInfo) => void): void {
    this.#callbacks.push(callback);
  }

  /** {@inheritDoc ProcessRunner.detachAll} */
  detachAll(): void {
    this.#host.procs.detachAll();
  }

  /** Deliver one exit to the agent. */
  report(exit: ExitInfo): void {
    for (const cb of this.#callbacks) cb(exit);
  }
}

/** `store`, counting the saves of `inc` in flight and whether the latest one failed. */
export function trackSaves(inc: Incarnation, store: StateStorage): StateStorage {
  return {
    load: () => store.load(),
    lock: () => store.lock(),
    save: (st) => {
      inc.saving++;
      return store.save(st).then(
        () => {
          inc.saving--;
          inc.saveFailed = false;
        },
        (err) => {
          inc.saving--;
          inc.saveFailed = true;
          throw err;
        },
      );
    },
  };
}
