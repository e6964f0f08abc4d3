/**
 * The fault schedule acting on the simulated world: partitions, app crashes, failing checks,
 * sick hosts, paused and dead agents, host deaths and reboots, slow and failing disks,
 * reloads, operator commands, witness restarts; then the heal and the operator's repairs.
 *
 * @module
 */
import { assertNever } from "../core/assert.ts";
import type { Command } from "../core/types.ts";
import type { Manifest } from "../manifest/types.ts";
import type { WitnessArbiter } from "../witness/arbiter.ts";
import { buildManifest, type Fault, type Scenario, WITNESS } from "./scenario.ts";
import type { SimHost } from "./sim_host.ts";
import type { Rng, SimNetwork } from "./sim_network.ts";
import type { VirtualTime } from "./virtual_time.ts";

/** What the faults act on. */
export interface FaultWorld {
  readonly s: Scenario;
  readonly vt: VirtualTime;
  readonly hosts: Record<string, SimHost>;
  readonly net: SimNetwork;
  readonly arbiter: WitnessArbiter;
  readonly rngProc: Rng;
  readonly rngMisc: Rng;
  manifest: Manifest;
  /** Manifest version the operator reloads next. */
  version: number;
  /** Host each window fault resolved to when it started. */
  readonly resolved: Map<number, string>;
  world(who: string, text: string): void;
  startAgent(h: SimHost, delay: number): void;
  killAgent(h: SimHost): void;
  killHost(h: SimHost): void;
  reviveHost(h: SimHost): void;
  crashPid(h: SimHost, pid: number, detail: string): void;
}

function target(w: FaultWorld, t: string): SimHost | null {
  if (t === "standby") {
    const act = target(w, "active");
    return w.hosts[w.s.nodes.find((n) => n !== act?.name) ?? ""] ?? null;
  }
  if (t !== "active") return w.hosts[t] ?? null;
  for (const name of w.s.nodes) {
    const h = w.hosts[name];
    if (h?.live?.booted && h.live.agent.state.role === "active") return h;
  }
  return w.s.nodes.map((n) => w.hosts[n]!).find((h) => h.up) ?? null;
}

export function faultStart(w: FaultWorld, index: number): void {
  const f = w.s.faults[index];
  if (!f) return;
  if (f.kind === "partition") {
    w.world("net", `partition ${f.label} starts`);
    for (const [a, b] of f.links) w.net.block(a, b);
    return;
  }
  if (f.kind === "witness_restart") {
    w.world(WITNESS, "witness restarts: forgets every beat, listens for a lease");
    w.arbiter.restart(w.vt.now);
    return;
  }
  const h = target(w, f.host);
  if (!h) return;
  w.resolved.set(index, h.name);
  applyStart(w, h, f);
}

function applyStart(
  w: FaultWorld,
  h: SimHost,
  f: Exclude<Fault, { kind: "partition" | "witness_restart" }>,
): void {
  switch (f.kind) {
    case "app_crash": {
      const p = h.procs.running().find((x) => x.app === f.app);
      w.world(h.name, `fault: crash ${f.app}${p ? ` pid ${p.pid}` : " (not running)"}`);
      if (p) h.procs.kill(p.pid, "exited with code 1 (crash)");
      return;
    }
    case "check_fail":
      w.world(h.name, `fault: checks of ${f.app} start failing`);
      h.checkFail.set(f.app, (h.checkFail.get(f.app) ?? 0) + 1);
      return;
    case "sick_host":
      w.world(h.name, "fault: host turns sick (movable apps crash soon after start)");
      h.sick++;
      for (const p of h.procs.running()) {
        if (p.app && w.manifest.apps[p.app]?.movable) {
          const pid = p.pid;
          w.vt.set(
            () => w.crashPid(h, pid, "exited with code 1 (sick host)"),
            w.rngProc.int(10, 300),
          );
        }
      }
      return;
    case "agent_crash":
      if (h.up) w.killAgent(h);
      return;
    case "agent_pause":
      if (h.live && f.edge) {
        const when = f.edge === "before_renewal" ? "before" : "after";
        w.world(h.name, `fault: agent will pause (SIGSTOP) just ${when} its next lease renewal`);
        h.pauseEdge = f.edge;
      } else if (h.live) {
        w.world(h.name, "fault: agent paused (SIGSTOP); its apps keep running");
        h.live.group.freeze();
      }
      return;
    case "reboot":
    case "host_death":
      w.killHost(h);
      return;
    case "slow_disk":
      w.world(h.name, `fault: state writes take ${f.delayMs} ms`);
      h.slowWrites.push(f.delayMs);
      return;
    case "failing_disk":
      w.world(h.name, "fault: state writes fail");
      h.failingWrites++;
      return;
    case "reload":
      return reload(w, h, f.spec);
    case "maintenance":
      return command(w, h, { type: "maintenance", on: true });
    case "command":
      return command(w, h, f.command);
    case "rogue_process": {
      const sp = h.procs.startExternal(f.app);
      h.startedAt.set(sp.pid, w.vt.now);
      w.world(h.name, `fault: someone starts ${f.app} by hand (pid ${sp.pid})`);
      return;
    }
    default:
      assertNever(f);
  }
}

export function faultEnd(w: FaultWorld, index: number): void {
  const f = w.s.faults[index];
  if (!f) return;
  if (f.kind === "partition") {
    w.world("net", `partition ${f.label} heals`);
    for (const [a, b] of f.links) w.net.unblock(a, b);
    return;
  }
  const h = w.hosts[w.resolved.get(index) ?? ""];
  if (!h) return;
  switch (f.kind) {
    case "check_fail":
      h.checkFail.set(f.app, Math.max(0, (h.checkFail.get(f.app) ?? 0) - 1));
      return;
    case "sick_host":
      h.sick = Math.max(0, h.sick - 1);
      return;
    case "agent_crash":
      if (h.up && !h.live) restartAgent(w, h);
      return;
    case "agent_pause":
      h.pauseEdge = null;
      if (h.live?.group.frozen) {
        w.world(h.name, "agent resumes (SIGCONT)");
        h.live.group.thaw();
      }
      return;
    case "reboot":
    case "host_death":
      return w.reviveHost(h);
    case "slow_disk": {
      const i = h.slowWrites.indexOf(f.delayMs);
      if (i >= 0) h.slowWrites.splice(i, 1);
      return;
    }
    case "failing_disk":
      h.failingWrites = Math.max(0, h.failingWrites - 1);
      return;
    case "maintenance":
      return command(w, h, { type: "maintenance", on: false });
    default:
      return;
  }
}

function restartAgent(w: FaultWorld, h: SimHost): void {
  w.startAgent(h, 0);
  h.agentBackAt = w.vt.now;
}

/** The operator reloads every node's manifest, this one first, a little apart. */
function reload(w: FaultWorld, first: SimHost, spec: boolean): void {
  if (spec) w.version++;
  w.manifest = buildManifest(w.s, w.version);
  w.world(first.name, `operator reloads the manifest${spec ? " (web changed)" : ""}`);
  const order = [first, ...Object.values(w.hosts).filter((x) => x !== first)];
  order.forEach((h, i) => {
    w.vt.set(() => {
      const inc = h.live;
      if (inc?.booted) inc.group.set(() => void inc.agent.reload(), 0);
    }, i === 0 ? 0 : w.rngMisc.int(0, 300));
  });
}

/** An operator command, as the CLI sends it to the node's API. */
export function command(w: FaultWorld, h: SimHost, command: Command): void {
  const inc = h.live;
  if (!h.up || !inc?.booted) return;
  w.world(h.name, `operator: ${command.type}${"on" in command ? ` ${command.on}` : ""}`);
  inc.group.set(() => {
    if (command.type === "clear") h.clearedAt = w.vt.now;
    void inc.agent.command(command);
  }, 0);
}

export function heal(w: FaultWorld): void {
  w.world("world", "faults stop: network heals, hosts and agents come back");
  w.net.healAll();
  w.net.setNoise({ lossRate: 0, spikeRate: 0 });
  for (const h of Object.values(w.hosts)) {
    h.sick = 0;
    h.checkFail.clear();
    h.slowWrites = [];
    h.failingWrites = 0;
  }
  operatorRound(w, true);
}

/** The operator repairs: powers hosts on, starts and resumes agents, clears failed nodes. */
export function operatorRound(w: FaultWorld, atHeal: boolean): void {
  for (const h of Object.values(w.hosts)) {
    w.reviveHost(h);
    if (h.up && !h.live) restartAgent(w, h);
    if (h.live?.group.frozen) h.live.group.thaw();
  }
  const anyActive = Object.values(w.hosts).some((h) => h.live?.agent.state.role === "active");
  for (const h of Object.values(w.hosts)) {
    const s = h.live?.booted ? h.live.agent.state : null;
    if (!s) continue;
    if (s.maintenance) command(w, h, { type: "maintenance", on: false });
    if (s.role === "failed" && (atHeal || !anyActive)) command(w, h, { type: "clear" });
  }
}
