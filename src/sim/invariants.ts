/**
 * Invariants of the seeded simulation, checked after every step: functions of a
 * {@linkcode WorldView} (what every node believes, what every host really runs, what the
 * network delivered) and of a {@linkcode Monitor} (the history they need: highest epochs,
 * when a node failed, open overlap episodes). They read no clock and do no I/O; the only thing
 * they change is the monitor passed in.
 *
 * Invariants:
 * 1. `one-active-per-epoch`: no two live nodes hold the role `active` with the same epoch at
 *    the same instant.
 * 2. `epoch-monotonic`: a node's epoch never decreases, across agent restarts too.
 *    `durable-state`: after every step the persisted role and epoch equal the in-memory ones
 *    (that is what makes 2 hold across restarts, and what a peer may rely on).
 * 3. `failed-stays-failed`: a node that became `failed` leaves that role only after a `clear`
 *    command reached it or its `failedCooldown` passed (restarts do not count).
 * 4. `single-runner` (safety): no two hosts run a process of the same movable app at the same
 *    instant, except in the situations below that the design states it cannot prevent.
 * 5. `liveness` (end of run): after faults stop and the network heals, within the settle time,
 *    exactly one node is active, every movable app runs exactly once and on it, every
 *    non-movable app runs exactly once on every host, and no process is unmanaged.
 * 6. `durable-before-spawn`: a movable app is spawned only under a persisted role `active`
 *    at the epoch of the spawn.
 *
 * 4 is physical: the process table of each host is the world, and apps outlive a dead or
 * paused agent as on Linux. No overlap is excused because an agent was down or paused: a
 * duplicate then is a real duplicate (the guard twin, sim_guard.ts, must prevent it). The one
 * exception, decided when an overlap begins and valid only while its cause lasts plus a grace
 * period {@linkcode graceMs} (time to notice and stop), is a cluster without an arbiter:
 * - `no-arbiter-silence` (also for 1): the cluster has no witness or only a plain HTTP
 *   witness (which proves reachability, not exclusivity), and one of the two nodes became
 *   active after hearing nothing at all from the other for `deadAfter` (ground truth of the
 *   network, not the node's belief). Without an arbiter, a partition or heavy loss makes a
 *   standby take over from a live active: the design cannot tell "dead" from "cut off". The
 *   grace starts once messages flowed both ways again after the overlap began.
 * Everything else counts, in particular: overlaps with a baton witness and a live agent on
 * both hosts, whatever the partition shape (one-way, partial, node↔witness), because the
 * witness lease and self-fencing are meant to prevent exactly those.
 *
 * @example
 * ```ts
 * declare const view: WorldView; // the simulated hosts and processes, now
 * const monitor = newMonitor();
 * const violations = checkWorld(monitor, view); // after every simulated step
 * const end = checkLiveness(view);              // once, at the end of the run
 * ```
 *
 * @module
 */
import type { Manifest } from "../manifest/types.ts";
import type { NodeState, PersistedState, Role } from "../core/types.ts";

/** Names of the invariants, as printed. */
export type InvariantName =
  | "one-active-per-epoch"
  | "epoch-monotonic"
  | "durable-state"
  | "failed-stays-failed"
  | "single-runner"
  | "liveness"
  | "durable-before-spawn"
  | "core-threw"
  /** With `deadlineCheck`: a tick before the core's next deadline acted. */
  | "deadline";

/** One broken invariant. */
export interface Violation {
  invariant: InvariantName;
  /** Simulated time (ms). */
  at: number;
  message: string;
}

/** Kind of arbiter the simulated cluster has. */
export type WitnessKind = "none" | "http" | "baton";

/** One host as the invariants see it. */
export interface HostView {
  name: string;
  up: boolean;
  /** The running agent, or null when it is down (crashed, or the host is dead). */
  agent: {
    incarnation: number;
    /** Simulated time the agent (re)started. */
    startedAt: number;
    /** Whether its boot event has been processed. */
    booted: boolean;
    state: NodeState;
  } | null;
  /** Simulated time the host's latest agent outage ended (agent restart), null if none. */
  agentBackAt: number | null;
  /** Last state written to this host's state directory. */
  persisted: PersistedState | null;
  /**
   * A state write is in flight, or the latest one failed: the disk may lag the memory (the
   * agent starts nothing under the new state until it is written: `durable-before-spawn`).
   */
  writing?: boolean;
  /** Simulated time the latest `clear` command reached this node's agent, or null. */
  clearedAt: number | null;
  /**
   * Ground truth: simulated time the current agent last received any message from each
   * other node's agent (absent = never since it started).
   */
  lastReceived: Record<string, number>;
}

/** One live process in the simulated world. */
export interface ProcView {
  pid: number;
  app: string;
  host: string;
  /** Simulated start time. */
  startedAt: number;
  /** Whether the host's running agent watches it (spawned or adopted it). */
  managed: boolean;
}

/** What the invariants read: the whole simulated world at one instant. */
export interface WorldView {
  /** Simulated time (ms). */
  now: number;
  manifest: Manifest;
  witness: WitnessKind;
  hosts: Record<string, HostView>;
  /** Live processes only. */
  procs: ProcView[];
}

/** Why an overlap (or two actives at one epoch) is tolerated. */
export interface Excuse {
  kind: "no-arbiter-silence";
  /** Human explanation. */
  detail: string;
  /** The two hosts of the silence. */
  hosts: string[];
  /** Simulated time the episode began. */
  since: number;
  /** Once the cause ended: the end of the grace period. Null while the cause lasts. */
  validUntil: number | null;
}

/** An open overlap: an app on two hosts, or two actives at one epoch. */
export interface Episode {
  start: number;
  members: string[];
  /** Every excuse that applied when the members last changed; any valid one suffices. */
  excuses: Excuse[];
}

/** When a node became active at its current epoch, and whom it had not heard then. */
export interface Activation {
  epoch: number;
  since: number;
  /** Nodes the new active had received nothing from during the `deadAfter` before. */
  silent: string[];
  /** When it stopped being active (a spawn it started may still come up), or null. */
  endedAt: number | null;
}

/** History the invariants keep between steps. */
export interface Monitor {
  /** Highest epoch on disk per node, and in memory per agent life (`node#incarnation`). */
  maxEpoch: Record<string, number>;
  /** Role after the last check (null: agent down). */
  lastRole: Record<string, Role | null>;
  /** Simulated time the node became failed, kept across restarts; null if not failed. */
  failedSince: Record<string, number | null>;
  /** Agent incarnation seen at the last check, per node. */
  life: Record<string, number>;
  activation: Record<string, Activation | null>;
  /** Open overlap episodes: `app:<name>` or `epoch:<n>`. */
  episodes: Record<string, Episode>;
}

/** A monitor with no history, for a new run. */
export function newMonitor(): Monitor {
  return { maxEpoch: {}, lastRole: {}, failedSince: {}, life: {}, activation: {}, episodes: {} };
}

/**
 * How long after its cause ends an excused overlap may last: the time to hear the peer
 * again, decide, and stop the app (graceful stop timeout included).
 */
export function graceMs(manifest: Manifest): number {
  const hb = manifest.cluster.heartbeat;
  const stopMax = Math.max(0, ...Object.values(manifest.apps).map((a) => a.stop.timeoutMs));
  return hb.deadAfterMs + 3 * hb.intervalMs + stopMax + 600;
}

/**
 * Check invariants 1–4 against the world after one step; record history in `monitor`.
 * Returns the violations found (empty when all hold).
 */
export function checkWorld(monitor: Monitor, world: WorldView): Violation[] {
  const out: Violation[] = [];
  trackNodes(monitor, world, out);
  checkSameEpoch(monitor, world, out);
  checkSingleRunner(monitor, world, out);
  return out;
}

function trackNodes(monitor: Monitor, world: WorldView, out: Violation[]): void {
  const { now } = world;
  const deadAfter = world.manifest.cluster.heartbeat.deadAfterMs;
  const cooldown = world.manifest.cluster.failedCooldownMs;
  for (const host of Object.values(world.hosts)) {
    const name = host.name;
    const agent = host.agent;
    if (!agent || !agent.booted) {
      monitor.lastRole[name] = null;
      const act = monitor.activation[name];
      if (act && act.endedAt === null) act.endedAt = now;
      continue;
    }
    const s = agent.state;
    // 2. epochs never decrease: in one agent's life, and across restarts the durable one (an
    // epoch whose write failed is lost with the agent; nothing was started under it).
    const p = host.persisted;
    const life = `${name}#${agent.incarnation}`;
    const durable = Math.max(monitor.maxEpoch[name] ?? 0, p?.epoch ?? 0);
    const max = Math.max(monitor.maxEpoch[life] ?? 0, durable);
    if (s.epoch < max) {
      out.push({
        invariant: "epoch-monotonic",
        at: now,
        message: `${name}: expected epoch >= ${max} (highest seen in this agent's life or ` +
          `on disk), found ${s.epoch}`,
      });
    }
    monitor.maxEpoch[life] = Math.max(monitor.maxEpoch[life] ?? 0, s.epoch);
    monitor.maxEpoch[name] = durable;
    if (!host.writing && (!p || p.epoch !== s.epoch || p.role !== s.role)) {
      out.push({
        invariant: "durable-state",
        at: now,
        message: `${name}: expected persisted role/epoch = memory (${s.role} e${s.epoch}), ` +
          `found ${p ? `${p.role} e${p.epoch}` : "nothing persisted"}`,
      });
    }
    // 3. failed stays failed until clear or cooldown.
    // A failed role that never reached the disk is lost with the agent that held it (the
    // agent started nothing under it and said so: STATE NOT WRITTEN); a durable one stays.
    if (monitor.life[name] !== agent.incarnation) {
      monitor.life[name] = agent.incarnation;
      if (p?.role !== "failed") monitor.failedSince[name] = null;
    }
    const failedSince = monitor.failedSince[name] ?? null;
    if (s.role === "failed") {
      if (failedSince === null) monitor.failedSince[name] = now;
    } else if (failedSince !== null) {
      const cleared = host.clearedAt !== null && host.clearedAt >= failedSince;
      const cooled = cooldown !== null && now - failedSince >= cooldown;
      if (!cleared && !cooled) {
        out.push({
          invariant: "failed-stays-failed",
          at: now,
          message: `${name}: failed since ${fmtMs(failedSince)}, now ${s.role} without a clear ` +
            `command or the cooldown (${cooldown === null ? "none" : fmtMs(cooldown)})`,
        });
      }
      monitor.failedSince[name] = null;
    }
    // Activation record, for the no-arbiter excuse.
    const act = monitor.activation[name] ?? null;
    if (s.role === "active") {
      if (!act || act.epoch !== s.epoch || act.endedAt !== null) {
        const silent = Object.keys(world.hosts).filter((other) => {
          if (other === name) return false;
          const heard = host.lastReceived[other];
          return heard === undefined || now - heard >= deadAfter;
        });
        monitor.activation[name] = { epoch: s.epoch, since: now, silent, endedAt: null };
      }
    } else if (act && act.endedAt === null) {
      act.endedAt = now;
    }
    monitor.lastRole[name] = s.role;
  }
}

function checkSameEpoch(monitor: Monitor, world: WorldView, out: Violation[]): void {
  const byEpoch = new Map<number, string[]>();
  for (const host of Object.values(world.hosts)) {
    const s = host.agent?.booted ? host.agent.state : null;
    if (!s || s.role !== "active") continue;
    const list = byEpoch.get(s.epoch) ?? [];
    list.push(host.name);
    byEpoch.set(s.epoch, list);
  }
  const open = new Set<string>();
  for (const [epoch, nodes] of byEpoch) {
    if (nodes.length < 2) continue;
    const key = `epoch:${epoch}`;
    open.add(key);
    const verdict = episodeVerdict(monitor, world, key, nodes);
    if (verdict) {
      out.push({
        invariant: "one-active-per-epoch",
        at: world.now,
        message: `${nodes.join(" and ")} are both active at epoch ${epoch}${verdict}`,
      });
    }
  }
  closeEpisodes(monitor, "epoch:", open);
}

function checkSingleRunner(monitor: Monitor, world: WorldView, out: Violation[]): void {
  const open = new Set<string>();
  for (const spec of Object.values(world.manifest.apps)) {
    if (!spec.movable) continue;
    const hosts = [
      ...new Set(world.procs.filter((p) => p.app === spec.name).map((p) => p.host)),
    ].sort();
    if (hosts.length < 2) continue;
    const key = `app:${spec.name}`;
    open.add(key);
    const verdict = episodeVerdict(monitor, world, key, hosts);
    if (verdict) {
      const procs = world.procs.filter((p) => p.app === spec.name)
        .map((p) => `${p.host} pid ${p.pid} since ${fmtMs(p.startedAt)}`).join(", ");
      out.push({
        invariant: "single-runner",
        at: world.now,
        message: `movable app ${spec.name} runs on ${hosts.length} hosts (${procs})${verdict}`,
      });
    }
  }
  closeEpisodes(monitor, "app:", open);
}

/** Open or update an episode; returns null when excused, else why it is a violation. */
function episodeVerdict(
  monitor: Monitor,
  world: WorldView,
  key: string,
  members: string[],
): string | null {
  let ep = monitor.episodes[key];
  const changed = ep !== undefined &&
    (ep.members.length !== members.length || members.some((m) => !ep?.members.includes(m)));
  if (!ep || changed) {
    // A new set of hosts is a new situation: its excuse is decided afresh.
    ep = {
      start: ep?.start ?? world.now,
      members,
      excuses: findExcuses(monitor, world, members, world.now),
    };
    monitor.episodes[key] = ep;
  }
  if (ep.excuses.length === 0) {
    return ": no excuse (a baton witness or contact between the nodes)";
  }
  for (const ex of ep.excuses) updateExcuse(ex, world);
  const valid = (ex: Excuse) => ex.validUntil === null || world.now <= ex.validUntil;
  if (ep.excuses.some(valid)) return null;
  // The first causes are over; a new one may have come up meanwhile (another agent died).
  // A silence excuse counts once per episode: its cause is the activation, which stays.
  const fresh = findExcuses(monitor, world, members, world.now)
    .filter((ex) => !ep?.excuses.some((old) => old.kind === ex.kind && sameHosts(old, ex)));
  for (const ex of fresh) updateExcuse(ex, world);
  if (fresh.some(valid)) {
    ep.excuses.push(...fresh);
    return null;
  }
  const last = Math.max(...ep.excuses.map((ex) => ex.validUntil ?? 0));
  const grace = graceMs(world.manifest);
  return `: excused at first (${ep.excuses.map((ex) => ex.detail).join("; ")}) but still so ${
    fmtMs(world.now - last + grace)
  } after the cause ended (grace ${fmtMs(grace)})`;
}

function sameHosts(a: Excuse, b: Excuse): boolean {
  return a.hosts.length === b.hosts.length && a.hosts.every((h, i) => b.hosts[i] === h);
}

function closeEpisodes(monitor: Monitor, prefix: string, open: Set<string>): void {
  for (const key of Object.keys(monitor.episodes)) {
    if (key.startsWith(prefix) && !open.has(key)) delete monitor.episodes[key];
  }
}

/** Every excuse for an overlap among `members` beginning now (empty: none applies). */
export function findExcuses(
  monitor: Monitor,
  world: WorldView,
  members: string[],
  now: number,
): Excuse[] {
  const out: Excuse[] = [];
  // The hook of an explicit opt-out of every arbiter (`witness: none`, see the trust issue):
  // today any cluster without a baton witness.
  if (world.witness !== "baton") {
    const grace = graceMs(world.manifest);
    for (const a of members) {
      const act = monitor.activation[a];
      // A node that stepped down a moment ago may still see a spawn of its own come up.
      if (!act || (act.endedAt !== null && now - act.endedAt > grace)) continue;
      const b = members.find((m) => m !== a && act.silent.includes(m));
      if (b) {
        out.push({
          kind: "no-arbiter-silence",
          detail: `${a} became active at epoch ${act.epoch} after hearing nothing from ${b} ` +
            `for deadAfter, with ${
              world.witness === "none" ? "no witness" : "only an HTTP witness"
            }`,
          hosts: [a, b],
          since: now,
          validUntil: null,
        });
      }
    }
  }
  return out;
}

/** Start the grace period of an excuse once its cause is over. */
function updateExcuse(ex: Excuse, world: WorldView): void {
  if (ex.validUntil !== null) return;
  const grace = graceMs(world.manifest);
  const [a, b] = ex.hosts;
  const ha = world.hosts[a ?? ""];
  const hb = world.hosts[b ?? ""];
  if (!ha || !hb || !a || !b) return;
  const ab = ha.lastReceived[b];
  const ba = hb.lastReceived[a];
  if (ab !== undefined && ba !== undefined && ab > ex.since && ba > ex.since) {
    ex.validUntil = world.now + grace;
  }
}

/**
 * Invariant 6, checked when a `spawn` action is carried out: a movable app starts only
 * under a persisted `active` role at the spawn's epoch.
 */
export function checkSpawn(
  node: string,
  persisted: PersistedState | null,
  action: { app: string; epoch: number },
  manifest: Manifest,
  now: number,
): Violation | null {
  const spec = manifest.apps[action.app];
  if (!spec?.movable) return null;
  if (persisted && persisted.role === "active" && persisted.epoch === action.epoch) return null;
  return {
    invariant: "durable-before-spawn",
    at: now,
    message: `${node} spawns movable ${action.app} at epoch ${action.epoch}; expected a ` +
      `persisted active role at that epoch, found ${
        persisted ? `${persisted.role} e${persisted.epoch}` : "nothing persisted"
      }`,
  };
}

/**
 * Invariant 5, at the end of a run whose faults stopped and whose network healed: exactly
 * one active, every movable app once and on it (and believed running by it), every
 * non-movable app once per host, no unmanaged process.
 */
export function checkLiveness(world: WorldView): Violation[] {
  const out: Violation[] = [];
  const fail = (message: string) => out.push({ invariant: "liveness", at: world.now, message });
  const hosts = Object.values(world.hosts);
  for (const h of hosts) {
    if (!h.up || !h.agent) fail(`${h.name}: expected host and agent up, found them down`);
  }
  const actives = hosts.filter((h) => h.agent?.state.role === "active");
  if (actives.length !== 1) {
    fail(
      `expected exactly one active, found ${actives.length} (${
        hosts.map((h) => `${h.name}=${h.agent?.state.role ?? "down"}`).join(", ")
      })`,
    );
  }
  const active = actives.length === 1 ? actives[0] : undefined;
  for (const spec of Object.values(world.manifest.apps)) {
    const procs = world.procs.filter((p) => p.app === spec.name);
    if (spec.movable) {
      if (procs.length !== 1) {
        fail(
          `movable ${spec.name}: expected 1 process, found ${procs.length} (${
            procs.map((p) => `${p.host} pid ${p.pid}`).join(", ") || "none"
          })`,
        );
      } else if (active && procs[0]?.host !== active.name) {
        fail(`movable ${spec.name}: runs on ${procs[0]?.host}, expected the active ${active.name}`);
      } else if (active) {
        const app = active.agent?.state.apps[spec.name];
        if (!app || app.phase !== "running" || app.pid !== procs[0]?.pid) {
          fail(
            `movable ${spec.name}: ${active.name} believes it is ${app?.phase ?? "unknown"} ` +
              `(pid ${app?.pid ?? "none"}), but pid ${procs[0]?.pid} runs`,
          );
        }
      }
    } else {
      for (const h of hosts) {
        if (spec.nodes !== null && !spec.nodes.includes(h.name)) continue;
        const here = procs.filter((p) => p.host === h.name).length;
        if (here !== 1) fail(`${spec.name} on ${h.name}: expected 1 process, found ${here}`);
      }
    }
  }
  for (const p of world.procs) {
    if (!p.managed) fail(`pid ${p.pid} (${p.app}) on ${p.host} runs unmanaged by any agent`);
  }
  return out;
}

/** Simulated milliseconds as seconds with three decimals (`12.345s`). */
export function fmtMs(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}
