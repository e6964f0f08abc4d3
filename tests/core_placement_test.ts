/**
 * Placement of groups across N hosts (src/core/placement.ts) and the `groups:` manifest keys
 * (src/manifest/groups.ts): stay put, never move back, all groups leave a suspect host, nodes /
 * priority / maxGroups respected, spread, deterministic.
 *
 * @module
 */
import assert from "node:assert/strict";
import { place, type PlacementNode } from "../src/core/placement.ts";
import type { GroupSpec } from "../src/manifest/groups.ts";
import { formatDiagnostic, parseManifest } from "../src/manifest/load.ts";

function g(name: string, opts: Partial<GroupSpec> = {}): GroupSpec {
  return { name, apps: [name], nodes: null, priority: {}, vip: [], ...opts };
}

function hosts(n: number, opts: Record<string, Partial<PlacementNode>> = {}): PlacementNode[] {
  return Array.from({ length: n }, (_, i) => {
    const name = `n${i + 1}`;
    return { name, priority: 0, available: true, ...opts[name] };
  });
}

Deno.test("place: four groups over five equal hosts spread one per host (a spare left)", () => {
  const groups = ["a", "b", "c", "d"].map((x) => g(x));
  const r = place(groups, hosts(5), {});
  assert.deepEqual(r.assignment, { a: "n1", b: "n2", c: "n3", d: "n4" });
  assert.equal(r.moves.length, 4);
  assert.ok(r.moves.every((m) => m.from === null && /not placed yet/.test(m.reason)));
});

Deno.test("place: priority comes before spread; maxGroups bounds it", () => {
  const groups = ["a", "b", "c"].map((x) => g(x));
  assert.deepEqual(place(groups, hosts(3, { n3: { priority: 5 } }), {}).assignment, {
    a: "n3",
    b: "n3",
    c: "n3",
  });
  const bounded = place(groups, hosts(3, { n3: { priority: 5, maxGroups: 1 } }), {});
  assert.deepEqual(bounded.assignment, { a: "n3", b: "n1", c: "n2" });
});

Deno.test("place: groups stay where they run; an available host never loses one (no failback)", () => {
  const groups = [g("a", { priority: { n1: 10 } }), g("b")];
  const r = place(groups, hosts(3), { a: "n2", b: "n3" });
  assert.deepEqual(r.assignment, { a: "n2", b: "n3" });
  assert.deepEqual(r.moves, []);
});

Deno.test("place: a suspect or dead host loses all its groups, each to the best available host", () => {
  const groups = [g("a"), g("b"), g("c", { priority: { n3: 9 } })];
  const nodes = hosts(4, { n1: { available: false }, n2: { priority: 3 } });
  const r = place(groups, nodes, { a: "n1", b: "n1", c: "n1" });
  // a and b → n2 (node priority 3; spread only breaks ties); c prefers n3 (group priority 9).
  assert.deepEqual(r.assignment, { a: "n2", b: "n2", c: "n3" });
  for (const m of r.moves) assert.match(m.reason, /n1 is not available/);
});

Deno.test("place: maxGroups caps a host; ties go to the least loaded, then by name", () => {
  const groups = ["a", "b", "c", "d"].map((x) => g(x));
  const nodes = hosts(2, { n1: { maxGroups: 1, priority: 1 } });
  const r = place(groups, nodes, {});
  assert.deepEqual(r.assignment, { a: "n1", b: "n2", c: "n2", d: "n2" });
  const capped = place(groups, hosts(2, { n1: { maxGroups: 1 }, n2: { maxGroups: 2 } }), {});
  assert.deepEqual(capped.assignment, { a: "n1", b: "n2", c: "n2", d: null });
  assert.match(
    capped.moves.at(-1)!.reason,
    /no available node can take it \(n1 full \(1\/1\), n2 full \(2\/2\)\)/,
  );
});

Deno.test("place: a group only runs on its nodes; with none available it is unplaced", () => {
  const groups = [g("db", { nodes: ["n2", "n3"] })];
  assert.deepEqual(place(groups, hosts(3, { n1: { priority: 9 } }), {}).assignment, { db: "n2" });
  const none = place(groups, hosts(3, { n2: { available: false }, n3: { available: false } }), {
    db: "n2",
  });
  assert.equal(none.assignment["db"], null);
  assert.match(none.moves[0]!.reason, /n2 unavailable, n3 unavailable/);
});

Deno.test("place: the same input gives the same placement whatever the input order", () => {
  const groups = ["d", "b", "a", "c"].map((x) => g(x));
  const nodes = hosts(3);
  const r1 = place(groups, nodes, { b: "n1" });
  const r2 = place([...groups].reverse(), [...nodes].reverse(), { b: "n1" });
  assert.deepEqual(r1.assignment, r2.assignment);
});

function yaml(groups: string[], nodesExtra = ""): string {
  return [
    "cluster: { name: demo, secretFile: ./s, witness: none }",
    "nodes:",
    `  alpha: { url: "http://127.0.0.1:7401", priority: 2${nodesExtra} }`,
    '  beta: { url: "http://127.0.0.1:7402", priority: 1 }',
    '  gamma: { url: "http://127.0.0.1:7403" }',
    "apps:",
    '  pg: { command: ["pg"] }',
    '  web: { command: ["web"] }',
    '  api: { command: ["api"] }',
    '  logs: { command: ["logs"], movable: false }',
    ...(groups.length ? ["groups:", ...groups] : []),
    "",
  ].join("\n");
}

Deno.test("groups manifest: declared groups plus the implicit default group; maxGroups kept", async () => {
  const r = await parseManifest(
    yaml([
      '  db: { apps: [pg], nodes: [alpha, beta], priority: { beta: 5 }, vip: ["10.0.0.9/24"] }',
    ], ", maxGroups: 2"),
    "/etc/baton/baton.yaml",
  );
  assert.ok(r.ok, r.ok ? "" : r.errors.map(formatDiagnostic).join("\n"));
  assert.deepEqual(r.manifest.groups, [
    {
      name: "db",
      apps: ["pg"],
      nodes: ["alpha", "beta"],
      priority: { beta: 5 },
      vip: ["10.0.0.9/24"],
    },
    { name: "default", apps: ["api", "web"], nodes: null, priority: {}, vip: [] },
  ]);
  assert.equal(r.manifest.nodes["alpha"]?.maxGroups, 2);
  const plain = await parseManifest(yaml([]), "/etc/baton/baton.yaml");
  assert.ok(plain.ok);
  assert.deepEqual(plain.manifest.groups?.map((x) => x.name), ["default"], "no groups: one group");
});

Deno.test("groups manifest: unknown, non-movable or doubly grouped apps, unknown nodes: refused at line:col", async () => {
  const r = await parseManifest(
    yaml([
      "  a: { apps: [pg, logs, nope] }",
      "  b: { apps: [pg], nodes: [alpha, delta], priority: { gamma: 1 } }",
      "  default: { apps: [web] }",
    ], ", maxGroups: 0"),
    "m.yaml",
  );
  assert.equal(r.ok, false);
  const errs = r.ok ? [] : r.errors.map(formatDiagnostic);
  assert.deepEqual(errs, [
    "m.yaml:3:66: expected maxGroups ≥ 1, found the number 0",
    'm.yaml:12:19: app "logs" is not movable (it runs on every node): a group holds movable apps',
    'm.yaml:12:25: unknown app "nope": expected one under apps',
    'm.yaml:13:15: app "pg" is already in group "a": an app is in one group',
    'm.yaml:13:35: unknown node "delta": expected one of alpha, beta, gamma',
    'm.yaml:13:62: priority for "gamma", which is not among the group\'s nodes',
    'm.yaml:14:12: "default" is the implicit group of the movable apps outside every group: ' +
    "choose another name",
  ]);
});
