/**
 * {@linkcode FakeProcessRunner}: the in-memory twin of the real runner, for tests of the agent.
 * Processes are entries in a table with fake PIDs; a test makes them crash, refuse to start or
 * ignore the stop signal, and reads back every call the agent made. Exits are reported
 * asynchronously (on a later microtask), like the real runner does.
 *
 * @example
 * ```ts
 * import type { ExitInfo } from "./process_runner.ts";
 * const runner = new FakeProcessRunner();
 * const exits: ExitInfo[] = [];
 * runner.onExit((e) => exits.push(e));
 * const { pid } = await runner.spawn({
 *   app: "web", command: ["web"], cwd: null, env: {}, logDir: "/tmp",
 * });
 * runner.crash("web", "exited with code 1");
 * await runner.settle(); // exits → [{ app: "web", pid, detail: "exited with code 1" }]
 * ```
 *
 * @module
 */
import type { Timers } from "../clock/clock.ts";
import type { ExitInfo, ProcessRunner, Spawned, SpawnSpec, StopOptions } from "./process_runner.ts";

/** One call the agent made on the fake, in order. */
export type FakeCall =
  | { type: "spawn"; spec: SpawnSpec }
  | { type: "adopt"; app: string; pid: number; startTime: number }
  | { type: "stop"; app: string; pid: number; options: StopOptions }
  | { type: "detachAll" };

/** A process in the fake's world. */
export interface FakeProcess {
  app: string | null;
  pid: number;
  startTime: number;
  alive: boolean;
  /** Ignores the graceful stop signal: only SIGKILL (after the timeout) ends it. */
  ignoresStopSignal: boolean;
  /** Spawned or adopted by the runner and not yet reported as exited. */
  watched: boolean;
}

/** Options of {@linkcode FakeProcessRunner}. */
export interface FakeRunnerOptions {
  /** First fake PID handed out (default 1000). */
  firstPid?: number;
  /** Timers of the graceful stop timeout (default: the real ones; the simulation's virtual). */
  timers?: Pick<Timers, "set">;
}

/**
 * In-memory {@linkcode ProcessRunner}. Test controls: {@linkcode FakeProcessRunner.crash},
 * {@linkcode FakeProcessRunner.failNextSpawn}, {@linkcode FakeProcessRunner.ignoreStopSignal},
 * {@linkcode FakeProcessRunner.startExternal}; observations: `calls`, `running()`,
 * {@linkcode FakeProcessRunner.isSameProcess}.
 *
 * @example
 * ```ts
 * const runner = new FakeProcessRunner();
 * runner.failNextSpawn("web", 'command "web" not found in PATH');
 * await runner.spawn({ app: "web", command: ["web"], cwd: null, env: {}, logDir: "/l" })
 *   .catch((e) => console.log(e.message));
 * ```
 */
export class FakeProcessRunner implements ProcessRunner {
  /** Every call made, in order. */
  readonly calls: FakeCall[] = [];
  /** Every exit reported through onExit, in order. */
  readonly exits: ExitInfo[] = [];
  readonly #processes = new Map<number, FakeProcess>();
  readonly #callbacks: Array<(exit: ExitInfo) => void> = [];
  readonly #spawnFailures = new Map<string, string[]>();
  readonly #ignoreStop = new Set<string>();
  readonly #pending = new Set<Promise<void>>();
  #nextPid: number;
  #timers: Pick<Timers, "set">;
  #clockTicks = 1;
  /** Bumped by detachAll: reports queued before it are dropped, as the real runner does. */
  #generation = 0;

  /** Creates an empty fake world. */
  constructor(options: FakeRunnerOptions = {}) {
    this.#nextPid = options.firstPid ?? 1000;
    this.#timers = options.timers ?? { set: (fn, ms) => setTimeout(fn, ms) };
  }

  /** {@inheritDoc ProcessRunner.spawn} */
  spawn(spec: SpawnSpec): Promise<Spawned> {
    this.calls.push({ type: "spawn", spec: structuredClone(spec) });
    const failures = this.#spawnFailures.get(spec.app);
    const failure = failures?.shift();
    if (failures !== undefined && failures.length === 0) this.#spawnFailures.delete(spec.app);
    if (failure !== undefined) {
      return Promise.reject(new Error(`cannot start app "${spec.app}": ${failure}`));
    }
    if (spec.command.length === 0) {
      return Promise.reject(
        new Error(`cannot start app "${spec.app}": expected a non-empty command, found []`),
      );
    }
    const proc = this.#create(spec.app);
    proc.watched = true;
    if (this.#ignoreStop.has(spec.app)) proc.ignoresStopSignal = true;
    return Promise.resolve({ pid: proc.pid, startTime: proc.startTime });
  }

  /** {@inheritDoc ProcessRunner.adopt} */
  adopt(app: string, pid: number, startTime: number): void {
    this.calls.push({ type: "adopt", app, pid, startTime });
    const proc = this.#processes.get(pid);
    if (proc !== undefined && proc.watched) return;
    if (proc !== undefined && proc.alive && proc.startTime === startTime) {
      proc.app = app;
      proc.watched = true;
      return;
    }
    // Nothing alive with that identity: the real runner's first poll reports the exit.
    const ghost: FakeProcess = {
      app,
      pid,
      startTime,
      alive: false,
      ignoresStopSignal: false,
      watched: true,
    };
    this.#report(ghost, "exited (adopted process: exit status unknown)");
  }

  /** {@inheritDoc ProcessRunner.stop} */
  async stop(app: string, pid: number, options: StopOptions): Promise<void> {
    this.calls.push({ type: "stop", app, pid, options: { ...options } });
    const proc = this.#processes.get(pid);
    if (proc === undefined || !proc.alive) return;
    if (options.mode === "graceful" && options.signal !== "SIGKILL") {
      if (!proc.ignoresStopSignal) {
        this.#end(proc, `killed by ${options.signal}`);
        return;
      }
      await new Promise<void>((resolve) => this.#timers.set(resolve, options.timeoutMs));
      if (!proc.alive) return;
    }
    this.#end(proc, "killed by SIGKILL");
  }

  /** {@inheritDoc ProcessRunner.onExit} */
  onExit(callback: (exit: ExitInfo) => void): void {
    this.#callbacks.push(callback);
  }

  /** {@inheritDoc ProcessRunner.detachAll} */
  detachAll(): void {
    this.calls.push({ type: "detachAll" });
    this.#generation++;
    for (const proc of this.#processes.values()) proc.watched = false;
  }

  // ---- test controls ----

  /**
   * Makes the live process of `app` die with `detail` (default "killed by SIGKILL"); its exit
   * is reported if it is watched. Throws if `app` has no live process.
   */
  crash(app: string, detail = "killed by SIGKILL"): void {
    const proc = this.#liveOf(app);
    if (proc === null) {
      throw new Error(`crash: expected a live process of app "${app}", found none`);
    }
    this.#end(proc, detail);
  }

  /** Kills a process by PID (as `kill -9` from outside would). Throws if no such live PID. */
  kill(pid: number, detail = "killed by SIGKILL"): void {
    const proc = this.#processes.get(pid);
    if (proc === undefined || !proc.alive) {
      throw new Error(`kill: expected a live process with pid ${pid}, found none`);
    }
    this.#end(proc, detail);
  }

  /** The next spawn of `app` rejects with `error` (calls queue up: one failure each). */
  failNextSpawn(app: string, error = "command not found"): void {
    const list = this.#spawnFailures.get(app) ?? [];
    list.push(error);
    this.#spawnFailures.set(app, list);
  }

  /** Processes of `app` (live and future) ignore the graceful stop signal. */
  ignoreStopSignal(app: string, ignore = true): void {
    if (ignore) this.#ignoreStop.add(app);
    else this.#ignoreStop.delete(app);
    for (const proc of this.#processes.values()) {
      if (proc.app === app && proc.alive) proc.ignoresStopSignal = ignore;
    }
  }

  /**
   * Creates a live process that this runner does not watch (e.g. left by a previous agent
   * life), to be adopted.
   */
  startExternal(app: string | null = null): Spawned {
    const proc = this.#create(app);
    return { pid: proc.pid, startTime: proc.startTime };
  }

  /** Fake twin of `isSameProcess` from proc.ts, for agents given an identity check. */
  isSameProcess(pid: number, startTime: number): boolean {
    const proc = this.#processes.get(pid);
    return proc !== undefined && proc.alive && proc.startTime === startTime;
  }

  /** Live processes, in PID order. */
  running(): FakeProcess[] {
    return [...this.#processes.values()].filter((p) => p.alive).map((p) => ({ ...p }));
  }

  /** The live process of `app`, or null. */
  processOf(app: string): FakeProcess | null {
    const proc = this.#liveOf(app);
    return proc === null ? null : { ...proc };
  }

  /** Resolves once every exit report queued so far was delivered. */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  #create(app: string | null): FakeProcess {
    const proc: FakeProcess = {
      app,
      pid: this.#nextPid++,
      startTime: this.#clockTicks++,
      alive: true,
      ignoresStopSignal: false,
      watched: false,
    };
    this.#processes.set(proc.pid, proc);
    return proc;
  }

  #liveOf(app: string): FakeProcess | null {
    for (const proc of this.#processes.values()) {
      if (proc.app === app && proc.alive) return proc;
    }
    return null;
  }

  #end(proc: FakeProcess, detail: string): void {
    proc.alive = false;
    if (proc.watched) this.#report(proc, detail);
  }

  #report(proc: FakeProcess, detail: string): void {
    proc.watched = false;
    const exit: ExitInfo = { app: proc.app ?? "", pid: proc.pid, detail };
    const generation = this.#generation;
    const delivery = Promise.resolve().then(() => {
      this.#pending.delete(delivery);
      if (generation !== this.#generation) return;
      this.exits.push(exit);
      for (const callback of this.#callbacks) {
        try {
          callback(exit);
        } catch (error) {
          reportError(error);
        }
      }
    });
    this.#pending.add(delivery);
  }
}
