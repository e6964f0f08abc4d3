/**
 * The simulated host's guard (the twin of `guard/guard_script.ts` and of the FIFO talk in
 * `guard/guard.ts`). The agent runs the real `GuardLeaseDriver` (the same pure `leaseOrder`,
 * the same targets); only the guard process and its clock are simulated:
 *
 * - one guard process per host, started by the first agent with peers and adopted by every
 *   later one (it survives agent death and pause), gone when the host dies or reboots;
 * - its lease deadline is in the host's boot clock (virtual ms since the host came up, like
 *   /proc/uptime); the agent's core clock is converted as the real driver does;
 * - when the deadline passes it SIGKILLs its targets (`pg <pid> <starttime>`: only if that
 *   process still has that start time) after a seeded kill latency of 0–100 ms (the real
 *   guard's measured worst case is ≈ 95 ms on a loaded box, docs/guard.md), whether or not the
 *   agent runs; an order that arrives after the deadline does not undo that fence;
 * - the agent hears of a fence as the real one does (`guard_fenced`, within its 100 ms check).
 *
 * @module
 */
import type { GuardLease, GuardReport } from "../guard/guard.ts";
import type { GuardHost, GuardPort } from "../guard/lease_driver.ts";
import type { Incarnation, SimGuard, SimHost } from "./sim_host.ts";
import type { Rng } from "./sim_network.ts";
import type { VirtualTime } from "./virtual_time.ts";

export type { SimGuard } from "./sim_host.ts";

/** Most kill latency after expiry (ms), drawn uniformly from 0 to this. */
export const GUARD_KILL_LATENCY_MAX_MS = 100;

/** What the twin needs of the world. */
export interface GuardWorld {
  readonly vt: VirtualTime;
  readonly rngGuard: Rng;
  /** `--no-guard`: the guard twin never kills (baton before the guard existed). */
  readonly guardOff: boolean;
  world(who: string, text: string): void;
}

/** The host's boot clock (ms since it came up) now. */
export function hostUptime(w: GuardWorld, h: SimHost): number {
  return w.vt.now - h.bootAt;
}

/** The host's guard dies with it (power loss, reboot). */
export function guardGone(w: GuardWorld, h: SimHost): void {
  const g = h.guard;
  if (!g) return;
  if (g.timer !== null) w.vt.clear(g.timer);
  h.guard = null;
}

/** The {@linkcode GuardHost} one agent process on `h` sees. */
export function simGuardHost(w: GuardWorld, h: SimHost, inc: Incarnation): GuardHost {
  return {
    unavailable: () => null,
    port: (report) => new SimGuardPort(w, h, inc, report),
    // The agent's core clock reads 0 when its process started; the host's when it booted.
    toUptime: (now) => now + inc.startedAt - h.bootAt,
  };
}

/** One agent's connection to its host's guard (the twin of `GuardProcess`). */
export class SimGuardPort implements GuardPort {
  readonly #w: GuardWorld;
  readonly #h: SimHost;
  readonly #inc: Incarnation;
  readonly #report: GuardReport;
  #guard: SimGuard | null = null;
  #lease: GuardLease = { kind: "unknown" };
  /** Fences of the guard this port has reported (as the real port's `fenced` file size). */
  #seen = 0;

  /** A port of agent process `inc` to the guard of `h`. */
  constructor(w: GuardWorld, h: SimHost, inc: Incarnation, report: GuardReport) {
    this.#w = w;
    this.#h = h;
    this.#inc = inc;
    this.#report = report;
  }

  /** {@inheritDoc GuardPort.open} */
  open(): void {
    const h = this.#h;
    if (h.guard) {
      this.#report("info", "guard", `adopted the guard (pid ${h.guard.pid}); it keeps its lease`);
    } else {
      h.guard = {
        pid: 900 + h.guardStarts++,
        deadline: null,
        timer: null,
        targets: [],
        fenced: 0,
        watchers: new Set(),
      };
      this.#lease = { kind: "off" };
      this.#w.world(h.name, `guard starts (pid ${h.guard.pid}, disarmed)`);
    }
    const g = this.#guard = h.guard;
    this.#seen = g.fenced;
    const inc = this.#inc;
    g.watchers.add(() => {
      if (h.live !== inc) return;
      // The real agent's 100 ms check of the `fenced` file (or an app exit, `poll`, first).
      inc.group.set(() => this.poll(), this.#w.rngGuard.int(0, 100));
    });
  }

  /** {@inheritDoc GuardPort.poll} */
  poll(): void {
    const g = this.#guard;
    if (g === null || g.fenced <= this.#seen) return;
    this.#seen = g.fenced;
    this.#report(
      "error",
      "guard_fenced",
      "the lease ran out: the guard SIGKILLed the movable apps",
    );
  }

  /** {@inheritDoc GuardPort.arm} */
  arm(uptimeMs: number): void {
    const ms = Math.floor(uptimeMs);
    if (this.#lease.kind === "armed" && this.#lease.uptimeMs === ms) return;
    this.#lease = { kind: "armed", uptimeMs: ms };
    const g = this.#live();
    if (!g) return;
    g.deadline = ms;
    if (g.timer !== null) this.#w.vt.clear(g.timer);
    const h = this.#h;
    const w = this.#w;
    g.timer = w.vt.set(() => expire(w, h, g), Math.max(0, ms - hostUptime(w, h)));
    if (h.pauseEdge === "after_renewal" && h.live === this.#inc) {
      // SIGSTOP right after the order left: the agent finishes nothing more.
      h.pauseEdge = null;
      w.world(h.name, "fault: agent paused (SIGSTOP) just after a lease renewal");
      this.#inc.group.freeze();
    }
  }

  /** {@inheritDoc GuardPort.disarm} */
  disarm(): void {
    if (this.#lease.kind === "off") return;
    this.#lease = { kind: "off" };
    const g = this.#live();
    if (!g) return;
    g.deadline = null;
    if (g.timer !== null) this.#w.vt.clear(g.timer);
    g.timer = null;
    this.#w.world(this.#h.name, "guard disarmed (no lease)");
  }

  /** {@inheritDoc GuardPort.setTargets} */
  setTargets(lines: string[]): void {
    const g = this.#live();
    if (g) g.targets = [...lines];
  }

  /** {@inheritDoc GuardPort.status} */
  status(): { pid: number | null; lease: GuardLease; replaced: number; error: string | null } {
    return { pid: this.#guard?.pid ?? null, lease: this.#lease, replaced: 0, error: null };
  }

  /** {@inheritDoc GuardPort.close} */
  close(): void {}

  /** The guard, if it is still the host's (a host that rebooted has another agent anyway). */
  #live(): SimGuard | null {
    const g = this.#guard;
    return g !== null && this.#h.guard === g ? g : null;
  }
}

/** The deadline passed: the guard is committed to its fence, which lands after its latency. */
function expire(w: GuardWorld, h: SimHost, g: SimGuard): void {
  g.timer = null;
  if (h.guard !== g || g.deadline === null) return;
  g.deadline = null;
  w.vt.set(() => fence(w, h, g), w.rngGuard.int(0, GUARD_KILL_LATENCY_MAX_MS));
}

/** SIGKILL of every target, as listed now (the real guard reads its targets file then). */
function fence(w: GuardWorld, h: SimHost, g: SimGuard): void {
  if (h.guard !== g) return;
  if (w.guardOff) {
    w.world(h.name, "guard: lease expired, kills nothing (--no-guard)");
    return;
  }
  g.fenced++; // noted before the first kill, as the real guard does
  const killed: number[] = [];
  for (const line of g.targets) {
    const [kind, a, b] = line.split(" ");
    if (kind !== "pg") continue;
    const pid = Number(a);
    if (!h.procs.isSameProcess(pid, Number(b))) continue;
    if (!h.procs.running().some((p) => p.pid === pid)) continue;
    h.procs.kill(pid, "killed by SIGKILL (the guard: lease expired)");
    killed.push(pid);
  }
  w.world(
    h.name,
    `guard: lease expired, SIGKILL ${killed.length > 0 ? `pid ${killed.join(", ")}` : "(none)"}`,
  );
  for (const watch of g.watchers) watch();
}
