// The GuardPort contract: the real guard (bash over its FIFO) and the simulation's twin
// (src/sim/sim_guard.ts) behave alike for what the lease driver relies on.
import assert from "node:assert/strict";
import { GuardProcess, type GuardReport, uptimeClock } from "../src/guard/guard.ts";
import type { GuardPort } from "../src/guard/lease_driver.ts";
import { isSameProcess, readProcStat } from "../src/supervisor/proc.ts";
import { simGuardHost } from "../src/sim/sim_guard.ts";
import { type Incarnation, newHost } from "../src/sim/sim_host.ts";
import { Rng } from "../src/sim/sim_network.ts";
import { VirtualTime } from "../src/sim/virtual_time.ts";

interface Bed {
  port(report: GuardReport): GuardPort;
  /** The guard's clock `ms` from now. */
  uptimeIn(ms: number): number;
  sleep(ms: number): Promise<void>;
  alive(): boolean;
  /** Resolves once the victim is dead. */
  killed(): Promise<void>;
  target: string;
  dispose(): Promise<void>;
}

async function realBed(): Promise<Bed> {
  const dir = await Deno.makeTempDir({ prefix: "baton_guard_port_" });
  const victim = new Deno.Command("sleep", { args: ["60"], detached: true }).spawn();
  const start = readProcStat(victim.pid)!.startTime;
  const toUptime = uptimeClock();
  const ports: GuardProcess[] = [];
  return {
    port: (report) => {
      const p = new GuardProcess(`${dir}/guard`, report);
      ports.push(p);
      return p;
    },
    uptimeIn: (ms) => toUptime(performance.now() + ms),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    alive: () => isSameProcess(victim.pid, start),
    killed: () => victim.status.then(() => {}),
    target: `pg ${victim.pid} ${start}`,
    dispose: async () => {
      for (const p of ports) {
        p.close();
        try {
          const pid = p.status().pid;
          if (pid !== null) Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      try {
        Deno.kill(victim.pid, "SIGKILL");
      } catch { /* gone */ }
      await victim.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function simBed(): Promise<Bed> {
  const vt = new VirtualTime();
  const world = { vt, rngGuard: new Rng(1), guardOff: false, world: () => {} };
  const host = newHost("alpha", 1000);
  await vt.run(5_000, () => false); // the host has been up for a while
  const inc = {
    n: 1,
    group: vt.group(),
    startedAt: vt.now,
    runner: { report: () => {} },
  } as unknown as Incarnation;
  host.live = inc;
  const spawned = await host.procs.spawn({
    app: "web",
    command: ["web"],
    cwd: null,
    env: {},
    logDir: "/l",
  });
  const guardHost = simGuardHost(world, host, inc);
  const alive = () => host.procs.running().some((p) => p.pid === spawned.pid);
  return {
    port: (report) => guardHost.port(report),
    uptimeIn: (ms) => guardHost.toUptime(inc.group.now() + ms),
    sleep: (ms) => vt.run(vt.now + ms, () => false),
    alive,
    killed: () => vt.run(vt.now + 60_000, () => !alive()),
    target: `pg ${spawned.pid} ${spawned.startTime}`,
    dispose: () => Promise.resolve(),
  };
}

for (const [name, make] of [["real guard", realBed], ["sim twin", simBed]] as const) {
  Deno.test(`GuardPort contract (${name}): disarm holds, a second port adopts, expiry kills`, async () => {
    const bed = await make();
    try {
      const reports: string[] = [];
      const first = bed.port((_l, kind) => reports.push(kind));
      first.open();
      first.setTargets([bed.target]);
      // 1 s: the real guard reads its orders one by one, and one read after its own deadline
      // fences before the disarm behind it is read (a starved guard kills more, never less).
      first.arm(bed.uptimeIn(1_000));
      first.disarm();
      await bed.sleep(1_300);
      assert.ok(bed.alive(), `disarmed: the target lives ${reports}`);
      assert.equal(first.status().lease.kind, "off");
      const pid = first.status().pid;
      first.close();
      const second = bed.port((_l, kind) => reports.push(kind));
      second.open();
      assert.equal(second.status().pid, pid, "adopted, not a second guard");
      assert.ok(reports.includes("guard"), "the adoption is reported");
      second.arm(bed.uptimeIn(100));
      assert.ok(bed.alive(), "before the deadline: alive");
      await bed.killed();
      assert.equal(bed.alive(), false);
      for (let i = 0; i < 50 && !reports.includes("guard_fenced"); i++) await bed.sleep(100);
      assert.ok(reports.includes("guard_fenced"), `the fence is reported: ${reports}`);
      second.close();
    } finally {
      await bed.dispose();
    }
  });
}
