/**
 * One contract for the real timers and the simulation's virtual ones (`sim/virtual_time.ts`):
 * the agent, its check loops and its stop timeouts rely on exactly this. Timing is only ever
 * checked as a lower bound (a timer never fires early), never as an upper one.
 */
import assert from "node:assert/strict";
import { realTimers, type Timers } from "../src/agent/clock.ts";
import { VirtualTime } from "../src/sim/virtual_time.ts";

interface TimersUnderTest {
  timers: Timers;
  now(): number;
  /** Let `ms` pass (real sleep, or run the virtual loop). */
  pass(ms: number): Promise<void>;
}

const makers: Record<string, () => TimersUnderTest> = {
  real: () => ({
    timers: realTimers,
    now: () => performance.now(),
    pass: (ms) => new Promise((r) => setTimeout(r, ms)),
  }),
  virtual: () => {
    const vt = new VirtualTime();
    const g = vt.group();
    return { timers: g, now: () => g.now(), pass: (ms) => vt.run(vt.now + ms, () => false) };
  },
};

for (const [kind, make] of Object.entries(makers)) {
  Deno.test(`timers (${kind}): a timer fires once, not before its delay`, async () => {
    const t = make();
    const start = t.now();
    const fired: number[] = [];
    t.timers.set(() => fired.push(t.now() - start), 30);
    await t.pass(80);
    assert.equal(fired.length, 1);
    assert.ok(fired[0]! >= 29, `expected >= 30 ms, found ${fired[0]}`);
  });

  Deno.test(`timers (${kind}): clear cancels a pending timer; clearing twice is harmless`, async () => {
    const t = make();
    let fired = 0;
    const h = t.timers.set(() => fired++, 10);
    t.timers.clear(h);
    t.timers.clear(h);
    await t.pass(40);
    assert.equal(fired, 0);
  });

  Deno.test(`timers (${kind}): timers fire in deadline order, a timer set inside one too`, async () => {
    const t = make();
    const order: string[] = [];
    t.timers.set(() => order.push("b"), 40);
    t.timers.set(() => {
      order.push("a");
      t.timers.set(() => order.push("c"), 60);
    }, 5);
    await t.pass(150);
    assert.deepEqual(order, ["a", "b", "c"]);
  });

  Deno.test(`timers (${kind}): microtasks a timer queues run before the next timer`, async () => {
    const t = make();
    const order: string[] = [];
    t.timers.set(() => {
      Promise.resolve().then(() => order.push("micro")).then(() => order.push("micro2"));
    }, 5);
    t.timers.set(() => order.push("next"), 20);
    await t.pass(60);
    assert.deepEqual(order, ["micro", "micro2", "next"]);
  });
}

Deno.test("virtual timers: a frozen group runs nothing until thawed, then what fell due", async () => {
  const vt = new VirtualTime();
  const g = vt.group();
  const world: number[] = [];
  const agent: number[] = [];
  g.set(() => agent.push(vt.now), 100);
  vt.set(() => world.push(vt.now), 150);
  g.freeze();
  await vt.run(200, () => false);
  assert.deepEqual(agent, []);
  assert.deepEqual(world, [150]);
  g.thaw();
  await vt.run(300, () => false);
  assert.deepEqual(agent, [200]);
});

Deno.test("virtual timers: a killed group never runs again", async () => {
  const vt = new VirtualTime();
  const g = vt.group();
  let fired = 0;
  g.set(() => fired++, 10);
  g.kill();
  g.set(() => fired++, 10);
  await vt.run(100, () => false);
  assert.equal(fired, 0);
});
