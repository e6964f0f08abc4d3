/**
 * Invariant 5, `liveness`, checked once at the end of a run.
 *
 * @module
 */
import type { Violation, WorldView } from "./world_view.ts";

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
