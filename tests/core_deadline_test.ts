/**
 * Tests of `nextDeadline` (src/core/deadline.ts): the time a driver may sleep until. Unit
 * cases for the timers it must know, and the seeded simulation run with `deadlineCheck`, in
 * which every tick before the deadline must do nothing.
 */
import assert from "node:assert/strict";
import { nextDeadline } from "../src/core/deadline.ts";
import { generateScenario, runSimulation } from "../src/sim/simulator.ts";
import { appSpec, boot, HB, makeManifest } from "./helpers/core_fixtures.ts";

Deno.test("nextDeadline of an idle single node with healthy apps is Infinity", () => {
  const h = boot("alpha", makeManifest({ apps: [appSpec("web"), appSpec("db")] }));
  h.settle(h.tick(0), 0);
  assert.equal(h.state.role, "active");
  assert.equal(nextDeadline(h.state, 10), Infinity);
});

Deno.test("nextDeadline is the end of a restarted app's backoff, then of its restart window", () => {
  const manifest = makeManifest({
    apps: [appSpec("web", { restart: { limit: 3, windowMs: 60_000, backoffMs: 0 } })],
  });
  const h = boot("alpha", manifest);
  h.settle(h.tick(0), 0);
  h.settle(h.exit("web", 1_000), 1_000); // restarted at once (restart 1 of 3)
  assert.equal(h.state.apps["web"]?.phase, "running");
  assert.equal(nextDeadline(h.state, 1_000), 1_000 + 60_000, "the restart window closes");
});

Deno.test("nextDeadline of a node with a peer is its next heartbeat or the peer's silence", () => {
  const manifest = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: [appSpec("web")] });
  const a = boot("alpha", manifest);
  const b = boot("beta", manifest);
  a.tick(0);
  b.hear(a, 0);
  // The next heartbeat is due one interval after the last one.
  assert.equal(nextDeadline(a.state, 0), HB.intervalMs);
  // Between heartbeats, the earliest timer is the next beat or beta's view of alpha ageing out.
  b.tick(10);
  const d = nextDeadline(b.state, 10);
  assert.ok(d > 10 && d <= 10 + HB.intervalMs, `deadline ${d}`);
});

Deno.test("nextDeadline never lets a tick before it act (seeded simulation, deadlineCheck)", async () => {
  const failures: string[] = [];
  for (let seed = 1; seed <= 4; seed++) {
    for (const nodes of [2, 3] as const) {
      for (const witness of ["none", "http", "baton"] as const) {
        const r = await runSimulation(generateScenario(seed, { nodes, witness }), {
          deadlineCheck: true,
        });
        for (const v of r.violations) {
          failures.push(
            `seed ${seed}, ${nodes} nodes, witness ${witness}: ${v.invariant}: ${v.message}`,
          );
        }
      }
    }
  }
  assert.deepEqual(failures, []);
});
