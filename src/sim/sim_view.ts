/**
 * What the invariants see of the simulated world at one instant ({@linkcode worldView}), and
 * the cache of each host's parsed state file it reads.
 *
 * @module
 */
import type { PersistedState } from "../core/types.ts";
import type { Manifest } from "../manifest/types.ts";
import { parseState } from "../store/state_store.ts";
import type { ProcView, WitnessKind, WorldView } from "./invariants.ts";
import type { SimHost } from "./sim_host.ts";

/** Each host's state file, parsed again only when its text changed. */
export class PersistedCache {
  #parsed = new Map<string, { text: string | null; state: PersistedState | null }>();

  /** The persisted state on `h`'s disk, or null (none, or unreadable). */
  get(h: SimHost): PersistedState | null {
    const text = h.disk.stateText;
    const cached = this.#parsed.get(h.name);
    if (cached && cached.text === text) return cached.state;
    const r = text === null ? null : parseState(text, h.name);
    const state = r && r.ok ? r.state : null;
    this.#parsed.set(h.name, { text, state });
    return state;
  }
}

/** The world as the invariants read it: every host's agent, disk and processes at `now`. */
export function worldView(
  hosts: Record<string, SimHost>,
  now: number,
  manifest: Manifest,
  witness: WitnessKind,
  persisted: (h: SimHost) => PersistedState | null,
): WorldView {
  const procs: ProcView[] = [];
  const views: WorldView["hosts"] = {};
  for (const h of Object.values(hosts)) {
    const inc = h.live;
    for (const p of h.procs.running()) {
      procs.push({
        pid: p.pid,
        app: p.app ?? "",
        host: h.name,
        startedAt: h.startedAt.get(p.pid) ?? 0,
        managed: p.watched && inc !== null,
      });
    }
    views[h.name] = {
      name: h.name,
      up: h.up,
      agent: inc
        ? {
          incarnation: inc.n,
          startedAt: inc.startedAt,
          booted: inc.booted,
          state: inc.agent.state,
        }
        : null,
      agentBackAt: h.agentBackAt,
      persisted: persisted(h),
      writing: inc !== null && (inc.saving > 0 || inc.saveFailed),
      clearedAt: h.clearedAt,
      lastReceived: h.lastReceived,
    };
  }
  return { now, manifest, witness, hosts: views, procs };
}
