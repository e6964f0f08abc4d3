/**
 * A seeded simulation of a 2- or 3-node baton cluster over the pure core (in the manner of
 * TigerBeetle's VOPR and FoundationDB's simulator). One seed fixes the cluster (priorities,
 * witness, fence, cooldown), the fault schedule (partitions, crashes, failing checks, sick
 * hosts, agent and host deaths, operator commands) and every delay; the simulated drivers
 * (ticks, process runner, checks, peer links, witness, state directory) carry out the core's
 * actions on a simulated clock and feed the results back as events, exactly one event per
 * core step. The invariants of `invariants.ts` are checked after every step; the first
 * violation ends the run. {@linkcode shrinkScenario} then looks for the smallest fault
 * schedule that still breaks the same invariant.
 *
 * What is modelled, briefly:
 * - each agent has its own monotonic clock origin (`performance.now()` restarts with it);
 * - heartbeats, witness beats/claims and takeover requests are request/reply exchanges with
 *   the real drivers' timeouts (`agent/peer_link.ts`) and in-flight limits; a request to a host whose agent is down
 *   is refused at once, one to a dead host times out;
 * - processes outlive their agent: a restarted agent adopts those whose pid and start time
 *   match its persisted state; a graceful stop of a process that ignores SIGTERM is turned
 *   into SIGKILL by the agent after the stop timeout (not if the agent died meanwhile);
 * - the witness follows `witness_app.ts`: beats record `{role, epoch, at}`; a claim is
 *   granted only if no other node beat as active within the lease (`deadAfter`) and the
 *   claimed epoch is above the current active's.
 *
 * @example
 * ```ts
 * const result = runSimulation(generateScenario(42));
 * if (result.violations.length > 0) {
 *   const small = shrinkScenario(result.scenario, result.violations[0]!.invariant);
 *   console.log(formatTrace(runSimulation(small, { trace: true })));
 * }
 * ```
 *
 * @module
 */
import { beatTimeout, maxBeatsInFlight } from "../agent/peer_link.ts";
import { WitnessArbiter } from "../witness/arbiter.ts";
import { initNodeState, nodeInfo } from "../core/node_state.ts";
import { step } from "../core/step.ts";
import { nextDeadline } from "../core/deadline.ts";
import type {
  Action,
  AdoptedApp,
  Command,
  Event,
  NodeInfo,
  NodeState,
  PersistedState,
} from "../core/types.ts";
import type { AppSpec, Manifest } from "../manifest/types.ts";
import {
  checkLiveness,
  checkSpawn,
  checkWorld,
  fmtMs,
  type InvariantName,
  type Monitor,
  newMonitor,
  type ProcView,
  type Violation,
  type WitnessKind,
  type WorldView,
} from "./invariants.ts";
import { mixSeed, type OneWayModel, Rng, SimNetwork } from "./sim_network.ts";

/** Names of the simulated nodes, in order. */
export const NODE_NAMES = ["alpha", "beta", "gamma"] as const;
/** Network endpoint name of the witness. */
export const WITNESS = "witness";

/** Heartbeat timing of every simulated cluster. */
export const SIM_HEARTBEAT = { intervalMs: 100, deadAfterMs: 500, fenceAfterMs: 300 } as const;

/**
 * A host named by the fault, or `"active"` (whichever node is active when the fault fires),
 * or `"standby"` (the first node that is not).
 */
export type FaultTarget = string;

/** One scheduled fault (times in simulated ms; windows end before the faults stop). */
export type Fault =
  | { kind: "partition"; at: number; until: number; label: string; links: [string, string][] }
  | { kind: "app_crash"; at: number; host: FaultTarget; app: string }
  | { kind: "check_fail"; at: number; until: number; host: FaultTarget; app: string }
  | { kind: "sick_host"; at: number; until: number; host: FaultTarget }
  | { kind: "agent_crash"; at: number; until: number; host: FaultTarget }
  | { kind: "host_death"; at: number; until: number | null; host: FaultTarget }
  | { kind: "maintenance"; at: number; until: number; host: FaultTarget }
  | { kind: "command"; at: number; host: FaultTarget; command: Command }
  | { kind: "witness_restart"; at: number }
  /**
   * A process of `app` started by hand on `host`, behind baton's back. Never generated: tests
   * use it to break the world on purpose and see the invariants and the shrinker catch it.
   */
  | { kind: "rogue_process"; at: number; host: FaultTarget; app: string };

/** Everything a run depends on; `generateScenario` derives it from a seed. */
export interface Scenario {
  seed: number;
  nodes: string[];
  priorities: Record<string, number>;
  witness: WitnessKind;
  fence: boolean;
  failedCooldownMs: number | null;
  /** Random message loss while faults are on. */
  lossRate: number;
  /** Random slow messages while faults are on. */
  spikeRate: number;
  /** Faults happen in [0, faultMs); then everything heals. */
  faultMs: number;
  /** Time after the heal by which the cluster must have settled (liveness). */
  settleMs: number;
  faults: Fault[];
}

/** Overrides of {@linkcode generateScenario}. */
export interface ScenarioOptions {
  nodes?: 2 | 3;
  witness?: WitnessKind;
  faultMs?: number;
  settleMs?: number;
}

/** Options of one run. */
export interface RunOptions {
  /** Keep a trace of every step and world event. */
  trace?: boolean;
  /** Stop after this many processed queue items (default 2,000,000). */
  maxSteps?: number;
  /**
   * Model the window between a process's creation and the agent recording it: an agent
   * crash in between leaves an orphan nobody adopts. Off by default (see the report).
   */
  orphanWindow?: boolean;
  /** What a one-way partition stops (see `sim_network.ts`); default `"connection"`. */
  oneWay?: OneWayModel;
  /**
   * Drive ticks as the agent does (`core/deadline.ts`): every event except a check result
   * that changed nothing is followed by a tick at the same time, and every other tick that
   * comes before the core's `nextDeadline` must do nothing (invariant "deadline"). Off by
   * default.
   */
  deadlineCheck?: boolean;
}

/** One line of a trace. `noise` lines (routine heartbeats and ticks) are hidden by default. */
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
  /** Queue items processed. */
  steps: number;
  /** Core steps taken. */
  coreSteps: number;
  /** Simulated time the run ended. */
  endedAt: number;
  /** The run hit `maxSteps` before its end (liveness not checked). */
  truncated: boolean;
  trace: TraceLine[] | null;
}

// ---------------------------------------------------------------- scenario

/**
 * The scenario of a seed: cluster shape and fault schedule. Same seed and options, same
 * scenario.
 *
 * @example
 * ```ts
 * const s = generateScenario(7, { nodes: 3, witness: "baton" });
 * ```
 */
export function generateScenario(seed: number, opts: ScenarioOptions = {}): Scenario {
  const rng = new Rng(mixSeed(seed, "scenario"));
  const n = opts.nodes ?? rng.pick([2, 3] as const);
  const nodes = NODE_NAMES.slice(0, n) as string[];
  const priorities: Record<string, number> = { alpha: 100, beta: 50, gamma: 25 };
  if (rng.chance(0.25)) priorities.beta = 100;
  if (rng.chance(0.2)) priorities.gamma = 50;
  for (const k of Object.keys(priorities)) if (!nodes.includes(k)) delete priorities[k];
  const witnessDraw = rng.next();
  const witness: WitnessKind = opts.witness ??
    (witnessDraw < 0.55 ? "baton" : witnessDraw < 0.8 ? "none" : "http");
  const fence = rng.chance(0.3);
  const failedCooldownMs = rng.chance(0.3) ? 4_000 : null;
  const lossRate = rng.chance(0.3) ? 0 : 0.01 + rng.next() * 0.12;
  const spikeRate = rng.chance(0.5) ? 0 : 0.005 + rng.next() * 0.04;
  const faultMs = opts.faultMs ?? 20_000;
  const settleMs = opts.settleMs ?? 10_000;
  const faults: Fault[] = [];
  const count = rng.int(0, 8);
  const target = (pActive: number): FaultTarget => rng.chance(pActive) ? "active" : rng.pick(nodes);
  const latest = Math.max(1_100, faultMs - 600);
  const window = (lo: number, hi: number) => {
    const at = rng.int(1_000, latest);
    return { at, until: Math.max(at + 1, Math.min(faultMs - 100, at + rng.int(lo, hi))) };
  };
  const apps = ["web", "db", "logship"];
  for (let i = 0; i < count; i++) {
    const d = rng.next();
    if (d < 0.25) {
      faults.push(partition(rng, nodes, witness !== "none", window(200, 5_000)));
    } else if (d < 0.4) {
      faults.push({
        kind: "app_crash",
        at: rng.int(1_000, latest),
        host: target(0.7),
        app: rng.pick(apps),
      });
    } else if (d < 0.5) {
      faults.push({ kind: "check_fail", ...window(300, 3_000), host: target(0.8), app: "web" });
    } else if (d < 0.58) {
      faults.push({ kind: "sick_host", ...window(1_000, 4_000), host: target(0.8) });
    } else if (d < 0.72) {
      faults.push({ kind: "agent_crash", ...window(50, 3_000), host: target(0.6) });
    } else if (d < 0.79) {
      const w = window(500, 6_000);
      faults.push({
        kind: "host_death",
        at: w.at,
        until: rng.chance(0.3) ? null : w.until,
        host: target(0.6),
      });
    } else if (d < 0.86) {
      faults.push({ kind: "maintenance", ...window(500, 5_000), host: rng.pick(nodes) });
    } else if (d < 0.89) {
      if (witness === "baton") faults.push({ kind: "witness_restart", at: rng.int(1_000, latest) });
    } else {
      const at = rng.int(1_000, latest);
      if (rng.chance(0.6)) {
        const to = rng.chance(0.4) ? null : rng.pick(nodes);
        faults.push({ kind: "command", at, host: "active", command: { type: "switchover", to } });
      } else {
        faults.push({ kind: "command", at, host: rng.pick(nodes), command: { type: "clear" } });
      }
    }
  }
  faults.sort((a, b) => a.at - b.at);
  return {
    seed,
    nodes,
    priorities,
    witness,
    fence,
    failedCooldownMs,
    lossRate,
    spikeRate,
    faultMs,
    settleMs,
    faults,
  };
}

function partition(
  rng: Rng,
  nodes: string[],
  hasWitness: boolean,
  w: { at: number; until: number },
): Fault {
  const a = rng.pick(nodes);
  const others = nodes.filter((x) => x !== a);
  const b = rng.pick(others);
  const both = (x: string, y: string): [string, string][] => [[x, y], [y, x]];
  const shapes = hasWitness
    ? ["split", "oneway", "isolate", "witness", "witness_oneway", "split_and_witness"] as const
    : ["split", "oneway", "isolate"] as const;
  const shape = rng.pick(shapes);
  switch (shape) {
    case "split":
      return { kind: "partition", ...w, label: `${a}<->${b}`, links: both(a, b) };
    case "oneway":
      return { kind: "partition", ...w, label: `${a}->${b} (one-way)`, links: [[a, b]] };
    case "isolate": {
      const peers = hasWitness ? [...others, WITNESS] : others;
      return {
        kind: "partition",
        ...w,
        label: `${a} isolated`,
        links: peers.flatMap((p) => both(a, p)),
      };
    }
    case "witness":
      return { kind: "partition", ...w, label: `${a}<->witness`, links: both(a, WITNESS) };
    case "witness_oneway":
      return { kind: "partition", ...w, label: `${a}->witness (one-way)`, links: [[a, WITNESS]] };
    case "split_and_witness":
      return {
        kind: "partition",
        ...w,
        label: `${a}<->${b} and ${a}<->witness`,
        links: [...both(a, b), ...both(a, WITNESS)],
      };
  }
}

/**
 * The normalized manifest of a scenario: heartbeat 100 ms, deadAfter 500 ms, fenceAfter
 * 250 ms; apps `web` (movable, http check), `db` (movable, process check) and `logship`
 * (not movable).
 */
export function buildManifest(s: Scenario): Manifest {
  const nodes: Manifest["nodes"] = {};
  for (const name of s.nodes) {
    nodes[name] = { name, url: `http://${name}:7946`, priority: s.priorities[name] ?? 0 };
  }
  const restart = { limit: 1, windowMs: 5_000, backoffMs: 200, backoffMaxMs: 2_000 };
  const stop = { signal: "SIGTERM" as const, timeoutMs: 300 };
  const app = (name: string, movable: boolean, check: AppSpec["check"]): AppSpec => ({
    name,
    command: [name],
    cwd: null,
    env: {},
    movable,
    nodes: null,
    check,
    restart,
    stop,
    hash: `${name}-1`,
  });
  return {
    cluster: {
      name: "sim",
      secretFile: null,
      heartbeat: { ...SIM_HEARTBEAT },
      witness: s.witness === "none"
        ? null
        : { url: "http://witness:7950", kind: s.witness === "http" ? "http" : "baton" },
      fence: s.fence ? ["fence-self"] : null,
      failedCooldownMs: s.failedCooldownMs,
      tls: null,
    },
    nodes,
    apps: {
      web: app("web", true, {
        type: "http",
        url: "http://127.0.0.1:8080/",
        expectStatus: null,
        expectBody: null,
        intervalMs: 200,
        timeoutMs: 100,
        failures: 2,
        initialDelayMs: 0,
      }),
      db: app("db", true, { type: "process" }),
      logship: app("logship", false, { type: "process" }),
    },
    hash: `sim-${s.nodes.length}-${s.witness}`,
    path: "/sim/baton.yaml",
  };
}

// ---------------------------------------------------------------- world

interface Proc {
  pid: number;
  app: string;
  host: string;
  startTime: number;
  startedAt: number;
  alive: boolean;
  ignoresTerm: boolean;
  /** Agent incarnation watching it (spawned or adopted it), or null. */
  watchedBy: number | null;
  adopted: boolean;
}

interface Agent {
  incarnation: number;
  startedAt: number;
  booted: boolean;
  state: NodeState;
  /** Sim time minus this is the agent's own monotonic clock. */
  clockBase: number;
  /** Exchanges in flight per key (heartbeat per peer, witness), as in `agent/peer_link.ts`. */
  inflight: Map<string, number>;
  /** Check loop per app: the pid it watches. */
  checks: Map<string, number>;
  /** With `deadlineCheck`: the core's next deadline after the latest step (agent clock). */
  deadline?: number;
}

interface Host {
  name: string;
  up: boolean;
  agent: Agent | null;
  persisted: PersistedState | null;
  clearedAt: number | null;
  agentBackAt: number | null;
  /** Whether the agent was ever down after its first start. */
  wasDown: boolean;
  lastReceived: Record<string, number>;
  procs: Map<number, Proc>;
  sick: number;
  checkFail: Map<string, number>;
}

type Msg =
  | { t: "hb"; call: number; info: NodeInfo }
  | { t: "hb_reply"; call: number; info: NodeInfo }
  | { t: "beat"; call: number; info: NodeInfo }
  | { t: "claim"; call: number; info: NodeInfo }
  | {
    t: "witness_reply";
    call: number;
    active: { node: string; epoch: number; ageMs: number } | null;
    granted: boolean;
    reason: string;
  }
  | { t: "takeover"; call: number; phase: "prepare" | "commit"; epoch: number; reason: string }
  | { t: "takeover_reply"; call: number; ok: boolean; detail: string }
  | { t: "refused"; call: number };

type Item =
  | { k: "tick"; host: string; inc: number }
  | { k: "deliver"; host: string; inc: number; ev: Event }
  | { k: "spawn"; host: string; inc: number; app: string }
  | { k: "exit"; host: string; pid: number; detail: string }
  | { k: "sigkill"; host: string; inc: number; pid: number }
  | { k: "check"; host: string; inc: number; app: string; pid: number }
  | { k: "msg"; from: string; to: string; msg: Msg }
  | { k: "timeout"; call: number }
  | { k: "fault"; index: number; phase: "start" | "end" }
  | { k: "fence"; host: string; inc: number; kills: boolean; ok: boolean }
  | { k: "boot"; host: string; inc: number }
  | { k: "heal" }
  | { k: "clear_round" }
  | { k: "end" };

interface Call {
  id: number;
  /** The sender agent's own clock when the request left (acknowledged exchanges date contact). */
  sentAt: number;
  host: string;
  inc: number;
  kind: "hb" | "beat" | "claim" | "prepare" | "commit";
  peer: string;
  epoch: number;
  key: string | null;
  done: boolean;
}

/** A binary heap of items ordered by time, then by insertion (so runs are deterministic). */
class EventQueue {
  #heap: { at: number; seq: number; item: Item }[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(at: number, item: Item): void {
    const h = this.#heap;
    h.push({ at, seq: this.#seq++, item });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  pop(): { at: number; item: Item } | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (!top || !last) return undefined;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

// ---------------------------------------------------------------- the run

/**
 * Run one scenario to its end or to its first violation.
 *
 * @example
 * ```ts
 * const r = runSimulation(generateScenario(1), { trace: true });
 * console.log(r.violations.length === 0 ? "ok" : r.violations[0]!.message);
 * ```
 */
export function runSimulation(scenario: Scenario, opts: RunOptions = {}): SimResult {
  return new Simulation(scenario, opts).run();
}

class Simulation {
  readonly s: Scenario;
  readonly manifest: Manifest;
  readonly hosts: Record<string, Host> = {};
  readonly q = new EventQueue();
  readonly net: SimNetwork;
  readonly witness: WitnessArbiter;
  readonly monitor: Monitor = newMonitor();
  readonly rngProc: Rng;
  readonly rngTick: Rng;
  readonly rngMisc: Rng;
  readonly trace: TraceLine[] | null;
  readonly opts: RunOptions;
  now = 0;
  steps = 0;
  coreSteps = 0;
  nextPid = 1000;
  nextInc = 1;
  nextCall = 1;
  nextCmd = 1;
  calls = new Map<number, Call>();
  /** Takeover requests waiting for the receiver core's reply: id → call. */
  pendingReplies = new Map<string, { to: string; call: number }>();
  /** Host a window fault resolved to when it started. */
  resolved = new Map<number, string>();
  violations: Violation[] = [];

  constructor(scenario: Scenario, opts: RunOptions) {
    this.s = scenario;
    this.opts = opts;
    this.manifest = buildManifest(scenario);
    this.witness = new WitnessArbiter(this.manifest.cluster.heartbeat.deadAfterMs, 0);
    this.net = new SimNetwork(
      new Rng(mixSeed(scenario.seed, "net")),
      { lossRate: scenario.lossRate, spikeRate: scenario.spikeRate },
      opts.oneWay ?? "connection",
    );
    this.rngProc = new Rng(mixSeed(scenario.seed, "procs"));
    this.rngTick = new Rng(mixSeed(scenario.seed, "ticks"));
    this.rngMisc = new Rng(mixSeed(scenario.seed, "misc"));
    this.trace = opts.trace ? [] : null;
    for (const name of scenario.nodes) {
      this.hosts[name] = {
        name,
        up: true,
        agent: null,
        persisted: null,
        clearedAt: null,
        agentBackAt: null,
        wasDown: false,
        lastReceived: {},
        procs: new Map(),
        sick: 0,
        checkFail: new Map(),
      };
    }
  }

  run(): SimResult {
    const s = this.s;
    s.faults.forEach((f, index) => {
      this.q.push(f.at, { k: "fault", index, phase: "start" });
      const until = "until" in f ? f.until : null;
      if (until !== null) this.q.push(until, { k: "fault", index, phase: "end" });
    });
    this.q.push(s.faultMs, { k: "heal" });
    const end = s.faultMs + s.settleMs;
    for (let t = s.faultMs + 2_000; t <= end - 4_000; t += 2_000) {
      this.q.push(t, { k: "clear_round" });
    }
    this.q.push(end, { k: "end" });
    // Agents start within the first 200 ms, in seeded order.
    for (const h of Object.values(this.hosts)) {
      this.startAgent(h, this.rngMisc.int(0, 200));
    }
    const maxSteps = this.opts.maxSteps ?? 2_000_000;
    let truncated = false;
    let done = false;
    while (!done && this.violations.length === 0) {
      const next = this.q.pop();
      if (!next) break;
      if (++this.steps > maxSteps) {
        truncated = true;
        break;
      }
      this.now = next.at;
      const it = next.item;
      if (it.k === "end") {
        done = true;
        const v = checkLiveness(this.view());
        this.violations.push(...v);
        this.world("end", v.length === 0 ? "settled: liveness holds" : "liveness FAILED");
        break;
      }
      this.handle(it);
    }
    return {
      scenario: s,
      violations: this.violations,
      steps: this.steps,
      coreSteps: this.coreSteps,
      endedAt: this.now,
      truncated,
      trace: this.trace,
    };
  }

  // ------------------------------------------------------------ dispatching

  handle(it: Item): void {
    switch (it.k) {
      case "tick": {
        const h = this.hostOf(it.host, it.inc);
        if (!h) return;
        this.dispatch(h, { type: "tick" });
        if (h.agent?.incarnation === it.inc) {
          this.q.push(this.now + this.rngTick.int(10, 50), it);
        }
        return;
      }
      case "deliver": {
        const h = this.hostOf(it.host, it.inc);
        if (h) this.dispatch(h, it.ev);
        return;
      }
      case "spawn":
        return this.doSpawn(it.host, it.inc, it.app);
      case "exit":
        return this.doExit(it.host, it.pid, it.detail);
      case "sigkill": {
        const h = this.hostOf(it.host, it.inc);
        if (h) this.q.push(this.now + this.rngProc.int(1, 5), this.exitItem(h, it.pid, "killed"));
        return;
      }
      case "check":
        return this.doCheck(it.host, it.inc, it.app, it.pid);
      case "msg":
        return this.arrive(it.from, it.to, it.msg);
      case "timeout": {
        const call = this.calls.get(it.call);
        if (call && !call.done) this.finish(call, null);
        return;
      }
      case "fault":
        return it.phase === "start" ? this.faultStart(it.index) : this.faultEnd(it.index);
      case "fence": {
        const h = this.hostOf(it.host, it.inc);
        if (!h) return;
        if (it.kills) {
          this.world(h.name, "fence command powers the host off");
          this.killHost(h);
          return;
        }
        this.dispatch(h, {
          type: "fence_result",
          ok: it.ok,
          detail: it.ok ? "exit 0" : "exit 1",
        });
        return;
      }
      case "boot": {
        const h = this.hosts[it.host];
        if (h?.up && h.agent?.incarnation === it.inc) this.boot(h);
        return;
      }
      case "heal":
        return this.heal();
      case "clear_round":
        return this.operatorRound(false);
      case "end":
        return;
    }
  }

  hostOf(name: string, inc: number): Host | null {
    const h = this.hosts[name];
    return h && h.up && h.agent && h.agent.incarnation === inc && h.agent.booted ? h : null;
  }

  /** Feed one event to a host's core, carry out the actions, check every invariant. */
  dispatch(h: Host, ev: Event, followUp = false): void {
    const agent = h.agent;
    if (!agent || this.violations.length > 0) return;
    const local = this.now - agent.clockBase;
    const deadlineCheck = this.opts.deadlineCheck === true;
    // A tick before the deadline must change nothing but the tick bookkeeping.
    const quiet = deadlineCheck && ev.type === "tick" && !followUp &&
        agent.deadline !== undefined && local < agent.deadline
      ? _decisionState(agent.state)
      : null;
    let actions: Action[];
    try {
      actions = step(agent.state, ev, local).actions;
    } catch (err) {
      this.violations.push({
        invariant: "core-threw",
        at: this.now,
        message: `${h.name}: step(${ev.type}) threw: ${
          err instanceof Error ? err.stack ?? err.message : String(err)
        }`,
      });
      return;
    }
    this.coreSteps++;
    if (quiet !== null && (actions.length > 0 || _decisionState(agent.state) !== quiet)) {
      this.violations.push({
        invariant: "deadline",
        at: this.now,
        message: `${h.name}: a tick at ${local} before nextDeadline ${agent.deadline} acted: ` +
          (actions.map((a) => a.type === "record" ? `${a.kind}: ${a.message}` : a.type).join(
            "; ",
          ) ||
            "changed the state"),
      });
      return;
    }
    if (this.trace) this.traceStep(h, ev, actions);
    this.execute(h, agent, actions);
    this.syncChecks(h, agent);
    if (this.violations.length > 0) return;
    this.violations.push(...checkWorld(this.monitor, this.view()));
    if (deadlineCheck && h.agent === agent) {
      if (ev.type !== "tick" && (ev.type !== "check" || actions.length > 0)) {
        this.dispatch(h, { type: "tick" }, true);
      } else if (ev.type === "tick") {
        agent.deadline = nextDeadline(agent.state, local);
      } else {
        // A quiet check result: the pending tick may only come earlier.
        agent.deadline = Math.min(agent.deadline ?? Infinity, nextDeadline(agent.state, local));
      }
    }
  }

  execute(h: Host, agent: Agent, actions: Action[]): void {
    const m = this.manifest;
    for (const a of actions) {
      switch (a.type) {
        case "persist":
          h.persisted = a.state;
          break;
        case "record":
          break;
        case "spawn": {
          const v = checkSpawn(h.name, h.persisted, a, m, this.now);
          if (v) this.violations.push(v);
          this.q.push(this.now + this.rngProc.int(2, 30), {
            k: "spawn",
            host: h.name,
            inc: agent.incarnation,
            app: a.app,
          });
          break;
        }
        case "stop":
          this.doStop(h, agent, a);
          break;
        case "heartbeat":
          for (const peer of this.s.nodes) {
            if (peer === h.name) continue;
            const key = `hb:${peer}`;
            if ((agent.inflight.get(key) ?? 0) >= maxBeatsInFlight(m)) continue;
            const call = this.newCall(h, agent, "hb", peer, 0, key, beatTimeout(m));
            this.send(h.name, peer, { t: "hb", call, info: a.info });
          }
          break;
        case "check_witness": {
          if (this.s.witness === "none") break;
          if ((agent.inflight.get("witness") ?? 0) >= maxBeatsInFlight(m)) break;
          const call = this.newCall(
            h,
            agent,
            "beat",
            WITNESS,
            0,
            "witness",
            beatTimeout(m),
          );
          this.send(h.name, WITNESS, { t: "beat", call, info: a.info });
          break;
        }
        case "claim_witness": {
          if (this.s.witness === "none") break;
          const call = this.newCall(
            h,
            agent,
            "claim",
            WITNESS,
            a.info.epoch,
            null,
            m.cluster.heartbeat.deadAfterMs,
          );
          this.send(h.name, WITNESS, { t: "claim", call, info: a.info });
          break;
        }
        case "send_prepare":
        case "send_commit": {
          const phase = a.type === "send_prepare" ? "prepare" : "commit";
          const timeout = Math.max(2_000, m.cluster.heartbeat.deadAfterMs * 2);
          if (!m.nodes[a.to]) {
            this.deliverSoon(h, agent, {
              type: phase === "prepare" ? "prepare_result" : "commit_result",
              to: a.to,
              ok: false,
              detail: `unknown node ${a.to}`,
            });
            break;
          }
          const call = this.newCall(h, agent, phase, a.to, a.epoch, null, timeout);
          this.send(h.name, a.to, { t: "takeover", call, phase, epoch: a.epoch, reason: a.reason });
          break;
        }
        case "fence":
          this.q.push(this.now + this.rngProc.int(10, 200), {
            k: "fence",
            host: h.name,
            inc: agent.incarnation,
            kills: this.rngProc.chance(0.3),
            ok: this.rngProc.chance(0.9),
          });
          break;
        case "reply": {
          const pending = this.pendingReplies.get(a.id);
          if (pending) {
            this.pendingReplies.delete(a.id);
            const ok = a.status < 300 && a.body.ok === true;
            const detail = ok
              ? (typeof a.body.epoch === "number"
                ? `active at epoch ${a.body.epoch}`
                : "acknowledged")
              : `HTTP ${a.status}: ${String(a.body.error ?? "refused")}`;
            this.send(h.name, pending.to, { t: "takeover_reply", call: pending.call, ok, detail });
          }
          break;
        }
      }
    }
  }

  deliverSoon(h: Host, agent: Agent, ev: Event, delay = 0): void {
    this.q.push(this.now + delay, { k: "deliver", host: h.name, inc: agent.incarnation, ev });
  }

  // ------------------------------------------------------------ network

  newCall(
    h: Host,
    agent: Agent,
    kind: Call["kind"],
    peer: string,
    epoch: number,
    key: string | null,
    timeoutMs: number,
  ): number {
    const id = this.nextCall++;
    this.calls.set(id, {
      id,
      sentAt: this.now - agent.clockBase,
      host: h.name,
      inc: agent.incarnation,
      kind,
      peer,
      epoch,
      key,
      done: false,
    });
    if (key) agent.inflight.set(key, (agent.inflight.get(key) ?? 0) + 1);
    this.q.push(this.now + timeoutMs, { k: "timeout", call: id });
    return id;
  }

  /** Send a request (`reply` false) or a reply over the requester's connection. */
  send(from: string, to: string, msg: Msg): void {
    const reply = msg.t === "hb_reply" || msg.t === "witness_reply" ||
      msg.t === "takeover_reply" || msg.t === "refused";
    const delay = reply ? this.net.transmitReply(from, to) : this.net.transmit(from, to);
    if (delay === null) return;
    this.q.push(this.now + delay, { k: "msg", from, to, msg });
  }

  arrive(from: string, to: string, msg: Msg): void {
    if (to === WITNESS) return this.witnessReceive(from, msg);
    const h = this.hosts[to];
    if (!h || !h.up) return; // dead host: the sender times out
    const agent = h.agent;
    const isReply = msg.t === "hb_reply" || msg.t === "witness_reply" ||
      msg.t === "takeover_reply" || msg.t === "refused";
    if (isReply) {
      const call = this.calls.get(msg.call);
      if (!call || call.done || call.host !== to || !agent || agent.incarnation !== call.inc) {
        return;
      }
      if (from !== WITNESS && msg.t !== "refused") h.lastReceived[from] = this.now;
      this.finish(call, msg);
      return;
    }
    if (!agent || !agent.booted) {
      // The host answers, but nothing listens on the port: connection refused.
      this.send(to, from, { t: "refused", call: msg.call });
      return;
    }
    h.lastReceived[from] = this.now;
    switch (msg.t) {
      case "hb":
        this.dispatch(h, { type: "peer_info", info: msg.info });
        if (h.agent === agent) {
          this.send(to, from, { t: "hb_reply", call: msg.call, info: nodeInfo(agent.state) });
        }
        return;
      case "takeover": {
        const id = `call:${msg.call}`;
        this.pendingReplies.set(id, { to: from, call: msg.call });
        const common = { id, from, epoch: msg.epoch, reason: msg.reason };
        this.dispatch(
          h,
          msg.phase === "prepare"
            ? { type: "takeover_prepare", ...common }
            : { type: "takeover_commit", ...common },
        );
        this.pendingReplies.delete(id);
        return;
      }
      default:
        return;
    }
  }

  witnessReceive(from: string, msg: Msg): void {
    if (msg.t === "beat") {
      if (this.s.witness === "baton") {
        this.witness.beat(msg.info.node, msg.info.role, msg.info.epoch, this.now);
      }
      this.send(WITNESS, from, {
        t: "witness_reply",
        call: msg.call,
        active: this.s.witness === "baton" ? this.witness.active(this.now) : null,
        granted: false,
        reason: "",
      });
    } else if (msg.t === "claim") {
      const r = this.s.witness === "baton"
        ? this.witness.claim(msg.info.node, msg.info.epoch, this.now)
        : { granted: false, reason: "bad witness reply" };
      if (this.trace) {
        this.world(
          WITNESS,
          `claim of ${msg.info.node} for epoch ${msg.info.epoch}: ${
            r.granted ? "granted" : "refused"
          } (${r.reason})`,
        );
      }
      this.send(WITNESS, from, {
        t: "witness_reply",
        call: msg.call,
        active: this.s.witness === "baton" ? this.witness.active(this.now) : null,
        granted: r.granted,
        reason: r.reason,
      });
    }
  }

  /** Complete a request with its reply (or null: timeout) and feed the result to the core. */
  finish(call: Call, reply: Msg | null): void {
    call.done = true;
    this.calls.delete(call.id);
    const h = this.hosts[call.host];
    const agent = h?.agent;
    if (!h || !h.up || !agent || agent.incarnation !== call.inc) return;
    if (call.key) {
      const n = (agent.inflight.get(call.key) ?? 1) - 1;
      if (n > 0) agent.inflight.set(call.key, n);
      else agent.inflight.delete(call.key);
    }
    const err = reply === null ? "timeout" : reply.t === "refused" ? "connection refused" : null;
    switch (call.kind) {
      case "hb":
        if (reply?.t === "hb_reply") {
          this.dispatch(h, { type: "peer_info", info: reply.info, sentAt: call.sentAt });
        } else {
          this.dispatch(h, { type: "peer_unreachable", node: call.peer, error: err ?? "?" });
        }
        return;
      case "beat":
        if (reply?.t === "witness_reply") {
          this.dispatch(h, {
            type: "witness",
            ok: true,
            kind: this.s.witness === "baton" ? "baton" : "http",
            active: reply.active,
            error: null,
            sentAt: call.sentAt,
          });
        } else {
          this.dispatch(h, { type: "witness", ok: false, kind: null, active: null, error: err });
        }
        return;
      case "claim":
        this.dispatch(h, {
          type: "claim_result",
          epoch: call.epoch,
          ok: reply?.t === "witness_reply" && reply.granted,
          detail: reply?.t === "witness_reply" ? reply.reason : err ?? "?",
        });
        return;
      case "prepare":
      case "commit":
        this.dispatch(h, {
          type: call.kind === "prepare" ? "prepare_result" : "commit_result",
          to: call.peer,
          ok: reply?.t === "takeover_reply" && reply.ok,
          detail: reply?.t === "takeover_reply" ? reply.detail : err ?? "?",
        });
        return;
    }
  }

  // ------------------------------------------------------------ processes

  doSpawn(hostName: string, inc: number, app: string): void {
    const h = this.hostOf(hostName, inc);
    if (!h || !h.agent) return;
    const agent = h.agent;
    const spec = this.manifest.apps[app];
    if (!spec) return;
    if (this.rngProc.chance(0.02)) {
      this.world(h.name, `spawn of ${app} fails`);
      this.dispatch(h, { type: "app_start_failed", app, error: "exec failed (simulated)" });
      return;
    }
    const proc: Proc = {
      pid: this.nextPid++,
      app,
      host: h.name,
      startTime: this.now,
      startedAt: this.now,
      alive: true,
      ignoresTerm: this.rngProc.chance(0.1),
      watchedBy: agent.incarnation,
      adopted: false,
    };
    h.procs.set(proc.pid, proc);
    this.world(h.name, `process ${app} pid ${proc.pid} starts`);
    if (h.sick > 0 && spec.movable) {
      this.q.push(
        this.now + this.rngProc.int(50, 400),
        this.exitItem(h, proc.pid, "exited with code 1 (sick host)"),
      );
    }
    const ev: Event = {
      type: "app_started",
      app,
      pid: proc.pid,
      startTime: proc.startTime,
      specHash: spec.hash,
    };
    if (this.opts.orphanWindow) this.deliverSoon(h, agent, ev, this.rngProc.int(1, 3));
    else this.dispatch(h, ev);
  }

  exitItem(h: Host, pid: number, detail: string): Item {
    return { k: "exit", host: h.name, pid, detail };
  }

  doStop(h: Host, agent: Agent, a: Extract<Action, { type: "stop" }>): void {
    const proc = h.procs.get(a.pid);
    if (!proc || !proc.alive) return;
    if (a.mode === "kill") {
      this.q.push(this.now + this.rngProc.int(1, 10), this.exitItem(h, proc.pid, "killed"));
      return;
    }
    const spec = this.manifest.apps[a.app];
    if (proc.ignoresTerm) {
      this.q.push(this.now + (spec?.stop.timeoutMs ?? 300), {
        k: "sigkill",
        host: h.name,
        inc: agent.incarnation,
        pid: proc.pid,
      });
      return;
    }
    this.q.push(
      this.now + this.rngProc.int(5, 150),
      this.exitItem(h, proc.pid, "exited with signal SIGTERM"),
    );
  }

  doExit(hostName: string, pid: number, detail: string): void {
    const h = this.hosts[hostName];
    const proc = h?.procs.get(pid);
    if (!h || !proc || !proc.alive) return;
    proc.alive = false;
    h.procs.delete(pid);
    this.world(h.name, `process ${proc.app} pid ${pid} ${detail}`);
    const agent = h.agent;
    if (agent && agent.incarnation === proc.watchedBy) {
      const delay = proc.adopted ? this.rngProc.int(1, 100) : this.rngProc.int(0, 2);
      this.deliverSoon(h, agent, { type: "app_exited", app: proc.app, pid, detail }, delay);
    } else if (this.violations.length === 0) {
      // Unwatched processes leave the world silently; invariants see the change.
      this.violations.push(...checkWorld(this.monitor, this.view()));
    }
  }

  /** One check loop per running process with an interface check, like the agent's. */
  syncChecks(h: Host, agent: Agent): void {
    if (h.agent !== agent) return;
    for (const app of Object.values(agent.state.apps)) {
      const spec = this.manifest.apps[app.name];
      const pid = app.phase === "running" && spec && spec.check.type !== "process" ? app.pid : null;
      const watched = agent.checks.get(app.name);
      if (pid === null) {
        if (watched !== undefined) agent.checks.delete(app.name);
      } else if (watched !== pid) {
        agent.checks.set(app.name, pid);
        this.q.push(this.now + this.rngProc.int(1, 20), {
          k: "check",
          host: h.name,
          inc: agent.incarnation,
          app: app.name,
          pid,
        });
      }
    }
  }

  doCheck(hostName: string, inc: number, app: string, pid: number): void {
    const h = this.hostOf(hostName, inc);
    if (!h || !h.agent || h.agent.checks.get(app) !== pid) return;
    const spec = this.manifest.apps[app];
    if (!spec || spec.check.type === "process") return;
    const proc = h.procs.get(pid);
    const failing = (h.checkFail.get(app) ?? 0) > 0;
    const ok = proc !== undefined && proc.alive && !failing;
    this.dispatch(h, {
      type: "check",
      app,
      pid,
      ok,
      detail: ok ? "HTTP 200" : proc?.alive ? "HTTP 500 (simulated)" : "connection refused",
    });
    if (h.agent?.incarnation === inc && h.agent.checks.get(app) === pid) {
      this.q.push(this.now + spec.check.intervalMs + this.rngProc.int(0, 20), {
        k: "check",
        host: h.name,
        inc,
        app,
        pid,
      });
    }
  }

  // ------------------------------------------------------------ agents and hosts

  startAgent(h: Host, delay = 0): void {
    const inc = this.nextInc++;
    const startedAt = this.now + delay;
    const clockBase = startedAt - this.rngMisc.int(0, 100_000);
    const state = initNodeState(h.name, this.manifest, "auto", startedAt - clockBase);
    h.agent = {
      incarnation: inc,
      startedAt,
      booted: false,
      state,
      clockBase,
      inflight: new Map(),
      checks: new Map(),
    };
    if (delay > 0) {
      // Boot when the start time comes: a "deliver" would be dropped before boot.
      this.q.push(startedAt, { k: "boot", host: h.name, inc });
      return;
    }
    this.boot(h);
  }

  boot(h: Host): void {
    const agent = h.agent;
    if (!agent || agent.booted) return;
    h.lastReceived = {};
    const persisted = h.persisted ? structuredClone(h.persisted) : null;
    const adopted: AdoptedApp[] = [];
    const lost: string[] = [];
    for (const [app, rec] of Object.entries(persisted?.apps ?? {})) {
      const proc = h.procs.get(rec.pid);
      if (proc && proc.alive && proc.startTime === rec.startTime) {
        proc.watchedBy = agent.incarnation;
        proc.adopted = true;
        adopted.push({ app, ...rec });
      } else {
        lost.push(app);
      }
    }
    agent.booted = true;
    if (h.wasDown) h.agentBackAt = this.now;
    this.world(h.name, `agent starts (incarnation ${agent.incarnation})`);
    this.dispatch(h, { type: "boot", persisted, adopted, lost });
    if (h.agent !== agent) return;
    this.dispatch(h, { type: "tick" });
    this.q.push(this.now + this.rngTick.int(10, 50), {
      k: "tick",
      host: h.name,
      inc: agent.incarnation,
    });
  }

  crashAgent(h: Host): void {
    if (!h.agent) return;
    this.world(h.name, `agent crashes (incarnation ${h.agent.incarnation}); its apps keep running`);
    h.agent = null;
    h.wasDown = true;
    if (this.violations.length === 0) {
      this.violations.push(...checkWorld(this.monitor, this.view()));
    }
  }

  killHost(h: Host): void {
    if (!h.up) return;
    this.world(h.name, "host dies: agent and every process gone");
    h.agent = null;
    for (const p of h.procs.values()) p.alive = false;
    h.procs.clear();
    h.up = false;
    h.wasDown = true;
    if (this.violations.length === 0) {
      this.violations.push(...checkWorld(this.monitor, this.view()));
    }
  }

  reviveHost(h: Host): void {
    if (h.up) {
      if (!h.agent) this.startAgent(h);
      return;
    }
    h.up = true;
    this.world(h.name, "host is back");
    this.startAgent(h);
  }

  // ------------------------------------------------------------ faults

  /** The host a fault acts on: the live active for "active", else the named host. */
  target(t: FaultTarget): Host | null {
    if (t === "standby") {
      const names = this.s.nodes.filter((n) => this.hosts[n]?.agent?.state.role !== "active");
      return this.hosts[names[0] ?? ""] ?? null;
    }
    if (t !== "active") return this.hosts[t] ?? null;
    for (const name of this.s.nodes) {
      const h = this.hosts[name];
      if (h?.agent?.booted && h.agent.state.role === "active") return h;
    }
    for (const name of this.s.nodes) {
      const h = this.hosts[name];
      if (h?.up) return h;
    }
    return null;
  }

  faultStart(index: number): void {
    const f = this.s.faults[index];
    if (!f) return;
    if (f.kind === "partition") {
      this.world("net", `partition ${f.label} starts`);
      for (const [a, b] of f.links) this.net.block(a, b);
      return;
    }
    if (f.kind === "witness_restart") {
      this.world(WITNESS, "witness restarts: forgets every beat, listens for a lease");
      this.witness.restart(this.now);
      return;
    }
    const h = this.target(f.host);
    if (!h) return;
    this.resolved.set(index, h.name);
    switch (f.kind) {
      case "app_crash": {
        const proc = [...h.procs.values()].find((p) => p.app === f.app && p.alive);
        this.world(h.name, `fault: crash ${f.app}${proc ? ` pid ${proc.pid}` : " (not running)"}`);
        if (proc) this.doExit(h.name, proc.pid, "exited with code 1 (crash)");
        return;
      }
      case "check_fail":
        this.world(h.name, `fault: checks of ${f.app} start failing`);
        h.checkFail.set(f.app, (h.checkFail.get(f.app) ?? 0) + 1);
        return;
      case "sick_host":
        this.world(h.name, "fault: host turns sick (movable apps crash soon after start)");
        h.sick++;
        for (const p of h.procs.values()) {
          if (p.alive && this.manifest.apps[p.app]?.movable) {
            this.q.push(
              this.now + this.rngProc.int(10, 300),
              this.exitItem(h, p.pid, "exited with code 1 (sick host)"),
            );
          }
        }
        return;
      case "agent_crash":
        if (h.up) this.crashAgent(h);
        return;
      case "host_death":
        this.killHost(h);
        return;
      case "maintenance":
        this.command(h, { type: "maintenance", on: true });
        return;
      case "command":
        this.command(h, f.command);
        return;
      case "rogue_process": {
        const pid = this.nextPid++;
        h.procs.set(pid, {
          pid,
          app: f.app,
          host: h.name,
          startTime: this.now,
          startedAt: this.now,
          alive: true,
          ignoresTerm: false,
          watchedBy: null,
          adopted: false,
        });
        this.world(h.name, `fault: someone starts ${f.app} by hand (pid ${pid})`);
        if (this.violations.length === 0) {
          this.violations.push(...checkWorld(this.monitor, this.view()));
        }
        return;
      }
    }
  }

  faultEnd(index: number): void {
    const f = this.s.faults[index];
    if (!f) return;
    if (f.kind === "partition") {
      this.world("net", `partition ${f.label} heals`);
      for (const [a, b] of f.links) this.net.unblock(a, b);
      return;
    }
    const name = this.resolved.get(index);
    const h = name ? this.hosts[name] : undefined;
    if (!h) return;
    switch (f.kind) {
      case "check_fail":
        this.world(h.name, `fault ends: checks of ${f.app} pass again`);
        h.checkFail.set(f.app, Math.max(0, (h.checkFail.get(f.app) ?? 0) - 1));
        return;
      case "sick_host":
        this.world(h.name, "fault ends: host healthy again");
        h.sick = Math.max(0, h.sick - 1);
        return;
      case "agent_crash":
        if (h.up && !h.agent) this.startAgent(h);
        return;
      case "host_death":
        this.reviveHost(h);
        return;
      case "maintenance":
        this.command(h, { type: "maintenance", on: false });
        return;
      default:
        return;
    }
  }

  command(h: Host, command: Command): void {
    const agent = h.agent;
    if (!h.up || !agent || !agent.booted) return;
    const id = `cmd:${this.nextCmd++}`;
    this.world(h.name, `operator: ${fmtCommand(command)}`);
    if (command.type === "clear") h.clearedAt = this.now;
    this.dispatch(h, { type: "command", id, command });
  }

  heal(): void {
    this.world("world", "faults stop: network heals, hosts and agents come back");
    this.net.healAll();
    this.net.setNoise({ lossRate: 0, spikeRate: 0 });
    for (const h of Object.values(this.hosts)) {
      h.sick = 0;
      h.checkFail.clear();
    }
    this.operatorRound(true);
  }

  /**
   * The operator repairs, at the heal and every 2 s of the settle time: powers dead hosts
   * back on (a fence may power one off after the heal), restarts dead agents, turns
   * maintenance off, and clears failed nodes (at the heal; later only if no node is active).
   */
  operatorRound(atHeal: boolean): void {
    for (const h of Object.values(this.hosts)) this.reviveHost(h);
    const anyActive = Object.values(this.hosts).some((h) => h.agent?.state.role === "active");
    for (const h of Object.values(this.hosts)) {
      const s = h.agent?.state;
      if (!s) continue;
      if (s.maintenance) this.command(h, { type: "maintenance", on: false });
      if (s.role === "failed" && (atHeal || !anyActive)) this.command(h, { type: "clear" });
    }
  }

  // ------------------------------------------------------------ views and traces

  view(): WorldView {
    const procs: ProcView[] = [];
    for (const h of Object.values(this.hosts)) {
      for (const p of h.procs.values()) {
        if (!p.alive) continue;
        procs.push({
          pid: p.pid,
          app: p.app,
          host: h.name,
          startedAt: p.startedAt,
          managed: h.agent !== null && h.agent.incarnation === p.watchedBy,
        });
      }
    }
    return {
      now: this.now,
      manifest: this.manifest,
      witness: this.s.witness,
      hosts: this.hosts,
      procs,
    };
  }

  world(who: string, text: string): void {
    this.trace?.push({ at: this.now, who, text, noise: false });
  }

  traceStep(h: Host, ev: Event, actions: Action[]): void {
    const shown = actions.filter((a) => a.type !== "heartbeat" && a.type !== "check_witness");
    const routine = ev.type === "tick" || ev.type === "peer_info" || ev.type === "witness" ||
      ev.type === "peer_unreachable" || (ev.type === "check" && ev.ok);
    const s = h.agent?.state;
    const status = s ? ` {${s.role} e${s.epoch}${s.maintenance ? " maint" : ""}}` : "";
    this.trace?.push({
      at: this.now,
      who: h.name,
      text: `${fmtEvent(ev)}${
        actions.length > 0 ? ` → ${actions.map(fmtAction).join("; ")}` : ""
      }${status}`,
      noise: routine && shown.length === 0,
    });
  }
}

// ---------------------------------------------------------------- formatting

function fmtCommand(c: Command): string {
  switch (c.type) {
    case "switchover":
      return `switchover${c.to ? ` to ${c.to}` : ""}`;
    case "maintenance":
      return `maintenance ${c.on ? "on" : "off"}`;
    case "clear":
      return "clear";
  }
}

/** One core event as a short line. */
export function fmtEvent(ev: Event): string {
  switch (ev.type) {
    case "boot":
      return `boot(persisted ${
        ev.persisted ? `${ev.persisted.role} e${ev.persisted.epoch}` : "none"
      }, adopted [${ev.adopted.map((a) => `${a.app}:${a.pid}`).join(" ")}], lost [${
        ev.lost.join(" ")
      }])`;
    case "tick":
      return "tick";
    case "manifest":
      return `manifest ${ev.manifest.hash}`;
    case "app_started":
      return `app_started(${ev.app} pid ${ev.pid})`;
    case "app_start_failed":
      return `app_start_failed(${ev.app}: ${ev.error})`;
    case "app_exited":
      return `app_exited(${ev.app} pid ${ev.pid}: ${ev.detail})`;
    case "check":
      return `check(${ev.app} pid ${ev.pid} ${ev.ok ? "ok" : "FAIL"})`;
    case "peer_info":
      return `peer_info(${ev.info.node} ${ev.info.role} e${ev.info.epoch}${
        ev.info.maintenance ? " maint" : ""
      })`;
    case "peer_unreachable":
      return `peer_unreachable(${ev.node}: ${ev.error})`;
    case "witness":
      return ev.ok
        ? `witness(ok ${ev.kind}${
          ev.active ? ` active ${ev.active.node} e${ev.active.epoch} ${ev.active.ageMs}ms ago` : ""
        })`
        : `witness(down: ${ev.error})`;
    case "takeover_prepare":
      return `takeover_prepare(from ${ev.from} e${ev.epoch})`;
    case "takeover_commit":
      return `takeover_commit(from ${ev.from} e${ev.epoch})`;
    case "prepare_result":
      return `prepare_result(${ev.to} ${ev.ok ? "ok" : "refused"}: ${ev.detail})`;
    case "commit_result":
      return `commit_result(${ev.to} ${ev.ok ? "ok" : "refused"}: ${ev.detail})`;
    case "fence_result":
      return `fence_result(${ev.ok ? "ok" : "failed"}: ${ev.detail})`;
    case "watchdog":
      return `watchdog(${ev.ok ? "ok" : "unavailable"}: ${ev.detail})`;
    case "claim_result":
      return `claim_result(e${ev.epoch} ${ev.ok ? "granted" : "refused"}: ${ev.detail})`;
    case "command":
      return `command(${fmtCommand(ev.command)})`;
  }
}

/** One core action as a short phrase. */
export function fmtAction(a: Action): string {
  switch (a.type) {
    case "spawn":
      return `spawn ${a.app} e${a.epoch}`;
    case "stop":
      return `stop ${a.app} pid ${a.pid} ${a.mode} (${a.reason})`;
    case "persist":
      return `persist(${a.state.role} e${a.state.epoch})`;
    case "record":
      return `[${a.level} ${a.kind}] ${a.message}`;
    case "heartbeat":
      return "heartbeat";
    case "check_witness":
      return "check_witness";
    case "claim_witness":
      return `claim_witness e${a.info.epoch}`;
    case "send_prepare":
      return `send_prepare → ${a.to} e${a.epoch}`;
    case "send_commit":
      return `send_commit → ${a.to} e${a.epoch}`;
    case "fence":
      return `fence ${a.command.join(" ")}`;
    case "reply":
      return `reply ${a.status} ${JSON.stringify(a.body)}`;
  }
}

/** A fault as one line. */
export function fmtFault(f: Fault): string {
  const span = (at: number, until: number | null) =>
    `${fmtMs(at)}–${until === null ? "heal" : fmtMs(until)}`;
  switch (f.kind) {
    case "partition":
      return `${span(f.at, f.until)} partition ${f.label}`;
    case "app_crash":
      return `${fmtMs(f.at)} crash ${f.app} on ${f.host}`;
    case "check_fail":
      return `${span(f.at, f.until)} checks of ${f.app} fail on ${f.host}`;
    case "sick_host":
      return `${span(f.at, f.until)} sick host ${f.host}`;
    case "agent_crash":
      return `${span(f.at, f.until)} agent of ${f.host} down`;
    case "host_death":
      return `${span(f.at, f.until)} host ${f.host} dead`;
    case "maintenance":
      return `${span(f.at, f.until)} maintenance on ${f.host}`;
    case "command":
      return `${fmtMs(f.at)} operator on ${f.host}: ${fmtCommand(f.command)}`;
    case "witness_restart":
      return `${fmtMs(f.at)} witness restarts`;
    case "rogue_process":
      return `${fmtMs(f.at)} ${f.app} started by hand on ${f.host}`;
  }
}

/** A scenario's cluster as one line. */
export function fmtScenario(s: Scenario): string {
  return `seed ${s.seed}: ${s.nodes.length} nodes (${
    s.nodes.map((n) => `${n}=${s.priorities[n]}`).join(" ")
  }), witness ${s.witness}, fence ${s.fence ? "on" : "off"}, cooldown ${
    s.failedCooldownMs === null ? "none" : fmtMs(s.failedCooldownMs)
  }, loss ${(s.lossRate * 100).toFixed(1)}%, slow ${
    (s.spikeRate * 100).toFixed(1)
  }%, ${s.faults.length} fault(s)`;
}

/**
 * A trace as readable lines: `time who event → actions {role epoch}`. Routine lines
 * (ticks and heartbeats that decide nothing) are left out unless `all`.
 */
export function formatTrace(result: SimResult, all = false): string {
  const lines: string[] = [];
  for (const l of result.trace ?? []) {
    if (l.noise && !all) continue;
    lines.push(`${fmtMs(l.at).padStart(8)} ${l.who.padEnd(7)} ${l.text}`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------- shrinking

/** Options of {@linkcode shrinkScenario}. */
export interface ShrinkOptions extends RunOptions {
  /** Most runs to spend (default 300). */
  budget?: number;
}

/**
 * The smallest variant of a failing scenario that still breaks `invariant`: noise turned
 * off where possible, then the fault schedule cut down by delta debugging (ddmin), then the
 * fault phase shortened. Deterministic.
 *
 * @example
 * ```ts
 * const small = shrinkScenario(result.scenario, "single-runner");
 * ```
 */
export function shrinkScenario(
  scenario: Scenario,
  invariant: InvariantName,
  opts: ShrinkOptions = {},
): Scenario {
  let budget = opts.budget ?? 300;
  const runOpts: RunOptions = { ...opts, trace: false };
  const fails = (s: Scenario): boolean => {
    if (budget <= 0) return false;
    budget--;
    return runSimulation(s, runOpts).violations.some((v) => v.invariant === invariant);
  };
  let best = scenario;
  const first = runSimulation(best, runOpts);
  const at = first.violations.find((v) => v.invariant === invariant)?.at;
  if (at === undefined) return scenario;
  // Faults starting after the violation never fired.
  const fired = best.faults.filter((f) => f.at <= at);
  if (fired.length < best.faults.length) {
    const c = { ...best, faults: fired };
    if (fails(c)) best = c;
  }
  for (const noise of [{ lossRate: 0, spikeRate: 0 }, { lossRate: 0 }, { spikeRate: 0 }]) {
    const c = { ...best, ...noise };
    if ((c.lossRate !== best.lossRate || c.spikeRate !== best.spikeRate) && fails(c)) {
      best = c;
      break;
    }
  }
  // ddmin over the fault list.
  let faults = best.faults;
  let n = 2;
  while (faults.length >= 1 && budget > 0) {
    const chunk = Math.ceil(faults.length / n);
    let reduced = false;
    for (let i = 0; i < faults.length && budget > 0; i += chunk) {
      const complement = [...faults.slice(0, i), ...faults.slice(i + chunk)];
      if (complement.length < faults.length && fails({ ...best, faults: complement })) {
        faults = complement;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= faults.length) break;
      n = Math.min(n * 2, faults.length);
    }
  }
  best = { ...best, faults };
  // A shorter fault phase makes a shorter trace (liveness violations happen at the end).
  const lastFault = Math.max(
    0,
    ...best.faults.map((f) => ("until" in f && f.until !== null ? f.until : f.at)),
  );
  for (const faultMs of [lastFault + 500, lastFault + 2_000, Math.ceil(at) + 100]) {
    if (faultMs >= best.faultMs || faultMs <= lastFault) continue;
    const c = { ...best, faultMs };
    if (fails(c)) {
      best = c;
      break;
    }
  }
  return best;
}

/** The core state minus the manifest and the tick bookkeeping, as text to compare. */
function _decisionState(state: NodeState): string {
  return JSON.stringify(
    state,
    (k, v) => k === "manifest" || k === "lastTickAt" || k === "lastHeartbeatAt" ? undefined : v,
  );
}
