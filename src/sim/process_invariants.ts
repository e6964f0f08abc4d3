/**
 * Invariants about processes: 4 `single-runner` (no movable app alive on two hosts at one
 * instant) and 6 `durable-before-spawn`.
 *
 * @module
 */
import type { Manifest } from "../manifest/types.ts";
import type { PersistedState } from "../core/types.ts";
import { fmtMs } from "./world_view.ts";
import type { Monitor, Violation, WorldView } from "./world_view.ts";
import { closeEpisodes, episodeVerdict } from "./excuses.ts";

/** Invariant 4: no movable app has a live process on two hosts (unless excused). */
export function checkSingleRunner(monitor: Monitor, world: WorldView, out: Violation[]): void {
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
