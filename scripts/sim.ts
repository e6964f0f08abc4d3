/**
 * Seeded cluster simulation over the real Agent (see `src/sim/simulator.ts`).
 *
 *   deno run scripts/sim.ts --seeds 1000 [--start N] [--random K] [--nodes 2|3]
 *                           [--witness none|http|baton] [--seconds N] [--settle N] [--steps N]
 *                           [--no-agent-faults] [--survivor-fence] [--no-guard] [--oneway-messages]
 *                           [--traces K]
 *   deno run scripts/sim.ts --seed S --trace [--all] [--no-shrink]
 *
 * Runs one simulation per seed and checks every invariant after every step. A failing seed
 * is printed with its invariant, then shrunk (fewer faults, no noise) and its shortest trace
 * printed. Exits 1 if any seed failed. Needs no permissions.
 *
 * - `--seeds N --start S`: seeds S … S+N-1 (default 100 seeds from 1).
 * - `--random K`: K more seeds drawn at random (printed before the run); a failing one
 *   reproduces with the `reproduce:` command printed, like any other.
 * - Agent faults are drawn by default: agent pauses (SIGSTOP, some just before or just after a
 *   lease renewal), agent deaths and host reboots; each host runs a guard twin that kills its
 *   movable apps when the lease runs out. `--no-agent-faults` leaves them out (the seeds then
 *   draw the schedules they drew before the guard existed); `--agent-faults` is accepted and
 *   changes nothing.
 * - `--nodes`, `--witness`: fix the cluster shape (default: drawn from each seed). A seed
 *   reproduces only with the same flags; the `reproduce:` line repeats them.
 * - `--seconds N` (default 20): fault phase; `--settle N` (default 10): time after the heal by
 *   which the cluster must have settled (liveness).
 * - `--steps N`: most queue items per run (default 2,000,000); a run cut short is reported and
 *   its liveness is not checked.
 * - `--no-guard`: the guard twins never kill (baton before the guard): the agent-pause and
 *   agent-death faults then leave a movable app on two hosts, and the single-runner invariant
 *   reports it with a seed (shows the invariant can fail; never in CI).
 * - `--oneway-messages`: one-way partitions drop every message that way, replies included.
 * - `--traces K`: print the shrunk trace of the first K failures (default 3).
 * - `--seed S --trace`: one seed; on failure the shrunk trace, `--all` with routine lines,
 *   `--no-shrink` for the original run.
 *
 * @module
 */
import {
  fmtFault,
  fmtScenario,
  formatTrace,
  generateScenario,
  type RunOptions,
  runSimulation,
  type Scenario,
  type ScenarioOptions,
  shrinkScenario,
  type SimResult,
} from "../src/sim/simulator.ts";
import { fmtMs, type WitnessKind } from "../src/sim/invariants.ts";

interface Args {
  seeds: number;
  start: number;
  seed: number | null;
  trace: boolean;
  all: boolean;
  shrink: boolean;
  traces: number;
  random: number;
  scenario: ScenarioOptions;
  run: RunOptions;
}

const USAGE = `usage: deno run scripts/sim.ts --seeds N [--start N] [--random K] [--nodes 2|3] ` +
  `[--witness none|http|baton] [--seconds N] [--settle N] [--steps N] [--no-agent-faults] [--survivor-fence] [--no-guard] ` +
  `[--oneway-messages] [--traces K]
       deno run scripts/sim.ts --seed S --trace [--all] [--no-shrink]`;

function parseArgs(argv: string[]): Args {
  const args: Args = {
    seeds: 100,
    start: 1,
    seed: null,
    trace: false,
    all: false,
    shrink: true,
    traces: 3,
    random: 0,
    scenario: {},
    run: {},
  };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < 0) {
      throw new Error(`${flag}: expected a non-negative integer, got ${v ?? "nothing"}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => argv[++i];
    switch (flag) {
      case "--seeds":
        args.seeds = num(flag, value());
        break;
      case "--start":
        args.start = num(flag, value());
        break;
      case "--seed":
        args.seed = num(flag, value());
        break;
      case "--nodes": {
        const n = num(flag, value());
        if (n !== 2 && n !== 3) throw new Error(`--nodes: expected 2 or 3, got ${n}`);
        args.scenario.nodes = n;
        break;
      }
      case "--witness": {
        const w = value();
        if (w !== "none" && w !== "http" && w !== "baton") {
          throw new Error(`--witness: expected none, http or baton, got ${w ?? "nothing"}`);
        }
        args.scenario.witness = w as WitnessKind;
        break;
      }
      case "--seconds":
        args.scenario.faultMs = num(flag, value()) * 1000;
        break;
      case "--settle":
        args.scenario.settleMs = num(flag, value()) * 1000;
        break;
      case "--steps":
        args.run.maxSteps = num(flag, value());
        break;
      case "--agent-faults":
        args.scenario.agentFaults = true;
        break;
      case "--no-agent-faults":
        args.scenario.agentFaults = false;
        break;
      case "--survivor-fence":
        args.scenario.survivorFence = true;
        break;
      case "--no-guard":
        args.run.noGuard = true;
        break;
      case "--random":
        args.random = num(flag, value());
        break;
      case "--oneway-messages":
        args.run.oneWay = "message";
        break;
      case "--traces":
        args.traces = num(flag, value());
        break;
      case "--trace":
        args.trace = true;
        break;
      case "--all":
        args.all = true;
        break;
      case "--no-shrink":
        args.shrink = false;
        break;
      case "--help":
      case "-h":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${flag}\n${USAGE}`);
    }
  }
  return args;
}

function reproduce(args: Args, seed: number): string {
  const parts = ["deno run scripts/sim.ts", `--seed ${seed}`];
  const s = args.scenario;
  if (s.nodes) parts.push(`--nodes ${s.nodes}`);
  if (s.witness) parts.push(`--witness ${s.witness}`);
  if (s.faultMs !== undefined) parts.push(`--seconds ${s.faultMs / 1000}`);
  if (s.settleMs !== undefined) parts.push(`--settle ${s.settleMs / 1000}`);
  if (s.agentFaults === false) parts.push("--no-agent-faults");
  if (s.survivorFence) parts.push("--survivor-fence");
  if (args.run.oneWay === "message") parts.push("--oneway-messages");
  if (args.run.noGuard) parts.push("--no-guard");
  parts.push("--trace");
  return parts.join(" ");
}

function describeFailure(r: SimResult): string {
  const v = r.violations[0];
  if (!v) return "";
  const more = r.violations.length > 1 ? ` (+${r.violations.length - 1} more)` : "";
  return `[${v.invariant}] at ${fmtMs(v.at)}: ${v.message}${more}`;
}

/** Shrink a failure and print the shortest trace found. */
async function printShrunk(args: Args, failed: SimResult): Promise<void> {
  const v = failed.violations[0];
  if (!v) return;
  let scenario: Scenario = failed.scenario;
  if (args.shrink) {
    scenario = await shrinkScenario(failed.scenario, v.invariant, args.run);
  }
  const r = await runSimulation(scenario, { ...args.run, trace: true });
  console.log(
    `  ${args.shrink ? "shrunk" : "scenario"}: ${fmtScenario(scenario)}, fault phase ${
      fmtMs(scenario.faultMs)
    }`,
  );
  for (const f of scenario.faults) console.log(`    ${fmtFault(f)}`);
  console.log(`  violation: ${describeFailure(r)}`);
  for (const extra of r.violations.slice(1)) {
    console.log(`             [${extra.invariant}] ${extra.message}`);
  }
  console.log("  trace:");
  console.log(formatTrace(r, args.all).split("\n").map((l) => `    ${l}`).join("\n"));
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(Deno.args);
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  if (args.seed !== null) {
    const scenario = generateScenario(args.seed, args.scenario);
    const r = await runSimulation(scenario, { ...args.run, trace: args.trace });
    console.log(fmtScenario(scenario));
    for (const f of scenario.faults) console.log(`  ${fmtFault(f)}`);
    if (r.violations.length === 0) {
      if (args.trace) console.log(formatTrace(r, args.all));
      console.log(
        `seed ${args.seed}: ok (${r.coreSteps} core steps, ${fmtMs(r.endedAt)} simulated${
          r.truncated ? ", TRUNCATED by --steps: liveness not checked" : ""
        })`,
      );
      console.log("1 seeds, 1 passed, 0 failed");
      return 0;
    }
    console.log(`FAIL ${describeFailure(r)}`);
    if (args.trace) await printShrunk(args, r);
    console.log("1 seeds, 0 passed, 1 failed");
    return 1;
  }
  const t0 = performance.now();
  let passed = 0;
  let failed = 0;
  let truncated = 0;
  let coreSteps = 0;
  const byInvariant = new Map<string, number[]>();
  const seeds: number[] = [];
  for (let seed = args.start; seed < args.start + args.seeds; seed++) seeds.push(seed);
  if (args.random > 0) {
    const drawn = new Uint32Array(args.random);
    crypto.getRandomValues(drawn);
    // Far above the fixed range, so a drawn seed is never one of them.
    const random = [...drawn].map((x) => 1_000_000 + (x % 2_000_000_000));
    console.log(`random seeds: ${random.join(" ")}`);
    seeds.push(...random);
  }
  for (const seed of seeds) {
    const scenario = generateScenario(seed, args.scenario);
    const r = await runSimulation(scenario, args.run);
    coreSteps += r.coreSteps;
    if (r.truncated) truncated++;
    const v = r.violations[0];
    if (!v) {
      passed++;
      continue;
    }
    failed++;
    const list = byInvariant.get(v.invariant) ?? [];
    list.push(seed);
    byInvariant.set(v.invariant, list);
    console.log(`FAIL ${fmtScenario(scenario)}`);
    console.log(`  ${describeFailure(r)}`);
    if (failed <= args.traces) await printShrunk(args, r);
    console.log(`  reproduce: ${reproduce(args, seed)}`);
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  for (const [inv, seeds] of byInvariant) {
    console.log(
      `${inv}: ${seeds.length} seed(s): ${seeds.slice(0, 20).join(" ")}${
        seeds.length > 20 ? " …" : ""
      }`,
    );
  }
  if (truncated > 0) console.log(`${truncated} run(s) truncated by --steps (liveness unchecked)`);
  console.log(
    `${coreSteps} steps in ${secs}s (${(Number(secs) * 1000 / seeds.length).toFixed(0)} ms/seed)`,
  );
  console.log(`${seeds.length} seeds, ${passed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

Deno.exit(await main());
