/**
 * A seeded simulation of a 2- or 3-node baton cluster that runs the real `Agent` on every
 * node (in the manner of TigerBeetle's VOPR and FoundationDB's simulator). One seed fixes the
 * cluster (priorities, witness, fence, cooldown), the fault schedule (`scenario.ts`) and every
 * delay; only time, processes, disks and the network are simulated (`sim_world.ts`, over the
 * twins of `virtual_time.ts`, `supervisor/fake_runner.ts`, `store/memory_store.ts`). The
 * invariants of `invariants.ts` are checked after every timer; the first violation ends the
 * run. {@linkcode shrinkScenario} then looks for the smallest fault schedule that still
 * breaks the same invariant.
 *
 * @example
 * ```ts
 * const result = await runSimulation(generateScenario(42));
 * if (result.violations.length > 0) {
 *   const small = await shrinkScenario(result.scenario, result.violations[0]!.invariant);
 *   console.log(formatTrace(await runSimulation(small, { trace: true })));
 * }
 * ```
 *
 * @module
 */
import { fmtMs, type InvariantName } from "./invariants.ts";
import type { Scenario } from "./scenario.ts";
import { type RunOptions, type SimResult, Simulation } from "./sim_world.ts";

export {
  buildManifest,
  type Fault,
  type FaultTarget,
  generateScenario,
  NODE_NAMES,
  type Scenario,
  type ScenarioOptions,
  SIM_HEARTBEAT,
  WITNESS,
} from "./scenario.ts";
export { fmtFault, fmtScenario } from "./scenario_format.ts";
export type { RunOptions, SimResult, TraceLine } from "./sim_world.ts";

/**
 * Run one scenario to its end or to its first violation.
 *
 * @example
 * ```ts
 * const r = await runSimulation(generateScenario(1), { trace: true });
 * console.log(r.violations.length === 0 ? "ok" : r.violations[0]!.message);
 * ```
 */
export function runSimulation(scenario: Scenario, opts: RunOptions = {}): Promise<SimResult> {
  return new Simulation(scenario, opts).run();
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
 * import type { SimResult } from "./sim_world.ts";
 * declare const result: SimResult; // a failed run
 * const small = await shrinkScenario(result.scenario, "single-runner");
 * ```
 */
export async function shrinkScenario(
  scenario: Scenario,
  invariant: InvariantName,
  opts: ShrinkOptions = {},
): Promise<Scenario> {
  let budget = opts.budget ?? 300;
  const runOpts: RunOptions = { ...opts, trace: false };
  const fails = async (s: Scenario): Promise<boolean> => {
    if (budget <= 0) return false;
    budget--;
    return (await runSimulation(s, runOpts)).violations.some((v) => v.invariant === invariant);
  };
  let best = scenario;
  const first = await runSimulation(best, runOpts);
  const at = first.violations.find((v) => v.invariant === invariant)?.at;
  if (at === undefined) return scenario;
  // Faults starting after the violation never fired.
  const fired = best.faults.filter((f) => f.at <= at);
  if (fired.length < best.faults.length) {
    const c = { ...best, faults: fired };
    if (await fails(c)) best = c;
  }
  for (const noise of [{ lossRate: 0, spikeRate: 0 }, { lossRate: 0 }, { spikeRate: 0 }]) {
    const c = { ...best, ...noise };
    if ((c.lossRate !== best.lossRate || c.spikeRate !== best.spikeRate) && await fails(c)) {
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
      if (complement.length < faults.length && await fails({ ...best, faults: complement })) {
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
    if (await fails(c)) {
      best = c;
      break;
    }
  }
  return best;
}
