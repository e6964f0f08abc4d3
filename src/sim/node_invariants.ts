/**
 * Invariants 1–3 about what nodes believe: one active per epoch, epochs monotonic and
 * durable, failed stays failed.
 *
 * @module
 */
import { fmtMs } from "./world_view.ts";
import type { Monitor, Violation, WorldView } from "./world_view.ts";
import { closeEpisodes, episodeVerdict } from "./excuses.ts";

/** Invariants 2 and 3 (epoch monotonic, durable state, failed stays failed); tracks activations. */
export function trackNodes(monitor: Monitor, world: WorldView, out: Violation[]): void {
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

/** Invariant 1: no two live nodes active at one epoch (unless excused). */
export function checkSameEpoch(monitor: Monitor, world: WorldView, out: Violation[]): void {
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
