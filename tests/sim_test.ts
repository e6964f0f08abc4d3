import assert from "node:assert/strict";
import { initNodeState, toPersisted } from "../src/core/node_state.ts";
import type { NodeState, Role } from "../src/core/types.ts";
import {
  checkLiveness,
  checkSpawn,
  checkWorld,
  graceMs,
  type HostView,
  newMonitor,
  type ProcView,
  type WitnessKind,
  type WorldView,
} from "../src/sim/invariants.ts";
import { mixSeed, Rng, SimNetwork } from "../src/sim/sim_network.ts";
import {
  buildManifest,
  formatTrace,
  generateScenario,
  runSimulation,
  type Scenario,
  shrinkScenario,
} from "../src/sim/simulator.ts";

// ---------------------------------------------------------------- a hand-built world

const SCENARIO = generateScenario(1, { nodes: 2, witness: "baton" });
const MANIFEST = buildManifest(SCENARIO);

function host(name: string, role: Role | null, epoch: number): HostView {
  let state: NodeState | null = null;
  if (role !== null) {
    state = initNodeState(name, MANIFEST, "auto", 0);
    state.role = role;
    state.epoch = epoch;
  }
  return {
    name,
    up: true,
    agent: state ? { incarnation: 1, startedAt: 0, booted: true, state } : null,
    agentBackAt: null,
    persisted: state ? toPersisted(state) : null,
    clearedAt: null,
    lastReceived: { alpha: 0, beta: 0 },
  };
}

function world(
  now: number,
  hosts: HostView[],
  procs: ProcView[] = [],
  witness: WitnessKind = "baton",
): WorldView {
  return {
    now,
    manifest: MANIFEST,
    witness,
    hosts: Object.fromEntries(hosts.map((h) => [h.name, h])),
    procs,
  };
}

function proc(host: string, app: string, pid: number): ProcView {
  return { pid, app, host, startedAt: 0, managed: true };
}

// ---------------------------------------------------------------- the PRNG and the network

Deno.test("Rng gives the same sequence for the same seed and another for another seed", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const seqA = Array.from({ length: 20 }, () => a.next());
  const seqB = Array.from({ length: 20 }, () => b.next());
  const seqC = Array.from({ length: 20 }, () => c.next());
  assert.deepEqual(seqA, seqB);
  assert.notDeepEqual(seqA, seqC);
  assert.ok(seqA.every((x) => x >= 0 && x < 1));
  assert.notEqual(mixSeed(1, "net"), mixSeed(1, "ticks"));
});

Deno.test("SimNetwork drops every message on a blocked link, in that direction only", () => {
  const net = new SimNetwork(new Rng(7), { lossRate: 0, spikeRate: 0 });
  net.block("alpha", "beta");
  for (let i = 0; i < 50; i++) {
    assert.equal(net.transmit("alpha", "beta"), null);
    const d = net.transmit("beta", "alpha");
    assert.ok(d !== null && d >= 1 && d <= 16, `expected a delay in 1..16, got ${d}`);
  }
  net.unblock("alpha", "beta");
  assert.notEqual(net.transmit("alpha", "beta"), null);
});

Deno.test("SimNetwork one-way block: the blocked side cannot call, its replies still go back", () => {
  const conn = new SimNetwork(new Rng(7), { lossRate: 0, spikeRate: 0 }, "connection");
  conn.block("alpha", "beta");
  assert.equal(conn.transmit("alpha", "beta"), null, "alpha cannot open a connection to beta");
  assert.notEqual(conn.transmit("beta", "alpha"), null, "beta's request reaches alpha");
  assert.notEqual(
    conn.transmitReply("alpha", "beta"),
    null,
    "alpha's reply uses beta's connection",
  );
  assert.equal(conn.transmitReply("beta", "alpha"), null, "no connection alpha→beta to reply on");
  const msg = new SimNetwork(new Rng(7), { lossRate: 0, spikeRate: 0 }, "message");
  msg.block("alpha", "beta");
  assert.notEqual(msg.transmit("beta", "alpha"), null);
  assert.equal(msg.transmitReply("alpha", "beta"), null, "message model: the reply is lost too");
});

// ---------------------------------------------------------------- the checker can fail

Deno.test("checkWorld detects two live nodes active at the same epoch", () => {
  const v = checkWorld(
    newMonitor(),
    world(1_000, [host("alpha", "active", 3), host("beta", "active", 3)]),
  );
  assert.ok(v.some((x) => x.invariant === "one-active-per-epoch"), JSON.stringify(v));
});

Deno.test("checkWorld accepts one active and one standby at the same epoch", () => {
  const v = checkWorld(
    newMonitor(),
    world(1_000, [host("alpha", "active", 3), host("beta", "standby", 3)], [
      proc("alpha", "web", 10),
      proc("alpha", "db", 11),
    ]),
  );
  assert.deepEqual(v, []);
});

Deno.test("checkWorld detects a movable app on two hosts with both agents up and a witness", () => {
  const v = checkWorld(
    newMonitor(),
    world(1_000, [host("alpha", "active", 3), host("beta", "active", 4)], [
      proc("alpha", "web", 10),
      proc("beta", "web", 20),
    ]),
  );
  assert.ok(v.some((x) => x.invariant === "single-runner"), JSON.stringify(v));
});

Deno.test("checkWorld does not excuse an overlap while an agent is down (physical invariant)", () => {
  const down = host("alpha", null, 0);
  const procs = [proc("alpha", "web", 10), proc("beta", "web", 20)];
  const v = checkWorld(newMonitor(), world(1_000, [down, host("beta", "active", 2)], procs));
  assert.ok(v.some((x) => x.invariant === "single-runner"), JSON.stringify(v));
});

Deno.test("checkWorld lets the disk lag the memory only while a state write is pending", () => {
  const alpha = host("alpha", "active", 2);
  alpha.persisted = { ...toPersisted(alpha.agent!.state), role: "standby" };
  alpha.writing = true;
  assert.deepEqual(checkWorld(newMonitor(), world(100, [alpha])), []);
});

Deno.test("checkWorld excuses a no-witness split only while the nodes do not hear each other", () => {
  const monitor = newMonitor();
  const alpha = host("alpha", "active", 1);
  const beta = host("beta", "standby", 1);
  alpha.lastReceived = { beta: 0 };
  beta.lastReceived = { alpha: 0 };
  const procs = [proc("alpha", "web", 10)];
  assert.deepEqual(checkWorld(monitor, world(100, [alpha, beta], procs, "none")), []);
  // beta heard nothing from alpha for deadAfter, takes over: excused while the split lasts.
  const beta2 = host("beta", "active", 2);
  beta2.lastReceived = { alpha: 0 };
  const both = [...procs, proc("beta", "web", 20)];
  assert.deepEqual(checkWorld(monitor, world(5_000, [alpha, beta2], both, "none")), []);
  // They hear each other again at 6 s; after the grace the overlap is a violation.
  alpha.lastReceived = { beta: 6_000 };
  beta2.lastReceived = { alpha: 6_000 };
  assert.deepEqual(checkWorld(monitor, world(6_000, [alpha, beta2], both, "none")), []);
  const v = checkWorld(monitor, world(6_000 + graceMs(MANIFEST) + 1, [alpha, beta2], both, "none"));
  assert.ok(v.some((x) => x.invariant === "single-runner"), JSON.stringify(v));
});

Deno.test("checkWorld detects an epoch going down across an agent restart", () => {
  const monitor = newMonitor();
  assert.deepEqual(checkWorld(monitor, world(100, [host("alpha", "standby", 5)])), []);
  const v = checkWorld(monitor, world(200, [host("alpha", "standby", 4)]));
  assert.ok(v.some((x) => x.invariant === "epoch-monotonic"), JSON.stringify(v));
});

Deno.test("checkWorld detects a persisted role that lags the one in memory", () => {
  const alpha = host("alpha", "active", 2);
  alpha.persisted = { ...toPersisted(alpha.agent!.state), role: "standby" };
  const v = checkWorld(newMonitor(), world(100, [alpha]));
  assert.ok(v.some((x) => x.invariant === "durable-state"), JSON.stringify(v));
});

Deno.test("checkWorld detects a failed node leaving failed without clear or cooldown", () => {
  const monitor = newMonitor();
  assert.deepEqual(checkWorld(monitor, world(100, [host("alpha", "failed", 2)])), []);
  const v = checkWorld(monitor, world(200, [host("alpha", "standby", 2)]));
  assert.ok(v.some((x) => x.invariant === "failed-stays-failed"), JSON.stringify(v));
  // With a clear in between, the same transition is fine.
  const m2 = newMonitor();
  checkWorld(m2, world(100, [host("alpha", "failed", 2)]));
  const cleared = host("alpha", "standby", 2);
  cleared.clearedAt = 150;
  assert.deepEqual(checkWorld(m2, world(200, [cleared])), []);
});

Deno.test("checkSpawn detects a movable spawn under a role that is not persisted active", () => {
  const alpha = host("alpha", "standby", 2);
  const v = checkSpawn(
    "alpha",
    alpha.persisted,
    { app: "web", epoch: 3 },
    MANIFEST,
    0,
  );
  assert.equal(v?.invariant, "durable-before-spawn");
  const ok = host("alpha", "active", 3);
  assert.equal(
    checkSpawn("alpha", ok.persisted, { app: "web", epoch: 3 }, MANIFEST, 0),
    null,
  );
});

Deno.test("checkLiveness detects no active and a movable app not running", () => {
  const v = checkLiveness(world(30_000, [host("alpha", "standby", 2), host("beta", "standby", 2)]));
  assert.ok(v.some((x) => x.message.includes("exactly one active")), JSON.stringify(v));
  assert.ok(v.some((x) => x.message.includes("movable web")), JSON.stringify(v));
});

// ---------------------------------------------------------------- whole runs

Deno.test("runSimulation is deterministic: the same seed gives the identical trace", async () => {
  for (const seed of [3, 17]) {
    const s = generateScenario(seed, { nodes: 3, faultMs: 8_000, settleMs: 6_000 });
    const a = await runSimulation(s, { trace: true });
    const b = await runSimulation(
      generateScenario(seed, { nodes: 3, faultMs: 8_000, settleMs: 6_000 }),
      {
        trace: true,
      },
    );
    assert.equal(formatTrace(a, true), formatTrace(b, true));
    assert.deepEqual(a.violations, b.violations);
    assert.equal(a.coreSteps, b.coreSteps);
    assert.ok(a.coreSteps > 1_000, `expected a real run, got ${a.coreSteps} steps`);
  }
  const other = await runSimulation(
    generateScenario(4, { nodes: 3, faultMs: 8_000, settleMs: 6_000 }),
    {
      trace: true,
    },
  );
  const first = await runSimulation(
    generateScenario(3, { nodes: 3, faultMs: 8_000, settleMs: 6_000 }),
    {
      trace: true,
    },
  );
  assert.notEqual(formatTrace(first, true), formatTrace(other, true));
});

Deno.test("runSimulation: 100 seeds with 2 nodes and 100 with 3 nodes hold every invariant", async () => {
  const failures: string[] = [];
  for (const nodes of [2, 3] as const) {
    for (let seed = 1; seed <= 100; seed++) {
      const r = await runSimulation(generateScenario(seed, { nodes }));
      assert.equal(r.truncated, false);
      const v = r.violations[0];
      if (v) {
        failures.push(
          `deno run scripts/sim.ts --seed ${seed} --nodes ${nodes} --trace: [${v.invariant}] ${v.message}`,
        );
      }
    }
  }
  assert.deepEqual(failures, [], `seeds that broke an invariant:\n${failures.join("\n")}`);
});

Deno.test("runSimulation detects a movable app started by hand on the standby", async () => {
  const base = generateScenario(5, { nodes: 2, witness: "baton", faultMs: 6_000, settleMs: 4_000 });
  const s: Scenario = {
    ...base,
    faults: [{ kind: "rogue_process", at: 3_000, host: "standby", app: "web" }],
  };
  const r = await runSimulation(s);
  assert.equal(r.violations[0]?.invariant, "single-runner", JSON.stringify(r.violations));
  assert.ok(
    r.endedAt >= 3_000 && r.endedAt < 3_100,
    `expected the run to stop at 3 s, got ${r.endedAt}`,
  );
});

Deno.test("shrinkScenario keeps the violation and removes the faults that do not matter", async () => {
  const base = generateScenario(9, { nodes: 3, witness: "baton", faultMs: 8_000, settleMs: 4_000 });
  const s: Scenario = {
    ...base,
    lossRate: 0.05,
    faults: [
      { kind: "command", at: 1_500, host: "beta", command: { type: "maintenance", on: true } },
      { kind: "app_crash", at: 2_000, host: "active", app: "db" },
      { kind: "rogue_process", at: 3_000, host: "standby", app: "web" },
      { kind: "check_fail", at: 2_500, until: 2_900, host: "active", app: "web" },
      { kind: "agent_crash", at: 6_000, until: 7_000, host: "gamma" },
    ],
  };
  assert.equal((await runSimulation(s)).violations[0]?.invariant, "single-runner");
  const small = await shrinkScenario(s, "single-runner", { budget: 100 });
  assert.equal((await runSimulation(small)).violations[0]?.invariant, "single-runner");
  assert.deepEqual(small.faults.map((f) => f.kind), ["rogue_process"]);
  assert.equal(small.lossRate, 0);
  assert.deepEqual(
    await shrinkScenario(s, "single-runner", { budget: 100 }),
    small,
    "deterministic",
  );
});

Deno.test("runSimulation runs the real Agent: the guard kills a paused active's apps before the standby starts them", async () => {
  // With a witness, heartbeat 100 ms / deadAfter 500 ms: SIGSTOP of the active's agent for
  // 3 s (at any moment, and just before or just after a lease renewal). Its apps would keep
  // running; the host's guard (the real GuardLeaseDriver over the twin) SIGKILLs them when the
  // lease runs out, before the standby takes over at deadAfter: no duplicate.
  const base = generateScenario(2, { nodes: 2, witness: "baton", faultMs: 8_000, settleMs: 6_000 });
  for (const edge of [null, "before_renewal", "after_renewal"] as const) {
    const pause = { kind: "agent_pause", at: 3_000, until: 6_000, host: "active" } as const;
    const s: Scenario = {
      ...base,
      lossRate: 0,
      spikeRate: 0,
      faults: [edge === null ? pause : { ...pause, edge }],
    };
    const r = await runSimulation(s, { trace: true });
    assert.deepEqual(r.violations, [], `edge ${edge}`);
    const trace = formatTrace(r);
    assert.ok(trace.includes("paused (SIGSTOP)"), `edge ${edge}: the pause happened`);
    const lines = trace.split("\n");
    const killed = lines.findIndex((l) =>
      l.includes("alpha") && l.includes("guard: lease expired")
    );
    const started = lines.findIndex((l) => l.includes("beta") && l.includes("process web"));
    assert.ok(killed >= 0 && started > killed, `edge ${edge}: guard kill before beta's start`);
    // The same pause without the guard (`--no-guard`, baton before the guard): the paused
    // agent's app keeps running while beta starts it, and the physical invariant says so.
    const bare = await runSimulation(s, { noGuard: true });
    assert.ok(
      bare.violations.some((v) => v.invariant === "single-runner"),
      `edge ${edge}: without the guard the duplicate is found`,
    );
  }
});

Deno.test("runSimulation without agent faults draws the schedules it drew before the guard", () => {
  const on = generateScenario(41);
  const off = generateScenario(41, { agentFaults: false });
  assert.ok(on.faults.some((f) => f.kind === "agent_crash"), "seed 41 draws an agent death");
  assert.ok(!off.faults.some((f) => ["agent_crash", "agent_pause", "reboot"].includes(f.kind)));
});

Deno.test("runSimulation: slow and failing state writes never let a spawn run ahead of the disk", async () => {
  const failures: string[] = [];
  for (let seed = 1; seed <= 20; seed++) {
    const base = generateScenario(seed, { nodes: 2, faultMs: 10_000, settleMs: 8_000 });
    const s: Scenario = {
      ...base,
      faults: [
        ...base.faults,
        { kind: "slow_disk", at: 1_500, until: 4_000, host: "active", delayMs: 300 },
        { kind: "failing_disk", at: 2_000, until: 3_000, host: "standby" },
        { kind: "command", at: 2_100, host: "active", command: { type: "switchover", to: null } },
        { kind: "reload", at: 2_200, host: "active", spec: true },
      ].sort((a, b) => a.at - b.at) as Scenario["faults"],
    };
    const v = (await runSimulation(s)).violations[0];
    if (v) failures.push(`seed ${seed}: [${v.invariant}] ${v.message}`);
  }
  assert.deepEqual(failures, []);
});

Deno.test("runSimulation with survivor fencing: the fence powers the silent host off before the apps start; 30 seeds hold every invariant", async () => {
  const failures: string[] = [];
  let fenced = 0;
  for (const nodes of [2, 3] as const) {
    for (let seed = 1; seed <= 15; seed++) {
      const r = await runSimulation(generateScenario(seed, { nodes, survivorFence: true }), {
        trace: true,
      });
      if (formatTrace(r, true).includes("powers")) fenced++;
      const v = r.violations[0];
      if (v) {
        failures.push(
          `deno run scripts/sim.ts --seed ${seed} --nodes ${nodes} --survivor-fence --trace: ` +
            `[${v.invariant}] ${v.message}`,
        );
      }
    }
  }
  assert.deepEqual(failures, [], `seeds that broke an invariant:\n${failures.join("\n")}`);
  assert.ok(fenced >= 5, `expected survivor fences in several runs, found ${fenced}`);
});
