/**
 * The pure core alone starting N apps, no I/O (`core_start_bench.ts` times it).
 *
 * @module
 */
import { appSpec, CoreHarness, makeManifest } from "../../tests/helpers/core_fixtures.ts";
import { initNodeState } from "../../src/core/node_state.ts";

/** Start N apps through the core (with `dependsOn`: every app after a0); how many run. */
export function startThroughCore(n: number, dependsOn = false): number {
  const apps = Array.from({ length: n }, (_, i) =>
    appSpec(`a${i}`, {
      movable: false,
      ...(dependsOn && i > 0 ? { dependsOn: ["a0"] } : {}),
    }));
  const h = new CoreHarness(initNodeState("alpha", makeManifest({ apps }), "auto", 0), 1000, 0);
  let queue = h.feed({ type: "boot", persisted: null, adopted: [], lost: [] }, 0);
  let t = 0;
  for (let round = 0; round < n + 10 && h.running().length < n; round++) {
    const next = [];
    for (const a of queue) if (a.type === "spawn") next.push(...h.started(a.app, t));
    t += 100;
    queue = [...next, ...h.tick(t)];
  }
  return h.running().length;
}
