/**
 * Overlap episodes and their excuses: when two hosts run one movable app (or two nodes are
 * active at one epoch), whether the design's one admitted exception (`no-arbiter-silence`)
 * covers it, for how long, and when the episode closes.
 *
 * @module
 */
import { fmtMs, graceMs } from "./world_view.ts";
import type { Excuse, Monitor, WorldView } from "./world_view.ts";

/** Open or update an episode; returns null when excused, else why it is a violation. */
export function episodeVerdict(
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

export function sameHosts(a: Excuse, b: Excuse): boolean {
  return a.hosts.length === b.hosts.length && a.hosts.every((h, i) => b.hosts[i] === h);
}

export function closeEpisodes(monitor: Monitor, prefix: string, open: Set<string>): void {
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
export function updateExcuse(ex: Excuse, world: WorldView): void {
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
