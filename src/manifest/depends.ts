/**
 * Cross-app checks of `apps.X.dependsOn` (start order and readiness, issue #13): every name
 * is a known app other than X, listed once; the graph has no cycle; and X depends only on apps
 * that always run on the same host as X — a movable app on movable apps, or on non-movable
 * apps of every node X may run on; a non-movable app only on non-movable apps of each of its
 * nodes. The loader reports each problem at the line and column of the offending list item.
 *
 * Works on the raw manifest value, so that a schema error elsewhere in an app does not hide
 * these problems (values of the wrong shape are skipped: the schema reports them).
 *
 * @example
 * ```ts
 * const problems = dependsProblems({
 *   db: { command: ["db"] },
 *   web: { command: ["web"], dependsOn: ["db", "cache"] },
 * }, ["alpha", "beta"]);
 * // [{ path: ["apps", "web", "dependsOn", 1], message: 'unknown app "cache" in ...' }]
 * ```
 *
 * @module
 */

/** One problem, at a path of the raw manifest (`["apps", "web", "dependsOn", 0]`). */
export interface DependsProblem {
  path: (string | number)[];
  message: string;
}

interface _App {
  movable: boolean;
  /** Nodes it may run on; null: every node (or not a valid list: not checked). */
  nodes: string[] | null;
  /** The valid string items of `dependsOn`, with their index in the list. */
  deps: { name: string; index: number }[];
}

function _record(value: unknown): Record<string, unknown> | null {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

function _app(value: unknown): _App {
  const r = _record(value) ?? {};
  const nodes = Array.isArray(r["nodes"]) && r["nodes"].every((n) => typeof n === "string")
    ? r["nodes"] as string[]
    : null;
  const list = Array.isArray(r["dependsOn"]) ? r["dependsOn"] as unknown[] : [];
  const deps = list.flatMap((name, index) => typeof name === "string" ? [{ name, index }] : []);
  return { movable: r["movable"] !== false, nodes, deps };
}

/**
 * Every problem of the `dependsOn` lists of `apps` (the raw `apps:` mapping), given the
 * cluster's node names; empty when the dependencies are sound.
 *
 * @example
 * ```ts
 * dependsProblems({ a: { command: ["a"], dependsOn: ["a"] } }, ["alpha"]);
 * // [{ path: ["apps", "a", "dependsOn", 0], message: "dependency cycle: a → a ..." }]
 * ```
 */
export function dependsProblems(
  apps: Record<string, unknown>,
  nodeNames: string[],
): DependsProblem[] {
  const problems: DependsProblem[] = [];
  const parsed = new Map<string, _App>();
  for (const [name, value] of Object.entries(apps)) parsed.set(name, _app(value));
  const known = [...parsed.keys()];
  for (const [name, app] of parsed) {
    const seen = new Set<string>();
    for (const { name: dep, index } of app.deps) {
      const path = ["apps", name, "dependsOn", index];
      const target = parsed.get(dep);
      if (target === undefined) {
        problems.push({
          path,
          message: `unknown app "${dep}" in apps.${name}.dependsOn: known apps are ${
            known.filter((k) => k !== name).join(", ") || "(none)"
          }`,
        });
      } else if (seen.has(dep)) {
        problems.push({ path, message: `app "${dep}" is listed twice in apps.${name}.dependsOn` });
      } else if (dep !== name) {
        const where = _placement(name, app, dep, target, nodeNames);
        if (where !== null) problems.push({ path, message: where });
      }
      seen.add(dep);
    }
  }
  problems.push(..._cycles(parsed));
  return problems;
}

/** Why `name` may not depend on `dep` (they do not always run on the same host), or null. */
function _placement(
  name: string,
  app: _App,
  dep: string,
  target: _App,
  nodeNames: string[],
): string | null {
  if (!app.movable && target.movable) {
    return `app "${name}" is not movable (it runs on each of its nodes) but depends on ` +
      `movable app "${dep}", which runs only on the active node: an app may depend only on ` +
      "apps that always run on the same host";
  }
  const mine = app.nodes ?? nodeNames;
  const theirs = new Set(target.nodes ?? nodeNames);
  const missing = mine.filter((n) => !theirs.has(n));
  if (missing.length === 0) return null;
  const kind = target.movable ? "movable" : "non-movable";
  return `app "${name}" may run on ${_nodes(missing)}, where ${kind} app "${dep}" does not ` +
    `run (apps.${dep}.nodes is ${
      target.nodes === null ? "every node" : `[${target.nodes.join(", ")}]`
    }): an app may depend only on apps that always run on the same host` +
    (app.movable && !target.movable
      ? ` (a movable app on a non-movable app of every node it may run on)`
      : "");
}

function _nodes(names: string[]): string {
  return names.length === 1 ? `node "${names[0]}"` : `nodes ${names.join(", ")}`;
}

/** Each cycle once, at the list item that closes it (a depth-first walk in name order). */
function _cycles(apps: Map<string, _App>): DependsProblem[] {
  const problems: DependsProblem[] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const reported = new Set<string>();
  const visit = (name: string) => {
    state.set(name, "open");
    stack.push(name);
    for (const { name: dep, index } of apps.get(name)?.deps ?? []) {
      if (!apps.has(dep)) continue;
      const s = state.get(dep);
      if (s === undefined) visit(dep);
      else if (s === "open") {
        const cycle = stack.slice(stack.indexOf(dep));
        const key = [...cycle].sort().join(" ");
        if (reported.has(key)) continue;
        reported.add(key);
        problems.push({
          path: ["apps", name, "dependsOn", index],
          message: `dependency cycle: ${[...cycle, dep].join(" → ")} (apps.X.dependsOn must ` +
            "not lead back to X: nothing in the cycle could ever start)",
        });
      }
    }
    stack.pop();
    state.set(name, "done");
  };
  for (const name of [...apps.keys()].sort()) if (!state.has(name)) visit(name);
  return problems;
}
