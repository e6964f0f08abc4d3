/**
 * `baton validate` of `dependsOn` and `readyTimeout` (src/manifest/depends.ts through the
 * loader): unknown names, self-dependencies and cycles, and dependencies on apps that do not
 * always run on the same host are errors at the line and column of the offending list item.
 */
import assert from "node:assert/strict";
import { formatDiagnostic, parseManifest } from "../src/manifest/load.ts";
import { dependsProblems } from "../src/manifest/depends.ts";

const HEAD = [
  "cluster: { witness: http://127.0.0.1:7400 }",
  "nodes:",
  "  alpha: { url: http://127.0.0.1:7401 }",
  "  beta: { url: http://127.0.0.1:7402 }",
  "apps:",
];

async function errors(apps: string[]): Promise<string[]> {
  const r = await parseManifest([...HEAD, ...apps].join("\n") + "\n", "deps.yaml");
  assert.ok(!r.ok, "expected the manifest to be refused");
  return r.errors.map(formatDiagnostic);
}

Deno.test("dependsOn: a valid chain loads, with the defaults filled in", async () => {
  const r = await parseManifest(
    [
      ...HEAD,
      "  a: { command: [a], readyTimeout: 5s }",
      "  b: { command: [b], dependsOn: [a] }",
      "  logs: { command: [l], movable: false }",
      "  c: { command: [c], dependsOn: [b, logs] }",
    ].join("\n"),
    "deps.yaml",
  );
  assert.ok(r.ok, r.ok ? "" : r.errors.map(formatDiagnostic).join("\n"));
  assert.deepEqual(r.manifest.apps["c"]?.dependsOn, ["b", "logs"]);
  assert.deepEqual(r.manifest.apps["a"]?.dependsOn, []);
  assert.equal(r.manifest.apps["a"]?.readyTimeoutMs, 5_000);
  assert.equal(r.manifest.apps["b"]?.readyTimeoutMs, 60_000);
});

Deno.test("dependsOn: an unknown app name is an error at its list item", async () => {
  const errs = await errors([
    "  a: { command: [a] }",
    "  b:",
    "    command: [b]",
    "    dependsOn: [a, dbb]",
  ]);
  assert.deepEqual(errs, [
    'deps.yaml:9:20: unknown app "dbb" in apps.b.dependsOn: known apps are a',
  ]);
});

Deno.test("dependsOn: a cycle is an error with the cycle spelled out, once", async () => {
  const errs = await errors([
    "  a: { command: [a], dependsOn: [c] }",
    "  b: { command: [b], dependsOn: [a] }",
    "  c:",
    "    command: [c]",
    "    dependsOn:",
    "      - b",
  ]);
  assert.equal(errs.length, 1, errs.join("\n"));
  assert.match(errs[0]!, /^deps\.yaml:7:34: dependency cycle: a → c → b → a/);
});

Deno.test("dependsOn: an app depending on itself is a cycle", async () => {
  const errs = await errors(["  a: { command: [a], dependsOn: [a] }"]);
  assert.equal(errs.length, 1);
  assert.match(errs[0]!, /^deps\.yaml:6:34: dependency cycle: a → a/);
});

Deno.test("dependsOn: a movable app on a non-movable app of one node only is an error", async () => {
  const errs = await errors([
    "  db: { command: [db], movable: false, nodes: [alpha] }",
    "  web: { command: [web], dependsOn: [db] }",
  ]);
  assert.equal(errs.length, 1, errs.join("\n"));
  assert.match(
    errs[0]!,
    /^deps\.yaml:7:38: app "web" may run on node "beta", where non-movable app "db" does not run/,
  );
  assert.match(errs[0]!, /a movable app on a non-movable app of every node it may run on/);
});

Deno.test("dependsOn: a non-movable app may not depend on a movable app", async () => {
  const errs = await errors([
    "  web: { command: [web] }",
    "  agent: { command: [agent], movable: false, dependsOn: [web] }",
  ]);
  assert.equal(errs.length, 1, errs.join("\n"));
  assert.match(errs[0]!, /^deps\.yaml:7:58: app "agent" is not movable .* movable app "web"/);
});

Deno.test("dependsOn: placement that always matches is fine (same nodes, or a non-movable app of every node)", async () => {
  const r = await parseManifest(
    [
      ...HEAD,
      "  db: { command: [db], nodes: [alpha, beta] }",
      "  web: { command: [web], nodes: [alpha], dependsOn: [db, logs] }",
      "  logs: { command: [l], movable: false }",
      "  side: { command: [s], movable: false, nodes: [beta], dependsOn: [logs] }",
    ].join("\n"),
    "deps.yaml",
  );
  assert.ok(r.ok, r.ok ? "" : r.errors.map(formatDiagnostic).join("\n"));
});

Deno.test("dependsOn: a movable app on a movable app that cannot follow it everywhere is an error", async () => {
  const errs = await errors([
    "  db: { command: [db], nodes: [alpha] }",
    "  web: { command: [web], dependsOn: [db] }",
  ]);
  assert.equal(errs.length, 1, errs.join("\n"));
  assert.match(errs[0]!, /app "web" may run on node "beta", where movable app "db" does not run/);
});

Deno.test("dependsOn: a name listed twice, and values of the wrong shape", async () => {
  const twice = await errors([
    "  a: { command: [a] }",
    "  b: { command: [b], dependsOn: [a, a] }",
  ]);
  assert.deepEqual(twice, ['deps.yaml:7:37: app "a" is listed twice in apps.b.dependsOn']);
  const shape = await errors(["  a: { command: [a], dependsOn: a, readyTimeout: 5 }"]);
  assert.ok(shape.some((e) => e.includes("expected a list of app names")), shape.join("\n"));
  assert.ok(shape.some((e) => e.includes("a bare number has no unit")), shape.join("\n"));
});

Deno.test("dependsProblems: works on the raw mapping and skips values of the wrong shape", () => {
  assert.deepEqual(dependsProblems({ a: { dependsOn: [5, null] }, b: "x" }, ["alpha"]), []);
  assert.deepEqual(
    dependsProblems({ a: { dependsOn: ["b"] }, b: { dependsOn: ["a"] } }, ["alpha"]).map((p) =>
      p.path
    ),
    [["apps", "b", "dependsOn", 0]],
  );
});
