/**
 * `groups:` (issue 14, item 2): movable apps placed across N hosts. Each group has its own
 * active host: `groups: { name: { apps: [...], nodes: [...], priority: { node: n }, vip: [...] } }`
 * and `nodes.<name>.maxGroups: N`. Movable apps outside any group form the implicit group
 * `default`, so a manifest without `groups` has one group of every movable app, as before.
 *
 * Schema (shape and single values) and the checks that relate groups to apps and nodes live
 * here; `schema.ts` and `load.ts` call them. The placement itself is pure core
 * (`src/core/placement.ts`). Not wired into the agent yet: today every movable app still moves
 * together (one group), whatever `groups` says.
 *
 * @example
 * ```ts
 * import { GroupSchema } from "./groups.ts";
 * GroupSchema.parse({ apps: ["db"], nodes: ["alpha", "beta"] }).priority; // {}
 * ```
 *
 * @module
 */
import { z } from "zod";

/** Name of the implicit group of movable apps outside every declared group. */
export const DEFAULT_GROUP = "default";

/** One group in the normalized manifest. */
export interface GroupSpec {
  name: string;
  /** Movable apps of the group (each app is in exactly one group). */
  apps: string[];
  /** Nodes that may run it; null: every node. */
  nodes: string[] | null;
  /** Node → priority for this group (higher first); a node absent here has its node priority. */
  priority: Record<string, number>;
  /** Floating IPs of the group (addresses as written). */
  vip: string[];
}

function _found(input: unknown): string {
  if (input === undefined) return "nothing";
  if (typeof input === "string") return JSON.stringify(input);
  if (typeof input === "number") return `the number ${input}`;
  if (Array.isArray(input)) return "a list";
  if (input !== null && typeof input === "object") return "a mapping";
  return String(input);
}

const _names = (what: string) =>
  z.array(z.string({ error: (i) => `expected ${what} name, found ${_found(i.input)}` }), {
    error: (i) => `expected a list of ${what} names, found ${_found(i.input)}`,
  });

/** One group under `groups:`, as written. */
export const GroupSchema = z.strictObject({
  apps: _names("an app").min(1, { error: "expected at least one app in a group" }),
  nodes: _names("a node").min(1, { error: "expected at least one node, or no nodes key" })
    .optional(),
  priority: z.record(
    z.string(),
    z.int({ error: (i) => `expected an integer priority, found ${_found(i.input)}` }),
    { error: (i) => `expected a mapping of node to priority, found ${_found(i.input)}` },
  ).default({}),
  vip: z.array(
    z.string({
      error: (i) => `expected an address such as 10.0.0.10/24, found ${_found(i.input)}`,
    }),
    { error: (i) => `expected a list of addresses, found ${_found(i.input)}` },
  ).default([]),
}, {
  error: (i) => `expected a group mapping { apps, nodes, priority, vip }, found ${_found(i.input)}`,
});

/** `groups:`, as written. */
export const GroupsSchema = z.record(z.string(), GroupSchema, {
  error: (i) => `expected a mapping of group name to group, found ${_found(i.input)}`,
});

/** `nodes.<name>.maxGroups`: how many groups the node may run at once. */
export const MaxGroupsSchema = z.int({
  error: (i) => `expected a whole number of groups (≥ 1), found ${_found(i.input)}`,
}).min(1, { error: (i) => `expected maxGroups ≥ 1, found ${_found(i.input)}` });

/** A group as the schema outputs it. */
export type RawGroup = z.output<typeof GroupSchema>;

/**
 * Checks that relate groups to apps and nodes: one problem per entry, with its path under the
 * manifest root. `movable`: app name → whether it is movable; `nodes`: the node names.
 */
export function groupProblems(
  groups: Record<string, RawGroup>,
  movable: Record<string, boolean>,
  nodes: string[],
): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const owner = new Map<string, string>();
  for (const [name, g] of Object.entries(groups)) {
    if (name === DEFAULT_GROUP) {
      problems.push({
        path: ["groups", name],
        message: `"${DEFAULT_GROUP}" is the implicit group of the movable apps outside every ` +
          "group: choose another name",
      });
    }
    g.apps.forEach((app, i) => {
      const at = ["groups", name, "apps", i];
      if (!(app in movable)) {
        problems.push({ path: at, message: `unknown app "${app}": expected one under apps` });
      } else if (!movable[app]) {
        problems.push({
          path: at,
          message:
            `app "${app}" is not movable (it runs on every node): a group holds movable apps`,
        });
      } else if (owner.has(app)) {
        problems.push({
          path: at,
          message: `app "${app}" is already in group "${owner.get(app)}": an app is in one group`,
        });
      } else owner.set(app, name);
    });
    (g.nodes ?? []).forEach((node, i) => {
      if (!nodes.includes(node)) {
        problems.push({
          path: ["groups", name, "nodes", i],
          message: `unknown node "${node}": expected one of ${nodes.join(", ")}`,
        });
      }
    });
    for (const node of Object.keys(g.priority)) {
      if (!nodes.includes(node) || (g.nodes && !g.nodes.includes(node))) {
        problems.push({
          path: ["groups", name, "priority", node],
          message: `priority for "${node}", which ${
            nodes.includes(node) ? "is not among the group's nodes" : "is not a node"
          }`,
        });
      }
    }
  }
  return problems;
}

/**
 * The normalized groups: every declared group, plus `default` holding the movable apps outside
 * them (only if there are any). Sorted by name.
 *
 * @example
 * ```ts
 * normalizeGroups({}, { web: true, logs: false }); // [{ name: "default", apps: ["web"], ... }]
 * ```
 */
export function normalizeGroups(
  groups: Record<string, RawGroup>,
  movable: Record<string, boolean>,
): GroupSpec[] {
  const out: GroupSpec[] = Object.entries(groups).map(([name, g]) => ({
    name,
    apps: [...g.apps],
    nodes: g.nodes ? [...g.nodes] : null,
    priority: { ...g.priority },
    vip: [...g.vip],
  }));
  const grouped = new Set(out.flatMap((g) => g.apps));
  const rest = Object.keys(movable).filter((a) => movable[a] && !grouped.has(a)).sort();
  if (rest.length > 0) {
    out.push({ name: DEFAULT_GROUP, apps: rest, nodes: null, priority: {}, vip: [] });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
