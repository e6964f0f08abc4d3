/**
 * Scenarios of the seeded simulation: the cluster shape and the fault schedule a seed
 * draws, the manifest every simulated node runs, and (in `scenario_format.ts`) their one-line descriptions. Pure: no
 * clock, no I/O.
 *
 * @example
 * ```ts
 * const s = generateScenario(7, { nodes: 3, witness: "baton" });
 * console.log(s.nodes, s.faults.length); // one-line forms: scenario_format.ts
 * ```
 *
 * @module
 */
import type { Command } from "../core/types.ts";
import type { AppSpec, Manifest } from "../manifest/types.ts";
import type { WitnessKind } from "./invariants.ts";
import { mixSeed, Rng } from "./sim_network.ts";

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
  /** The agent process dies (SIGKILL); its apps run on. Restarted at `until`, or null: at the heal. */
  | { kind: "agent_crash"; at: number; until: number | null; host: FaultTarget }
  /**
   * SIGSTOP of the agent until `until`: its timers and I/O wait, its apps run on. With `edge`,
   * from `at` on the stop waits for the agent's next lease renewal (an answer from the witness
   * or a peer while active) and lands just before it is read or just after the guard was told.
   */
  | {
    kind: "agent_pause";
    at: number;
    until: number;
    host: FaultTarget;
    edge?: PauseEdge;
  }
  /** The host reboots: agent and apps gone, the agent back at `until` with its old state. */
  | { kind: "reboot"; at: number; until: number; host: FaultTarget }
  /** State writes take `delayMs` each (fsync on a sick disk). */
  | { kind: "slow_disk"; at: number; until: number; host: FaultTarget; delayMs: number }
  /** State writes fail (EIO, disk full). */
  | { kind: "failing_disk"; at: number; until: number; host: FaultTarget }
  /** The operator reloads the manifest (`spec` true: web's spec changed, so it restarts). */
  | { kind: "reload"; at: number; host: FaultTarget; spec: boolean }
  | { kind: "host_death"; at: number; until: number | null; host: FaultTarget }
  | { kind: "maintenance"; at: number; until: number; host: FaultTarget }
  | { kind: "command"; at: number; host: FaultTarget; command: Command }
  | { kind: "witness_restart"; at: number }
  /**
   * A process of `app` started by hand on `host`, behind baton's back. Never generated: tests
   * use it to break the world on purpose and see the invariants and the shrinker catch it.
   */
  | { kind: "rogue_process"; at: number; host: FaultTarget; app: string };

/** Where a pause lands relative to a lease renewal. */
export type PauseEdge = "before_renewal" | "after_renewal";

/** Everything a run depends on; `generateScenario` derives it from a seed. */
export interface Scenario {
  seed: number;
  nodes: string[];
  priorities: Record<string, number>;
  witness: WitnessKind;
  fence: boolean;
  /** Survivor fencing: every node has a fence command (the twin powers the host off). */
  survivorFence?: boolean;
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
  /**
   * Draw agent pauses (some just before or after a lease renewal), agent deaths and host
   * reboots. On by default (and in CI): the per-host guard (sim_guard.ts) closes the duplicate
   * window they used to open. `false` leaves them out.
   */
  agentFaults?: boolean;
  /**
   * Give every node a survivor fence command (`nodes.X.fence`, fencing required): a takeover
   * from a silent active powers that host off (the twin kills it; it comes back 1–4 s later)
   * before the apps start. Off by default (it draws nothing from the seed, so seeds are kept).
   */
  survivorFence?: boolean;
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
      const e = rng.next();
      const host = target(0.6);
      if (opts.agentFaults !== false && e < 0.5) {
        const w = window(50, 3_000);
        const kind = rng.pick(["agent_crash", "agent_pause", "reboot"] as const);
        if (kind === "agent_crash") {
          faults.push({ kind, ...w, until: rng.chance(0.2) ? null : w.until, host });
        } else if (kind === "agent_pause") {
          const edge = rng.pick([null, "before_renewal", "after_renewal"] as const);
          faults.push(edge === null ? { kind, ...w, host } : { kind, ...w, host, edge });
        } else {
          faults.push({ kind, ...w, host });
        }
      } else if (e < 0.7) {
        faults.push({ kind: "slow_disk", ...window(200, 4_000), host, delayMs: rng.int(5, 400) });
      } else if (e < 0.85) {
        faults.push({ kind: "failing_disk", ...window(100, 2_000), host });
      } else {
        const at = rng.int(1_000, latest);
        faults.push({ kind: "reload", at, host: rng.pick(nodes), spec: rng.chance(0.5) });
      }
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
        // A reload while the handover runs.
        if (rng.chance(0.4)) {
          faults.push({
            kind: "reload",
            at: at + rng.int(0, 400),
            host: rng.pick(["active", ...nodes]),
            spec: rng.chance(0.5),
          });
        }
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
    ...(opts.survivorFence ? { survivorFence: true } : {}),
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
export function buildManifest(s: Scenario, version = 1): Manifest {
  const nodes: Manifest["nodes"] = {};
  for (const name of s.nodes) {
    nodes[name] = {
      name,
      url: `http://${name}:7946`,
      priority: s.priorities[name] ?? 0,
      ...(s.survivorFence ? { fence: ["sim-power-off", "{node}"] } : {}),
    };
  }
  const restart = { limit: 1, windowMs: 5_000, backoffMs: 200, backoffMaxMs: 2_000 };
  const stop = { signal: "SIGTERM" as const, timeoutMs: 300 };
  const app = (
    name: string,
    movable: boolean,
    check: AppSpec["check"],
    dependsOn?: string[],
  ): AppSpec => ({
    name,
    command: [name],
    cwd: null,
    env: {},
    movable,
    nodes: null,
    check,
    restart,
    stop,
    hash: name === "web" ? `${name}-${version}` : `${name}-1`,
    ...(dependsOn ? { dependsOn } : {}),
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
      ...(s.survivorFence
        ? { fencing: { mode: "required" as const, timeoutMs: 2_000, delayMs: 1_000, retryMs: 500 } }
        : {}),
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
      }, ["db"]),
      db: app("db", true, { type: "process" }),
      logship: app("logship", false, { type: "process" }),
    },
    hash: `sim-${s.nodes.length}-${s.witness}-v${version}`,
    path: "/sim/baton.yaml",
  };
}
