import assert from "node:assert/strict";
import { fenceDeadline } from "../src/core/lease.ts";
import { GUARD_GRACE_MS, leaseOrder } from "../src/guard/lease.ts";
import { GuardProcess, uptimeClock } from "../src/guard/guard.ts";
import { isSameProcess, readProcStat } from "../src/supervisor/proc.ts";
import {
  cgroupPids,
  openNodeCgroups,
  prepareAppCgroup,
  removeClusterCgroups,
} from "../src/supervisor/cgroup.ts";
import { appSpec, boot, HB, makeManifest, runCluster } from "./helpers/core_fixtures.ts";
import { cgroupsWritable } from "./helpers/cgroups.ts";

const WEB = appSpec("web");

function pair(witness: boolean) {
  const m = makeManifest({ nodes: { alpha: 2, beta: 1 }, apps: [WEB], witness });
  const a = boot("alpha", m);
  const b = boot("beta", m);
  runCluster([a, b], 0, 8_000);
  assert.equal(a.state.role, "active");
  return { a, b, m };
}

Deno.test("fenceDeadline is the moment the core fences itself (witness and peer silent)", () => {
  const { a } = pair(true);
  a.witness(8_000, "baton");
  const deadline = fenceDeadline(a.state, a.state.activeSince)!;
  assert.equal(deadline, 8_000 + HB.fenceAfterMs);
  a.ticks(8_100, deadline - 1, 100);
  assert.equal(a.state.role, "active", "not before the deadline");
  a.tick(deadline);
  assert.equal(a.state.role, "standby", "at the deadline");
  assert.equal(fenceDeadline(a.state, a.state.activeSince), null, "a standby has no lease");
});

Deno.test("leaseOrder: an active with a witness is armed at its fence deadline plus the grace", () => {
  const { a } = pair(true);
  a.witness(8_000, "baton");
  const memory = { bootActiveSince: null, maintenanceSince: null };
  assert.deepEqual(leaseOrder(a.state, memory), {
    kind: "arm",
    deadline: 8_000 + HB.fenceAfterMs + GUARD_GRACE_MS,
  });
});

Deno.test("leaseOrder: no witness, a standby, or one node: no lease (disarm)", () => {
  const memory = { bootActiveSince: null, maintenanceSince: null };
  const { a, b } = pair(false);
  assert.deepEqual(leaseOrder(a.state, memory), { kind: "disarm" });
  assert.deepEqual(leaseOrder(b.state, memory), { kind: "disarm" });
  const solo = boot("solo", makeManifest({ nodes: { solo: 1 }, apps: [WEB], witness: true }));
  solo.settle(solo.tick(0), 0);
  assert.deepEqual(leaseOrder(solo.state, memory), { kind: "disarm" });
});

Deno.test("leaseOrder: after a restart the boot is no contact: nothing is sent until one", () => {
  const { a } = pair(true);
  // As if the agent restarted at 8 000 as active: activeSince is the boot, no answer yet.
  a.state.activeSince = 8_000;
  a.state.witness.lastAckAt = null;
  for (const p of Object.values(a.state.peers)) p.lastAckAt = null;
  const memory = { bootActiveSince: 8_000, maintenanceSince: null };
  assert.equal(leaseOrder(a.state, memory), null, "the guard keeps the previous lease");
  a.state.witness.lastAckAt = 8_200;
  assert.deepEqual(leaseOrder(a.state, memory), {
    kind: "arm",
    deadline: 8_200 + HB.fenceAfterMs + GUARD_GRACE_MS,
  });
});

Deno.test("leaseOrder: maintenance disarms only once every peer answered after it began", () => {
  const { a } = pair(true);
  a.witness(8_000, "baton");
  a.state.maintenance = true;
  const memory = { bootActiveSince: null, maintenanceSince: 8_500 };
  assert.equal(leaseOrder(a.state, memory)?.kind, "arm", "the peer may not know yet");
  a.state.peers["beta"]!.lastAckAt = 8_600;
  assert.deepEqual(leaseOrder(a.state, memory), { kind: "disarm" });
});

Deno.test("takeover: a standby does not take over from an active last heard in maintenance", () => {
  const { a, b } = pair(true);
  a.feed({ type: "command", id: "m", command: { type: "maintenance", on: true } }, 8_100);
  b.hear(a, 8_200);
  assert.equal(b.state.peers["alpha"]?.maintenance, true);
  for (let t = 8_300; t <= 20_000; t += 100) {
    b.witness(t, "baton");
    b.settle(b.tick(t), t);
  }
  assert.equal(b.state.role, "standby", "the lease is held by agreement");
  assert.deepEqual(b.running(), []);
});

// ---------------------------------------------------------------- the guard process

async function guardWorld() {
  const dir = await Deno.makeTempDir({ prefix: "baton_guard_" });
  const reports: string[] = [];
  const guard = new GuardProcess(`${dir}/guard`, (_l, kind) => reports.push(kind));
  guard.open();
  const victim = new Deno.Command("sleep", { args: ["60"], detached: true }).spawn();
  const start = readProcStat(victim.pid)!.startTime;
  guard.setTargets([`pg ${victim.pid} ${start}`]);
  const toUptime = uptimeClock();
  return {
    dir,
    guard,
    reports,
    victim,
    start,
    toUptime,
    async [Symbol.asyncDispose]() {
      guard.close();
      const pid = guard.status().pid;
      for (const p of [pid, victim.pid]) {
        try {
          if (p !== null) Deno.kill(p, "SIGKILL");
        } catch { /* gone */ }
      }
      await victim.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("GuardProcess: SIGKILLs its targets when the lease runs out, not while renewed", async () => {
  await using w = await guardWorld();
  const t0 = performance.now();
  w.guard.arm(w.toUptime(t0 + 300));
  await new Promise((r) => setTimeout(r, 150));
  w.guard.arm(w.toUptime(performance.now() + 300)); // renewed
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(isSameProcess(w.victim.pid, w.start), "renewed: still alive");
  const status = await w.victim.status;
  assert.equal(status.signal, "SIGKILL");
  assert.ok(Deno.readTextFileSync(`${w.dir}/guard/fenced`).includes("expired"));
});

Deno.test("GuardProcess: disarmed, it kills nothing; a second agent adopts the same guard", async () => {
  await using w = await guardWorld();
  w.guard.arm(w.toUptime(performance.now() + 200));
  w.guard.disarm();
  await new Promise((r) => setTimeout(r, 400));
  assert.ok(isSameProcess(w.victim.pid, w.start), "disarmed: alive");
  const pid = w.guard.status().pid;
  w.guard.close();
  const next = new GuardProcess(`${w.dir}/guard`, () => {});
  next.open();
  assert.equal(next.status().pid, pid, "adopted, not a second guard");
  next.arm(w.toUptime(performance.now() + 100));
  assert.equal((await w.victim.status).signal, "SIGKILL");
  next.close();
});

Deno.test("GuardProcess: a guard that dies is replaced at once with the same lease", async () => {
  await using w = await guardWorld();
  w.guard.arm(w.toUptime(performance.now() + 1_500));
  const first = w.guard.status().pid!;
  Deno.kill(first, "SIGKILL");
  const end = Date.now() + 5_000;
  while (w.guard.status().pid === first && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.notEqual(w.guard.status().pid, first);
  assert.ok(w.reports.includes("guard_replaced"));
  assert.equal((await w.victim.status).signal, "SIGKILL", "the new guard holds the same lease");
});

Deno.test({
  name: "GuardProcess: on expiry it kills a whole cgroup, setsid children and daemons included",
  ignore: !cgroupsWritable(),
  fn: async () => {
    await using w = await guardWorld();
    const tree = openNodeCgroups(`g${Deno.pid}x${crypto.randomUUID().slice(0, 6)}`, "alpha")!;
    const dir = prepareAppCgroup(tree, "esc")!;
    const app = new Deno.Command("sh", {
      args: [
        "-c",
        `echo $$ > ${dir}/cgroup.procs; setsid sleep 60 & (setsid sh -c 'sleep 60 & exit' &); ` +
        "exec sleep 60",
      ],
      detached: true,
    }).spawn();
    const end = Date.now() + 10_000;
    const sleeps = () =>
      cgroupPids(dir).filter((pid) => {
        try {
          return Deno.readTextFileSync(`/proc/${pid}/comm`).trim() === "sleep";
        } catch {
          return false;
        }
      });
    // The leader, its setsid child and the daemon, once the daemon's parent has exited.
    while (
      (sleeps().length < 3 || cgroupPids(dir).length !== 3) && Date.now() < end
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const members = cgroupPids(dir).map((pid) => ({ pid, start: readProcStat(pid)!.startTime }));
    assert.equal(members.length, 3);
    w.guard.setTargets([`cg ${dir}`]);
    w.guard.arm(w.toUptime(performance.now() + 100));
    assert.equal((await app.status).signal, "SIGKILL");
    while (members.some((m) => isSameProcess(m.pid, m.start)) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(members.filter((m) => isSameProcess(m.pid, m.start)), []);
    removeClusterCgroups(tree.dir.split("/").at(-2)!, { kill: true });
  },
});

Deno.test("GuardProcess: the fence is noted before the first kill, so poll at the app's exit already reports it", async () => {
  for (let round = 0; round < 3; round++) {
    await using w = await guardWorld();
    w.guard.arm(w.toUptime(performance.now() + 100));
    const status = await w.victim.status; // the parent sees the death...
    w.guard.poll(); // ...and looks at once, as the agent does before it handles an exit
    assert.equal(status.signal, "SIGKILL");
    assert.deepEqual(
      w.reports.filter((k) => k === "guard_fenced"),
      ["guard_fenced"],
      "reported once, at the exit",
    );
    w.guard.poll();
    await new Promise((r) => setTimeout(r, 150)); // the 100 ms check runs too: no second report
    assert.equal(w.reports.filter((k) => k === "guard_fenced").length, 1);
  }
});
