/**
 * Where each group of movable apps runs (issue 14, item 2), decided by one node (the decider) and
 * published; pure and clock-free. Not wired into the agent yet (see `manifest/groups.ts`).
 *
 * Rules, in order:
 * 1. A group stays where it runs while that host is available and allowed: placement never
 *    moves a group back by itself (no failback to a higher priority).
 * 2. A host that is not available (dead, suspect after an escalation, failed, in maintenance)
 *    loses **all** its groups; each goes to the best available host.
 * 3. Best host for a group: among its allowed nodes (`nodes`, default all) that are available
 *    and below their `maxGroups`, the highest priority for that group (`priority.<node>`, else
 *    the node's priority), then the one running fewest groups (spread), then by name.
 * 4. Groups are placed one at a time in name order, so the result is deterministic; a group no
 *    host can take is unplaced (null) with the reason.
 *
 * @module
 */
import type { GroupSpec } from "../manifest/groups.ts";

/** A host as the decider sees it. */
export interface PlacementNode {
  name: string;
  /** Node priority (the manifest's `nodes.<name>.priority`). */
  priority: number;
  /** `nodes.<name>.maxGroups`; absent: no limit. */
  maxGroups?: number;
  /** Alive, not suspect, not failed, not in maintenance: it may run groups. */
  available: boolean;
}

/** One change of the placement, with its reason. */
export interface PlacementMove {
  group: string;
  from: string | null;
  to: string | null;
  reason: string;
}

/** The result: each group's host (null: unplaced) and what changed. */
export interface Placement {
  assignment: Record<string, string | null>;
  moves: PlacementMove[];
}

/**
 * Place every group, starting from `current` (group → host now, absent or null: nowhere).
 *
 * @example
 * ```ts
 * const groups = [{ name: "db", apps: ["pg"], nodes: null, priority: {}, vip: [] }];
 * const nodes = [
 *   { name: "alpha", priority: 2, available: false },
 *   { name: "beta", priority: 1, available: true },
 * ];
 * place(groups, nodes, { db: "alpha" }).assignment; // { db: "beta" }
 * ```
 */
export function place(
  groups: GroupSpec[],
  nodes: PlacementNode[],
  current: Record<string, string | null>,
): Placement {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const load = new Map(nodes.map((n) => [n.name, 0]));
  const assignment: Record<string, string | null> = {};
  const moves: PlacementMove[] = [];
  const sorted = [...groups].sort((a, b) => a.name.localeCompare(b.name));
  const allowed = (g: GroupSpec, n: PlacementNode) => g.nodes === null || g.nodes.includes(n.name);

  // 1. Groups stay where they run on an available, allowed host (within its maxGroups).
  const pending: GroupSpec[] = [];
  for (const g of sorted) {
    const host = current[g.name] ?? null;
    const n = host === null ? undefined : byName.get(host);
    const used = n ? load.get(n.name) ?? 0 : 0;
    if (n && n.available && allowed(g, n) && used < (n.maxGroups ?? Infinity)) {
      assignment[g.name] = n.name;
      load.set(n.name, used + 1);
    } else pending.push(g);
  }
  // 2–4. Every other group to its best available host, one at a time.
  for (const g of pending) {
    const from = current[g.name] ?? null;
    const prio = (n: PlacementNode) => g.priority[n.name] ?? n.priority;
    const candidates = nodes.filter((n) =>
      n.available && allowed(g, n) && (load.get(n.name) ?? 0) < (n.maxGroups ?? Infinity)
    ).sort((a, b) =>
      prio(b) - prio(a) || (load.get(a.name) ?? 0) - (load.get(b.name) ?? 0) ||
      a.name.localeCompare(b.name)
    );
    const to = candidates[0]?.name ?? null;
    assignment[g.name] = to;
    if (to !== null) load.set(to, (load.get(to) ?? 0) + 1);
    if (to === from && to !== null) continue;
    const why = from === null
      ? "not placed yet"
      : !byName.get(from)?.available
      ? `${from} is not available`
      : !allowed(g, byName.get(from)!)
      ? `${from} is not among the group's nodes`
      : `${from} is over its maxGroups`;
    moves.push({
      group: g.name,
      from,
      to,
      reason: to === null
        ? `${why}; no available node can take it (${_noRoom(g, nodes, load)})`
        : `${why}; ${to} is the best available node`,
    });
  }
  return { assignment, moves };
}

function _noRoom(g: GroupSpec, nodes: PlacementNode[], load: Map<string, number>): string {
  const allowed = nodes.filter((n) => g.nodes === null || g.nodes.includes(n.name));
  if (allowed.length === 0) return "no allowed node";
  return allowed.map((n) =>
    !n.available ? `${n.name} unavailable` : `${n.name} full (${load.get(n.name)}/${n.maxGroups})`
  ).join(", ");
}
