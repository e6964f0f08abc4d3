/**
 * `deno task bench:core`: the pure core alone starting N apps (boot, then one `app_started` per
 * spawn, ticks in between), with no I/O: what the decision code costs a start of N apps, to see
 * its growth with N (1,000 / 250 apps: ×16 is O(N²) in all, ×64 would be O(N³), as a scan of
 * every app per app per step once made it: 60 s at 1,000 apps).
 *
 * @module
 */
import { startThroughCore } from "./core_start.ts";

for (const n of [250, 1000]) {
  Deno.bench({ name: `core: start ${n} apps`, group: "start", n: 3, warmup: 1 }, () => {
    if (startThroughCore(n) !== n) throw new Error(`expected ${n} apps running`);
  });
}
Deno.bench({ name: "core: start 1000 apps, each dependsOn a0", n: 3, warmup: 1 }, () => {
  if (startThroughCore(1000, true) !== 1000) throw new Error("expected 1000 apps running");
});
