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
import { nextDeadline } from "../core/deadline.ts";
import { step } from "../core/step.ts";
import type { NodeState } from "../core/types.ts";
import type { PeerTransport } from "../agent/peer_link.ts";
import type { Command, NodeInfo, PersistedState } from "../core/types.ts";
import type { Manifest } from "../manifest/types.ts";
import { PeerError } from "../peer/client.ts";
import { MemoryEventLog, MemoryStateStore } from "../store/memory_store.ts";
import { parseState } from "../store/state_store.ts";
import { WitnessArbiter } from "../witness/arbiter.ts";
import {
  checkLiveness,
  checkSpawn,
  checkWorld,
  type Monitor,
  newMonitor,
  type ProcView,
  type Violation,
  type WorldView,
} from "./invariants.ts";
import { buildManifest, type Fault, type Scenario, WITNESS } from "./scenario.ts";
import { type Incarnation, IncarnationRunner, newHost, type SimHost } from "./sim_host.ts";
import { mixSeed, type OneWayModel, Rng, SimNetwork } from "./sim_network.ts";
import { VirtualTime } from "./virtual_time.ts";

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
  readonly trace: TraceLine[] | null;
  manifest: Manifest;
  #version = 1;
  #incs = 0;
  #resolved = new Map<number, string>();
  #parsed = new Map<string, { text: string | null; state: PersistedState | null }>();
  violations: Violation[] = [];

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
      vt.set(() => this.#faultStart(index), f.at);
      const until = "until" in f ? f.until : null;
      if (until !== null) vt.set(() => this.#faultEnd(index), until);
    });
    vt.set(() => this.#heal(), s.faultMs);
    const end = s.faultMs + s.settleMs;
    for (let t = s.faultMs + 2_000; t <= end - 4_000; t += 2_000) {
      vt.set(() => this.#operatorRound(false), t);
    }
    for (const h of Object.values(this.hosts)) this.startAgent(h, this.rngMisc.int(0, 200));
    if (this.opts.deadlineCheck) {
      const rng = new Rng(mixSeed(s.seed, "ticks"));
      const probe = () => {
        for (const h of Object.values(this.hosts)) this.#probeDeadline(h);
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

  /** A tick before the core's next deadline must do nothing (on a copy of the state). */
  #probeDeadline(h: SimHost): void {
    const inc = h.live;
    if (!inc?.booted || inc.group.frozen || this.violations.length > 0) return;
    const local = inc.group.now();
    const state = inc.agent.state;
    // The deadline as of the agent's latest tick (a deadline exactly at a time counts from
    // before it): the agent sleeps until then.
    const due = nextDeadline(state, state.lastTickAt ?? local);
    if (due <= local) return;
    const copy = structuredClone(state);
    const before = _decisionState(copy);
    const { actions } = step(copy, { type: "tick" }, local);
    if (actions.length > 0 || _decisionState(copy) !== before) {
      this.violations.push({
        invariant: "deadline",
        at: this.vt.now,
        message:
          `${h.name}: a tick at ${local} (last tick ${state.lastTickAt}, beat ${state.lastHeartbeatAt}) before nextDeadline ${due} acted: ${
            actions.map((a) => a.type === "record" ? `${a.kind}: ${a.message}` : a.type).join(
              "; ",
            ) ||
            "changed the state"
          }`,
      });
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
    const tracked = {
      load: () => store.load(),
      lock: () => store.lock(),
      save: (st: PersistedState) => {
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
    const rng = this.rngProc;
    inc.agent = new Agent({
      node: h.name,
      manifest: this.manifest,
      mode: "auto",
      stateDir: `/sim/${h.name}`,
      runner: inc.runner,
      transport: this.#transport(h, inc),
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
        () => this.#crashPid(h, pid, "exited with code 1 (sick host)"),
        this.rngProc.int(50, 400),
      );
    }
  }

  #crashPid(h: SimHost, pid: number, detail: string): void {
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
    h.up = false;
    this.world(h.name, "host is down");
  }

  /** Power a dead host back on; its agent starts with the state directory it had. */
  reviveHost(h: SimHost): void {
    if (h.up) return;
    h.up = true;
    this.world(h.name, "host is back");
    this.startAgent(h, this.rngMisc.int(50, 300));
  }

  // ------------------------------------------------------------ network

  #transport(h: SimHost, inc: Incarnation): PeerTransport {
    return {
      post: <T>(baseUrl: string, path: string, body: unknown, timeoutMs = 10_000): Promise<T> =>
        new Promise<T>((resolve, reject) => {
          const to = new URL(baseUrl).hostname;
          let done = false;
          const timer = inc.group.set(() => {
            if (done) return;
            done = true;
            reject(new PeerError(0, `${to}: timed out after ${timeoutMs}ms`));
          }, timeoutMs);
          const reply = (ok: boolean, value: unknown, heard: boolean) => {
            const d = this.net.transmitReply(to, h.name);
            if (d === null) return;
            inc.group.set(() => {
              if (done) return;
              done = true;
              inc.group.clear(timer);
              if (heard && h.live === inc) h.lastReceived[to] = this.vt.now;
              if (ok) resolve(value as T);
              else reject(value);
            }, d);
          };
          const d = this.net.transmit(h.name, to);
          if (d === null) return;
          const json = JSON.stringify(body);
          this.vt.set(() => this.#arrive(h.name, to, path, JSON.parse(json), reply), d);
        }),
    };
  }

  #arrive(
    from: string,
    to: string,
    path: string,
    body: Record<string, unknown>,
    reply: (ok: boolean, value: unknown, heard: boolean) => void,
  ): void {
    if (to === WITNESS) return this.#witness(from, path, body, reply);
    const t = this.hosts[to];
    if (!t || !t.up) return;
    const inc = t.live;
    if (!inc || !inc.booted) {
      reply(false, new PeerError(0, `${to}: connection refused`), false);
      return;
    }
    inc.group.set(() => {
      t.lastReceived[from] = this.vt.now;
      const agent = inc.agent;
      if (path === "/v1/heartbeat") {
        agent.dispatch({ type: "peer_info", info: body as unknown as NodeInfo });
        reply(true, agent.info(), true);
        return;
      }
      const phase = path === "/v1/takeover/prepare" ? "prepare" : "commit";
      const { epoch, reason } = body as { epoch: number; reason: string };
      agent.request((id) => ({ type: `takeover_${phase}`, id, from, epoch, reason }))
        .then((r) => {
          if (r.status < 300) reply(true, r.body, true);
          else {reply(
              false,
              new PeerError(r.status, `HTTP ${r.status}: ${String(r.body.error)}`),
              true,
            );}
        });
    }, 0);
  }

  #witness(
    from: string,
    path: string,
    body: Record<string, unknown>,
    reply: (ok: boolean, value: unknown, heard: boolean) => void,
  ): void {
    if (this.s.witness !== "baton") {
      reply(false, new PeerError(404, "not found"), false);
      return;
    }
    const now = this.vt.now;
    const { node, role, epoch } = body as { node: string; role: "active"; epoch: number };
    if (node !== from) return reply(false, new PeerError(400, "signer mismatch"), false);
    if (path.endsWith("/beat")) {
      this.arbiter.beat(node, role, epoch, now);
      reply(
        true,
        { ok: true, witness: "baton", nodes: {}, active: this.arbiter.active(now) },
        false,
      );
      return;
    }
    const decision = this.arbiter.claim(node, epoch, now);
    this.world(
      WITNESS,
      `claim of ${node} for epoch ${epoch}: ${
        decision.granted ? "granted" : "refused"
      } (${decision.reason})`,
    );
    reply(
      true,
      { witness: "baton", nodes: {}, active: this.arbiter.active(now), ...decision },
      false,
    );
  }

  // ------------------------------------------------------------ faults

  #target(t: string): SimHost | null {
    if (t === "standby") {
      const act = this.#target("active");
      return this.hosts[this.s.nodes.find((n) => n !== act?.name) ?? ""] ?? null;
    }
    if (t !== "active") return this.hosts[t] ?? null;
    for (const name of this.s.nodes) {
      const h = this.hosts[name];
      if (h?.live?.booted && h.live.agent.state.role === "active") return h;
    }
    return this.s.nodes.map((n) => this.hosts[n]!).find((h) => h.up) ?? null;
  }

  #faultStart(index: number): void {
    const f = this.s.faults[index];
    if (!f) return;
    if (f.kind === "partition") {
      this.world("net", `partition ${f.label} starts`);
      for (const [a, b] of f.links) this.net.block(a, b);
      return;
    }
    if (f.kind === "witness_restart") {
      this.world(WITNESS, "witness restarts: forgets every beat, listens for a lease");
      this.arbiter.restart(this.vt.now);
      return;
    }
    const h = this.#target(f.host);
    if (!h) return;
    this.#resolved.set(index, h.name);
    this.#applyStart(h, f);
  }

  #applyStart(h: SimHost, f: Exclude<Fault, { kind: "partition" | "witness_restart" }>): void {
    switch (f.kind) {
      case "app_crash": {
        const p = h.procs.running().find((x) => x.app === f.app);
        this.world(h.name, `fault: crash ${f.app}${p ? ` pid ${p.pid}` : " (not running)"}`);
        if (p) h.procs.kill(p.pid, "exited with code 1 (crash)");
        return;
      }
      case "check_fail":
        this.world(h.name, `fault: checks of ${f.app} start failing`);
        h.checkFail.set(f.app, (h.checkFail.get(f.app) ?? 0) + 1);
        return;
      case "sick_host":
        this.world(h.name, "fault: host turns sick (movable apps crash soon after start)");
        h.sick++;
        for (const p of h.procs.running()) {
          if (p.app && this.manifest.apps[p.app]?.movable) {
            const pid = p.pid;
            this.vt.set(
              () => this.#crashPid(h, pid, "exited with code 1 (sick host)"),
              this.rngProc.int(10, 300),
            );
          }
        }
        return;
      case "agent_crash":
        if (h.up) this.killAgent(h);
        return;
      case "agent_pause":
        if (h.live) {
          this.world(h.name, "fault: agent paused (SIGSTOP); its apps keep running");
          h.live.group.freeze();
        }
        return;
      case "reboot":
      case "host_death":
        this.killHost(h);
        return;
      case "slow_disk":
        this.world(h.name, `fault: state writes take ${f.delayMs} ms`);
        h.slowWrites.push(f.delayMs);
        return;
      case "failing_disk":
        this.world(h.name, "fault: state writes fail");
        h.failingWrites++;
        return;
      case "reload":
        return this.#reload(h, f.spec);
      case "maintenance":
        return this.command(h, { type: "maintenance", on: true });
      case "command":
        return this.command(h, f.command);
      case "rogue_process": {
        const sp = h.procs.startExternal(f.app);
        h.startedAt.set(sp.pid, this.vt.now);
        this.world(h.name, `fault: someone starts ${f.app} by hand (pid ${sp.pid})`);
        return;
      }
    }
  }

  #faultEnd(index: number): void {
    const f = this.s.faults[index];
    if (!f) return;
    if (f.kind === "partition") {
      this.world("net", `partition ${f.label} heals`);
      for (const [a, b] of f.links) this.net.unblock(a, b);
      return;
    }
    const h = this.hosts[this.#resolved.get(index) ?? ""];
    if (!h) return;
    switch (f.kind) {
      case "check_fail":
        h.checkFail.set(f.app, Math.max(0, (h.checkFail.get(f.app) ?? 0) - 1));
        return;
      case "sick_host":
        h.sick = Math.max(0, h.sick - 1);
        return;
      case "agent_crash":
        if (h.up && !h.live) this.#restartAgent(h);
        return;
      case "agent_pause":
        if (h.live?.group.frozen) {
          this.world(h.name, "agent resumes (SIGCONT)");
          h.live.group.thaw();
        }
        return;
      case "reboot":
      case "host_death":
        return this.reviveHost(h);
      case "slow_disk": {
        const i = h.slowWrites.indexOf(f.delayMs);
        if (i >= 0) h.slowWrites.splice(i, 1);
        return;
      }
      case "failing_disk":
        h.failingWrites = Math.max(0, h.failingWrites - 1);
        return;
      case "maintenance":
        return this.command(h, { type: "maintenance", on: false });
      default:
        return;
    }
  }

  #restartAgent(h: SimHost): void {
    this.startAgent(h, 0);
    h.agentBackAt = this.vt.now;
  }

  /** The operator reloads every node's manifest, this one first, a little apart. */
  #reload(first: SimHost, spec: boolean): void {
    if (spec) this.#version++;
    this.manifest = buildManifest(this.s, this.#version);
    this.world(first.name, `operator reloads the manifest${spec ? " (web changed)" : ""}`);
    const order = [first, ...Object.values(this.hosts).filter((x) => x !== first)];
    order.forEach((h, i) => {
      this.vt.set(() => {
        const inc = h.live;
        if (inc?.booted) inc.group.set(() => void inc.agent.reload(), 0);
      }, i === 0 ? 0 : this.rngMisc.int(0, 300));
    });
  }

  /** An operator command, as the CLI sends it to the node's API. */
  command(h: SimHost, command: Command): void {
    const inc = h.live;
    if (!h.up || !inc?.booted) return;
    this.world(h.name, `operator: ${command.type}${"on" in command ? ` ${command.on}` : ""}`);
    inc.group.set(() => {
      if (command.type === "clear") h.clearedAt = this.vt.now;
      void inc.agent.command(command);
    }, 0);
  }

  #heal(): void {
    this.world("world", "faults stop: network heals, hosts and agents come back");
    this.net.healAll();
    this.net.setNoise({ lossRate: 0, spikeRate: 0 });
    for (const h of Object.values(this.hosts)) {
      h.sick = 0;
      h.checkFail.clear();
      h.slowWrites = [];
      h.failingWrites = 0;
    }
    this.#operatorRound(true);
  }

  /** The operator repairs: powers hosts on, starts and resumes agents, clears failed nodes. */
  #operatorRound(atHeal: boolean): void {
    for (const h of Object.values(this.hosts)) {
      this.reviveHost(h);
      if (h.up && !h.live) this.#restartAgent(h);
      if (h.live?.group.frozen) h.live.group.thaw();
    }
    const anyActive = Object.values(this.hosts).some((h) => h.live?.agent.state.role === "active");
    for (const h of Object.values(this.hosts)) {
      const s = h.live?.booted ? h.live.agent.state : null;
      if (!s) continue;
      if (s.maintenance) this.command(h, { type: "maintenance", on: false });
      if (s.role === "failed" && (atHeal || !anyActive)) this.command(h, { type: "clear" });
    }
  }

  // ------------------------------------------------------------ views and traces

  #persisted(h: SimHost): PersistedState | null {
    const text = h.disk.stateText;
    const cached = this.#parsed.get(h.name);
    if (cached && cached.text === text) return cached.state;
    const r = text === null ? null : parseState(text, h.name);
    const state = r && r.ok ? r.state : null;
    this.#parsed.set(h.name, { text, state });
    return state;
  }

  /** The world as the invariants read it. */
  view(): WorldView {
    const procs: ProcView[] = [];
    const hosts: WorldView["hosts"] = {};
    for (const h of Object.values(this.hosts)) {
      const inc = h.live;
      for (const p of h.procs.running()) {
        procs.push({
          pid: p.pid,
          app: p.app ?? "",
          host: h.name,
          startedAt: h.startedAt.get(p.pid) ?? 0,
          managed: p.watched && inc !== null,
        });
      }
      hosts[h.name] = {
        name: h.name,
        up: h.up,
        agent: inc
          ? {
            incarnation: inc.n,
            startedAt: inc.startedAt,
            booted: inc.booted,
            state: inc.agent.state,
          }
          : null,
        agentBackAt: h.agentBackAt,
        persisted: this.#persisted(h),
        writing: inc !== null && (inc.saving > 0 || inc.saveFailed),
        clearedAt: h.clearedAt,
        lastReceived: h.lastReceived,
      };
    }
    return { now: this.vt.now, manifest: this.manifest, witness: this.s.witness, hosts, procs };
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

/** The core state minus the manifest and the tick bookkeeping, as text to compare. */
function _decisionState(state: NodeState): string {
  return JSON.stringify(
    state,
    (k, v) => k === "manifest" || k === "lastTickAt" || k === "lastHeartbeatAt" ? undefined : v,
  );
}
