/**
 * The simulated world around real agents: every node runs the production `Agent` over
 * in-memory twins bound to virtual time (`virtual_time.ts`): timers and clock, process table
 * (`FakeProcessRunner`), state directory (`MemoryStateStore`, `MemoryEventLog`), kill and
 * fence effects, and a peer transport that carries each request and reply over the simulated
 * network (`sim_network.ts`) into the receiving agent's own timers. The witness is the real
 * `WitnessArbiter`. Faults act on the world only (partitions, crashes, paused or dead agents,
 * slow or failing disks); the invariants (`invariants.ts`) are checked after every timer.
 *
 * @module
 */
import { Agent } from "../agent/agent.ts";
import type { PersistedState } from "../core/types.ts";
import type { Manifest } from "../manifest/types.ts";
import { MemoryEventLog, MemoryStateStore } from "../store/memory_store.ts";
import { WitnessArbiter } from "../witness/arbiter.ts";
import {
  checkLiveness,
  checkSpawn,
  checkWorld,
  type Monitor,
  newMonitor,
  type Violation,
  type WorldView,
} from "./invariants.ts";
import { buildManifest, type Scenario } from "./scenario.ts";
import { faultEnd, faultStart, heal, operatorRound } from "./sim_faults.ts";
import { simTransport } from "./sim_transport.ts";
import {
  type Incarnation,
  IncarnationRunner,
  newHost,
  type SimHost,
  trackSaves,
} from "./sim_host.ts";
import { mixSeed, type OneWayModel, Rng, SimNetwork } from "./sim_network.ts";
import { VirtualTime } from "./virtual_time.ts";
import { PersistedCache, worldView } from "./sim_view.ts";
import { probeDeadline } from "./sim_deadline.ts";
import { GuardLeaseDriver } from "../guard/lease_driver.ts";
import { guardGone, simGuardHost } from "./sim_guard.ts";

/** Options of one run. */
export interface RunOptions {
  /** Keep a trace of every record and world event. */
  trace?: boolean;
  /** Stop after this many timers (default 2,000,000). */
  maxSteps?: number;
  /** What a one-way partition stops (see `sim_network.ts`); default `"connection"`. */
  oneWay?: OneWayModel;
  /**
   * Every 10–50 ms, probe each running agent's core: a tick on a copy of its state before
   * `nextDeadline` must change nothing (invariant "deadline"). Off by default.
   */
  deadlineCheck?: boolean;
  /**
   * The guard twin never kills when a lease expires: baton as it was before the guard. Shows
   * that the single-runner invariant catches the duplicate window of a paused or dead agent.
   */
  noGuard?: boolean;
}

/** One line of a trace. */
export interface TraceLine {
  at: number;
  who: string;
  text: string;
  noise: boolean;
}

/** The outcome of one run. */
export interface SimResult {
  scenario: Scenario;
  /** Empty when every invariant held. */
  violations: Violation[];
  /** Timers run (each one followed by its microtasks and an invariant check). */
  steps: number;
  /** Same as `steps` (kept for the CLI summary). */
  coreSteps: number;
  endedAt: number;
  truncated: boolean;
  trace: TraceLine[] | null;
}

/** One seeded run over real agents. */
export class Simulation {
  readonly s: Scenario;
  readonly opts: RunOptions;
  readonly vt = new VirtualTime();
  readonly hosts: Record<string, SimHost> = {};
  readonly net: SimNetwork;
  readonly arbiter: WitnessArbiter;
  readonly monitor: Monitor = newMonitor();
  readonly rngProc: Rng;
  readonly rngMisc: Rng;
  /** Kill latencies of the guards (its own stream: the other draws stay as they were). */
  readonly rngGuard: Rng;
  readonly trace: TraceLine[] | null;
  manifest: Manifest;
  /** Manifest version the operator reloads next. */
  version = 1;
  #incs = 0;
  /** Host each window fault resolved to. */
  readonly resolved = new Map<number, string>();
  #parsed = new PersistedCache();
  violations: Violation[] = [];

  /** Whether the guard twins are disabled (`RunOptions.noGuard`). */
  get guardOff(): boolean {
    return this.opts.noGuard === true;
  }

  /** A world for `scenario`; nothing runs until {@linkcode Simulation.run}. */
  constructor(scenario: Scenario, opts: RunOptions = {}) {
    this.s = scenario;
    this.opts = opts;
    this.manifest = buildManifest(scenario);
    this.arbiter = new WitnessArbiter(this.manifest.cluster.heartbeat.deadAfterMs, 0);
    this.net = new SimNetwork(
      new Rng(mixSeed(scenario.seed, "net")),
      { lossRate: scenario.lossRate, spikeRate: scenario.spikeRate },
      opts.oneWay ?? "connection",
    );
    this.rngProc = new Rng(mixSeed(scenario.seed, "procs"));
    this.rngMisc = new Rng(mixSeed(scenario.seed, "misc"));
    this.rngGuard = new Rng(mixSeed(scenario.seed, "guard"));
    this.trace = opts.trace ? [] : null;
    scenario.nodes.forEach((name, i) => {
      this.hosts[name] = newHost(name, 1000 + 100_000 * i);
    });
  }

  /** Run to the end of the settle time or to the first violation. */
  async run(): Promise<SimResult> {
    const s = this.s;
    const vt = this.vt;
    s.faults.forEach((f, index) => {
      vt.set(() => faultStart(this, index), f.at);
      const until = "until" in f ? f.until : null;
      if (until !== null) vt.set(() => faultEnd(this, index), until);
    });
    vt.set(() => heal(this), s.faultMs);
    const end = s.faultMs + s.settleMs;
    for (let t = s.faultMs + 2_000; t <= end - 4_000; t += 2_000) {
      vt.set(() => operatorRound(this, false), t);
    }
    for (const h of Object.values(this.hosts)) this.startAgent(h, this.rngMisc.int(0, 200));
    if (this.opts.deadlineCheck) {
      const rng = new Rng(mixSeed(s.seed, "ticks"));
      const probe = () => {
        for (const h of Object.values(this.hosts)) {
          const v = this.violations.length === 0 ? probeDeadline(h, this.vt.now) : null;
          if (v) this.violations.push(v);
        }
        vt.set(probe, rng.int(10, 50));
      };
      vt.set(probe, 10);
    }
    const maxSteps = this.opts.maxSteps ?? 2_000_000;
    let steps = 0;
    let truncated = false;
    await vt.run(end, () => {
      steps++;
      if (this.violations.length === 0) this.check();
      if (steps >= maxSteps) truncated = true;
      return this.violations.length > 0 || truncated;
    });
    if (this.violations.length === 0 && !truncated) {
      const v = checkLiveness(this.view());
      this.violations.push(...v);
      this.world("end", v.length === 0 ? "settled: liveness holds" : "liveness FAILED");
    }
    for (const h of Object.values(this.hosts)) h.live?.group.kill();
    return {
      scenario: s,
      violations: this.violations,
      steps,
      coreSteps: steps,
      endedAt: vt.now,
      truncated,
      trace: this.trace,
    };
  }

  /** Check the world's invariants now. */
  check(): void {
    if (this.violations.length === 0) {
      this.violations.push(...checkWorld(this.monitor, this.view()));
    }
  }

  // ------------------------------------------------------------ agents

  /** Start a new agent process on `h` after `delay` (if the host is up and has none). */
  startAgent(h: SimHost, delay: number): void {
    this.vt.set(() => {
      if (!h.up || h.live) return;
      this.#boot(h);
    }, delay);
  }

  #boot(h: SimHost): void {
    const group = this.vt.group();
    const n = ++this.#incs;
    const inc: Incarnation = {
      n,
      agent: null as unknown as Agent,
      group,
      startedAt: this.vt.now,
      booted: false,
      runner: null as unknown as IncarnationRunner,
      saving: 0,
      saveFailed: false,
    };
    inc.runner = new IncarnationRunner(h, {
      before: (host, spec) => this.#beforeSpawn(host, spec.app, Number(spec.env.BATON_EPOCH)),
      after: (host, spec, sp) => this.#afterSpawn(host, spec.app, sp.pid),
    });
    const store = new MemoryStateStore(h.disk, {
      timers: group,
      policy: () => ({
        delayMs: h.slowWrites.length > 0 ? Math.max(...h.slowWrites) : this.rngProc.int(0, 3),
        error: h.failingWrites > 0 ? "EIO (simulated)" : null,
      }),
    });
    const tracked = trackSaves(inc, store);
    const rng = this.rngProc;
    inc.agent = new Agent({
      node: h.name,
      manifest: this.manifest,
      mode: "auto",
      stateDir: `/sim/${h.name}`,
      runner: inc.runner,
      transport: simTransport(this, h, inc),
      loadManifest: () => Promise.resolve({ ok: true, manifest: this.manifest, warnings: [] }),
      clock: group,
      timers: group,
      store: tracked,
      events: new MemoryEventLog(h.disk),
      log: this.trace ? (line) => this.#agentLine(h, line) : () => {},
      kill: (target) => {
        const pid = Math.abs(target);
        if (h.procs.running().some((p) => p.pid === pid)) h.procs.kill(pid);
      },
      fence: () =>
        new Promise((resolve) => {
          const kills = rng.chance(0.3);
          const ok = rng.chance(0.9);
          group.set(() => {
            if (kills) {
              this.world(h.name, "fence command powers the host off");
              this.killHost(h);
              return;
            }
            resolve({ ok, detail: ok ? "exit 0" : "exit 1" });
          }, rng.int(10, 200));
        }),
      // Survivor fencing: the target host loses power (back 1–4 s later), or the fence fails.
      fencePeer: ({ node }) =>
        new Promise((resolve) => {
          const ok = rng.chance(0.85);
          const took = rng.int(10, 300);
          group.set(() => {
            const target = this.hosts[node];
            if (ok && target) {
              this.world(h.name, `fence of ${node}: powers ${node} off`);
              this.killHost(target);
              this.vt.set(() => this.reviveHost(target), rng.int(1_000, 4_000));
            } else this.world(h.name, `fence of ${node} fails`);
            resolve({ ok, exitCode: ok ? 0 : 1, durationMs: took, firstLine: "" });
          }, took);
        }),
      runCheck: () =>
        new Promise((resolve) => {
          const failing = (h.checkFail.get("web") ?? 0) > 0;
          group.set(
            () =>
              resolve(
                failing ? { ok: false, detail: "HTTP 500 (simulated)" } : {
                  ok: true,
                  detail: "HTTP 200",
                },
              ),
            rng.int(1, 20),
          );
        }),
      findAppProcesses: () =>
        h.procs.running().flatMap((p) =>
          p.app === null ? [] : [{ app: p.app, pid: p.pid, startTime: p.startTime }]
        ),
      isSameProcess: (pid, startTime) => h.procs.isSameProcess(pid, startTime),
      // The real lease driver; only the guard process and its clock are the twin's.
      lease: new GuardLeaseDriver(null, simGuardHost(this, h, inc)),
    });
    h.live = inc;
    this.world(h.name, `agent starts (process ${n})`);
    inc.agent.start().then(
      () => {
        if (h.live === inc) inc.booted = true;
      },
      (err) => {
        this.violations.push({
          invariant: "core-threw",
          at: this.vt.now,
          message: `${h.name}: agent start failed: ${err instanceof Error ? err.stack : err}`,
        });
      },
    );
  }

  #beforeSpawn(h: SimHost, app: string, epoch: number): string | null {
    const v = checkSpawn(h.name, this.#persisted(h), { app, epoch }, this.manifest, this.vt.now);
    if (v) this.violations.push(v);
    h.procs.ignoreStopSignal(app, this.rngProc.chance(0.1));
    if (this.rngProc.chance(0.02)) {
      this.world(h.name, `spawn of ${app} fails`);
      return "exec failed (simulated)";
    }
    return null;
  }

  #afterSpawn(h: SimHost, app: string, pid: number): void {
    h.startedAt.set(pid, this.vt.now);
    this.world(h.name, `process ${app} pid ${pid} starts`);
    if (h.sick > 0 && this.manifest.apps[app]?.movable) {
      this.vt.set(
        () => this.crashPid(h, pid, "exited with code 1 (sick host)"),
        this.rngProc.int(50, 400),
      );
    }
  }

  /** Kill one process (if it still runs) with `detail`. */
  crashPid(h: SimHost, pid: number, detail: string): void {
    if (!h.procs.running().some((p) => p.pid === pid)) return;
    this.world(h.name, `process pid ${pid} ${detail}`);
    h.procs.kill(pid, detail);
  }

  /** The agent process of `h` dies (SIGKILL): its apps run on, unwatched. */
  killAgent(h: SimHost): void {
    const inc = h.live;
    if (!inc) return;
    inc.group.kill();
    h.procs.detachAll();
    h.disk.locked = false;
    h.live = null;
    h.agentBackAt = null;
    this.world(h.name, `agent process ${inc.n} dies; its apps keep running`);
  }

  /** The host loses power: agent and apps are gone, the network gets no answer. */
  killHost(h: SimHost): void {
    this.killAgent(h);
    for (const p of h.procs.running()) h.procs.kill(p.pid, "host lost power");
    guardGone(this, h);
    h.up = false;
    this.world(h.name, "host is down");
  }

  /** Power a dead host back on; its agent starts with the state directory it had. */
  reviveHost(h: SimHost): void {
    if (h.up) return;
    h.up = true;
    h.bootAt = this.vt.now;
    this.world(h.name, "host is back");
    this.startAgent(h, this.rngMisc.int(50, 300));
  }

  // ------------------------------------------------------------ views and traces

  #persisted(h: SimHost): PersistedState | null {
    return this.#parsed.get(h);
  }

  /** The world as the invariants read it. */
  view(): WorldView {
    return worldView(
      this.hosts,
      this.vt.now,
      this.manifest,
      this.s.witness,
      (h) => this.#persisted(h),
    );
  }

  /** A line of the world's own doing. */
  world(who: string, text: string): void {
    this.trace?.push({ at: this.vt.now, who, text, noise: false });
  }

  #agentLine(h: SimHost, line: string): void {
    // `<time> <node> <level> <app> <kind>: <message>`: the time and node are in the trace.
    const text = line.split(" ").slice(2).join(" ");
    this.trace?.push({ at: this.vt.now, who: h.name, text, noise: false });
  }
}
