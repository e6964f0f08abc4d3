import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "../src/manifest/duration.ts";
import { EXAMPLE_MANIFEST } from "../src/manifest/example.ts";
import {
  type Diagnostic,
  formatDiagnostic,
  loadManifestFile,
  type LoadResult,
  parseManifest,
  resolveNodeName,
} from "../src/manifest/load.ts";
import type { Manifest } from "../src/manifest/types.ts";
import { hostileManifests } from "./helpers/hostile_manifests.ts";

const ONE_NODE = "nodes:\n  alpha: { url: http://127.0.0.1:7401 }\n";
const TWO_NODES = [
  "cluster:",
  "  secretFile: ./s",
  "  witness: http://127.0.0.1:7400",
  "nodes:",
  "  alpha: { url: http://127.0.0.1:7401, priority: 100 }",
  "  beta: { url: http://127.0.0.1:7402, priority: 50 }",
  "",
].join("\n");

function lines(...rows: string[]): string {
  return rows.join("\n") + "\n";
}

async function ok(text: string, file = "/etc/baton/baton.yaml"): Promise<Manifest> {
  const result = await parseManifest(text, file);
  if (!result.ok) {
    assert.fail(`expected no errors, got:\n${result.errors.map(formatDiagnostic).join("\n")}`);
  }
  return result.manifest;
}

async function errors(text: string): Promise<Diagnostic[]> {
  const result = await parseManifest(text, "m.yaml");
  assert.equal(result.ok, false, "expected errors, the manifest loaded");
  return result.ok ? [] : result.errors;
}

function warnings(result: LoadResult): string[] {
  return result.warnings.map((d) => `${d.line}:${d.col}: ${d.message}`);
}

/** "LINE:COL" of the first `needle` on 1-based `line` of `text`: where a diagnostic should point. */
function pos(text: string, line: number, needle: string): string {
  const row = text.split("\n")[line - 1] ?? "";
  const index = row.indexOf(needle);
  assert.ok(index >= 0, `${JSON.stringify(needle)} is not on line ${line}: ${JSON.stringify(row)}`);
  return `${line}:${index + 1}`;
}

/** Finds the one diagnostic whose message contains `part`, and returns "line:col". */
function at(list: Diagnostic[], part: string): string {
  const found = list.filter((d) => d.message.includes(part));
  assert.equal(
    found.length,
    1,
    `expected one diagnostic containing ${JSON.stringify(part)}, got:\n` +
      list.map(formatDiagnostic).join("\n"),
  );
  return `${found[0]?.line}:${found[0]?.col}`;
}

Deno.test("EXAMPLE_MANIFEST parses without errors or warnings, and examples/baton.yaml matches it", async () => {
  const result = await parseManifest(EXAMPLE_MANIFEST, "baton.yaml");
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatDiagnostic).join("\n"));
  assert.deepEqual(result.warnings, []);
  assert.deepEqual(Object.keys(result.manifest.nodes), ["alpha", "beta"]);
  assert.equal(result.manifest.nodes["alpha"]?.url, "http://127.0.0.1:7401");
  assert.equal(result.manifest.nodes["beta"]?.url, "http://127.0.0.1:7402");
  assert.equal(result.manifest.apps["web"]?.check.type, "http");
  assert.equal(result.manifest.apps["worker"]?.movable, false);
  const file = new URL("../examples/baton.yaml", import.meta.url);
  assert.equal(await Deno.readTextFile(file), EXAMPLE_MANIFEST);
});

Deno.test("parseDuration reads units and compound durations", () => {
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("10s"), 10_000);
  assert.equal(parseDuration("5m"), 300_000);
  assert.equal(parseDuration("1h"), 3_600_000);
  assert.equal(parseDuration("1m30s"), 90_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("0s"), 0);
  assert.equal(parseDuration("2d"), 172_800_000);
});

Deno.test("parseDuration rejects bare numbers, negatives, unknown units and empty text", () => {
  assert.throws(() => parseDuration("500"), /missing unit.*"500ms"/);
  assert.throws(() => parseDuration("-1s"), /negative/);
  assert.throws(() => parseDuration("10x"), /expected a duration/);
  assert.throws(() => parseDuration("10 s"), /expected a duration/);
  assert.throws(() => parseDuration("s"), /expected a duration/);
  assert.throws(() => parseDuration(""), /empty/);
});

Deno.test("formatDuration is the inverse of parseDuration", () => {
  assert.equal(formatDuration(250), "250ms");
  assert.equal(formatDuration(1500), "1.5s");
  assert.equal(formatDuration(90_000), "1m30s");
  assert.equal(formatDuration(5_400_000), "1h30m");
  assert.equal(formatDuration(0), "0s");
  for (const ms of [1, 999, 1000, 1001, 61_500, 3_600_001, 86_400_000]) {
    assert.equal(parseDuration(formatDuration(ms)), ms);
  }
});

Deno.test("parseManifest fills every default in a minimal single-node manifest", async () => {
  const m = await ok(ONE_NODE + "apps:\n  worker:\n    command: [sleep, infinity]\n");
  assert.equal(m.cluster.name, "baton");
  assert.deepEqual(m.cluster.heartbeat, { intervalMs: 200, deadAfterMs: 1000, fenceAfterMs: 700 });
  assert.equal(m.cluster.secretFile, null);
  assert.equal(m.cluster.witness, null);
  assert.equal(m.cluster.fence, null);
  assert.equal(m.cluster.failedCooldownMs, null);
  assert.equal(m.cluster.tls, null);
  assert.deepEqual(m.nodes, {
    alpha: { name: "alpha", url: "http://127.0.0.1:7401", priority: 0 },
  });
  const app = m.apps["worker"];
  assert.ok(app);
  assert.deepEqual(app.check, { type: "process" });
  assert.equal(app.movable, true);
  assert.equal(app.nodes, null);
  assert.equal(app.cwd, null);
  assert.deepEqual(app.env, {});
  assert.deepEqual(app.restart, {
    limit: 1,
    windowMs: 600_000,
    backoffMs: 1000,
    backoffMaxMs: 60_000,
  });
  assert.deepEqual(app.stop, { signal: "SIGTERM", timeoutMs: 10_000 });
  assert.match(app.hash, /^[0-9a-f]{64}$/);
  assert.match(m.hash, /^[0-9a-f]{64}$/);
  assert.equal(m.path, "/etc/baton/baton.yaml");
});

Deno.test("parseManifest fills check defaults and normalizes every check type", async () => {
  const m = await ok(lines(
    ONE_NODE + "apps:",
    "  h:",
    "    command: [a]",
    "    check: { type: http, url: http://127.0.0.1:8080/, expect: { status: 204, body: ok } }",
    "  t:",
    "    command: [a]",
    '    check: { type: tcp, address: "[::1]:5432", interval: 2s, timeout: 500ms }',
    "  p:",
    "    command: [a]",
    "    check: { type: tcp, port: 6379, failures: 5, initialDelay: 3s }",
    "  e:",
    "    command: [a]",
    "    check: { type: exec, command: [pg_isready] }",
  ));
  assert.deepEqual(m.apps["h"]?.check, {
    type: "http",
    url: "http://127.0.0.1:8080/",
    expectStatus: [204],
    expectBody: "ok",
    intervalMs: 1000,
    timeoutMs: 1000,
    failures: 3,
    initialDelayMs: 0,
  });
  assert.deepEqual(m.apps["t"]?.check, {
    type: "tcp",
    host: "::1",
    port: 5432,
    intervalMs: 2000,
    timeoutMs: 500,
    failures: 3,
    initialDelayMs: 0,
  });
  assert.deepEqual(m.apps["p"]?.check, {
    type: "tcp",
    host: "127.0.0.1",
    port: 6379,
    intervalMs: 1000,
    timeoutMs: 1000,
    failures: 5,
    initialDelayMs: 3000,
  });
  assert.deepEqual(m.apps["e"]?.check, {
    type: "exec",
    command: ["pg_isready"],
    intervalMs: 1000,
    timeoutMs: 1000,
    failures: 3,
    initialDelayMs: 0,
  });
});

Deno.test("parseManifest resolves relative paths against the manifest's directory", async () => {
  const m = await ok(
    lines(
      "cluster:",
      "  secretFile: ./baton.secret",
      "  tls: { cert: certs/node.pem, key: /abs/node.key }",
      "  witness: { url: http://127.0.0.1:7400/ }",
      "  fence: [/bin/true]",
      "  failedCooldown: 10m",
      ONE_NODE + "apps:",
      "  w: { command: [a], cwd: srv/web, env: { PORT: 8080, DEBUG: true } }",
    ),
    "/etc/baton/baton.yaml",
  );
  assert.equal(m.cluster.secretFile, "/etc/baton/baton.secret");
  assert.deepEqual(m.cluster.tls, {
    cert: "/etc/baton/certs/node.pem",
    key: "/abs/node.key",
    ca: null,
  });
  assert.deepEqual(m.cluster.witness, { url: "http://127.0.0.1:7400", kind: "baton" });
  assert.deepEqual(m.cluster.fence, ["/bin/true"]);
  assert.equal(m.cluster.failedCooldownMs, 600_000);
  assert.equal(m.apps["w"]?.cwd, "/etc/baton/srv/web");
  assert.deepEqual(m.apps["w"]?.env, { PORT: "8080", DEBUG: "true" });
});

Deno.test("parseManifest accepts anchors, merge keys and top-level x- keys", async () => {
  const m = await ok(lines(
    "x-app: &app",
    "  command: [sleep, infinity]",
    "  stop: { timeout: 3s }",
    ONE_NODE + "apps:",
    "  a: *app",
    "  b: { <<: *app, movable: false }",
  ));
  assert.deepEqual(m.apps["a"]?.command, ["sleep", "infinity"]);
  assert.equal(m.apps["b"]?.stop.timeoutMs, 3000);
  assert.equal(m.apps["b"]?.movable, false);
});

Deno.test("parseManifest points an unknown key at the key, with a did-you-mean hint", async () => {
  const list = await errors(lines("cluster:", "  heartbeat:", "    intervall: 200ms", ONE_NODE));
  assert.equal(list.length, 1);
  assert.equal(at(list, 'unknown key "intervall"'), "3:5");
  assert.match(list[0]?.message ?? "", /did you mean "interval"/);
});

Deno.test("parseManifest points a missing key at the parent mapping", async () => {
  const list = await errors(ONE_NODE + lines("apps:", "  web:", "    cwd: /srv"));
  assert.equal(at(list, 'missing required key "command" in apps.web'), "5:5");
  const empty = await errors(ONE_NODE + lines("apps:", "  web:"));
  assert.equal(at(empty, "expected an app mapping"), "4:3");
});

Deno.test("parseManifest points a wrong value at the value", async () => {
  const text = lines(
    "nodes:",
    "  alpha: { url: http://127.0.0.1:7401, priority: 1.5 }",
    "  beta: { url: ftp://127.0.0.1:7402 }",
    "  gamma:",
    "    url: http://127.0.0.1:7403",
    "    priority: high",
  );
  const list = await errors(text);
  assert.equal(at(list, "expected an integer priority, found the number 1.5"), "2:50");
  assert.equal(at(list, 'starting with http:// or https://, found "ftp://'), "3:16");
  assert.equal(at(list, 'found "high"'), pos(text, 6, "high"));
  assert.equal(list.length, 3);
});

Deno.test("parseManifest rejects a bare number as a duration and says to write a unit", async () => {
  const text = lines("cluster:", "  heartbeat: { interval: 500 }", ONE_NODE);
  assert.equal(at(await errors(text), 'write e.g. "500ms"'), pos(text, 2, "500"));
});

Deno.test("parseManifest rejects zero and negative durations where they must be positive", async () => {
  const text = lines(
    "cluster:",
    "  heartbeat: { interval: 0s }",
    ONE_NODE + "apps:",
    "  w:",
    "    command: [a]",
    "    check: { type: tcp, port: 1, timeout: 0ms, initialDelay: 0s }",
    "    stop: { timeout: -1s }",
  );
  const list = await errors(text);
  assert.equal(at(list, 'greater than zero, found "0s"'), pos(text, 2, "0s"));
  assert.equal(at(list, 'greater than zero, found "0ms"'), pos(text, 8, "0ms"));
  assert.equal(at(list, "negative"), pos(text, 9, "-1s"));
  assert.equal(list.length, 3);
});

Deno.test("parseManifest reports two nodes with the same URL at the second one", async () => {
  const text = lines(
    "cluster: { witness: none }",
    "nodes:",
    "  alpha: { url: http://127.0.0.1:7401 }",
    "  beta: { url: http://127.0.0.1:7401/ }",
  );
  const list = await errors(text);
  assert.equal(at(list, 'node "beta" has the same url as node "alpha"'), pos(text, 4, "http"));
  assert.equal(list.length, 1);
});

Deno.test("parseManifest rejects an empty command and an empty program", async () => {
  const text = ONE_NODE + lines(
    "apps:",
    "  a: { command: [] }",
    '  b: { command: [""] }',
    "  c: { command: python3 app.py }",
    "  d: { command: [sleep, 5] }",
  );
  const list = await errors(text);
  assert.equal(at(list, "command must not be empty"), pos(text, 4, "["));
  assert.equal(at(list, "expected the program to run as the first element"), pos(text, 5, '""'));
  assert.equal(at(list, "write it as a list: [python3, app.py]"), pos(text, 6, "python3"));
  assert.equal(at(list, 'quote it: "5"'), pos(text, 7, "5"));
});

Deno.test("parseManifest points an unknown node in apps.X.nodes at the list item", async () => {
  const text = TWO_NODES + lines("apps:", "  w:", "    command: [a]", "    nodes: [alpha, gamma]");
  const list = await errors(text);
  assert.equal(at(list, 'unknown node "gamma"'), "10:20");
  assert.equal(pos(text, 10, "gamma"), "10:20");
  assert.match(list[0]?.message ?? "", /known nodes are alpha, beta/);
});

Deno.test("parseManifest checks heartbeat timing: interval below deadAfter, then the fencing margin", async () => {
  const slowText = lines(
    "cluster:",
    "  heartbeat:",
    "    interval: 1s",
    "    deadAfter: 1s",
    ONE_NODE,
  );
  const slow = await errors(slowText);
  assert.equal(at(slow, "must be less than heartbeat.deadAfter"), "3:15");
  assert.equal(slow.length, 1);

  const fenceText = lines(
    "cluster:",
    "  heartbeat: { interval: 200ms, deadAfter: 1s, fenceAfter: 800ms }",
    ONE_NODE,
  );
  const fence = await errors(fenceText);
  assert.equal(
    at(fence, "an isolated active must stop its apps before the standby"),
    pos(fenceText, 2, "800ms"),
  );
  assert.match(
    fence[0]?.message ?? "",
    /800ms.*200ms.*100ms = 1\.1s must be at most deadAfter \(1s\)/,
  );

  const defaultedText = lines("cluster:", "  heartbeat: { interval: 950ms }", ONE_NODE);
  const defaulted = await errors(defaultedText);
  assert.equal(
    at(defaulted, "the default deadAfter - interval - 100ms"),
    pos(defaultedText, 2, "950ms"),
  );
  await ok(lines("cluster:", "  heartbeat: { interval: 450ms }", ONE_NODE));

  await ok(lines(
    "cluster:",
    "  heartbeat: { interval: 200ms, deadAfter: 1s, fenceAfter: 700ms }",
    ONE_NODE,
  ));
});

Deno.test("parseManifest validates check URLs, ports, signals, check types and node maps", async () => {
  const text = lines(
    "nodes: {}",
    "apps:",
    "  h:",
    "    command: [a]",
    "    check: { type: http, url: not a url }",
    "  t:",
    "    command: [a]",
    "    check: { type: tcp, port: 70000 }",
    "  s:",
    "    command: [a]",
    "    stop: { signal: TERM }",
    "  x:",
    "    command: [a]",
    "    check: { type: htp }",
    "  y:",
    "    command: [a]",
    "    check: { url: http://x }",
  );
  const list = await errors(text);
  assert.equal(at(list, "at least one node"), "1:8");
  assert.equal(at(list, 'found "not a url"'), pos(text, 5, "not a url"));
  assert.equal(at(list, "expected a port in 1..65535, found the number 70000"), pos(text, 8, "7"));
  assert.equal(at(list, "did you mean SIGTERM?"), pos(text, 11, "TERM"));
  assert.equal(
    at(list, 'expected a check type ("process", "http", "tcp", "exec"), found "htp"'),
    pos(text, 14, "htp"),
  );
  assert.equal(at(list, 'missing required key "type"'), pos(text, 17, "{"));
  assert.equal(list.length, 6);
});

Deno.test("parseManifest rejects bad node and app names at the key", async () => {
  const list = await errors(lines(
    "nodes:",
    "  _alpha: { url: http://127.0.0.1:7401 }",
    "apps:",
    '  "my app": { command: [a] }',
  ));
  assert.equal(at(list, 'invalid node name "_alpha"'), "2:3");
  assert.equal(at(list, 'invalid app name "my app"'), "4:3");
});

Deno.test("parseManifest reports several errors at once, sorted by position", async () => {
  const text = lines(
    "cluster:",
    "  nam: demo",
    "  heartbeat: { interval: 5s }",
    "nodes:",
    "  alpha: { url: http://127.0.0.1:7401, priority: x }",
    "apps:",
    "  web:",
    "    command: [a]",
    "    movable: yes please",
    "    restart: { limit: -1 }",
  );
  const list = await errors(text);
  assert.deepEqual(list.map((d) => `${d.line}:${d.col}`), [
    "2:3",
    pos(text, 3, "5s"),
    pos(text, 5, "x }"),
    pos(text, 9, "yes"),
    pos(text, 10, "-1"),
  ]);
  for (const d of list) assert.equal(d.severity, "error");
  assert.equal(
    formatDiagnostic(list[0] ?? assert.fail("no diagnostics")),
    'm.yaml:2:3: unknown key "nam" in cluster; did you mean "name"? (expected one of: name, ' +
      "secretFile, heartbeat, witness, fence, failedCooldown, tls, notify, watchdog, vip)",
  );
});

Deno.test("parseManifest reports YAML syntax errors with line and column", async () => {
  const list = await errors(
    lines("nodes:", "  alpha: { url: http://127.0.0.1:7401", "apps:", "  - x: [1"),
  );
  assert.ok(list.length >= 1);
  for (const d of list) {
    assert.match(d.message, /^YAML syntax error: /);
    assert.ok(d.line >= 2, `line ${d.line} should be at or after the broken line 2`);
  }
  const tab = await errors("nodes:\n\talpha: 1\n");
  assert.equal(`${tab[0]?.line}:${tab[0]?.col}`, "2:1");
});

Deno.test("parseManifest reports every duplicate key and keeps validating", async () => {
  const text = lines(
    "nodes:",
    "  alpha: { url: http://127.0.0.1:7401 }",
    "  alpha: { url: http://127.0.0.1:7402 }",
    "apps:",
    "  w: { command: [a], command: [b], nodes: [gamma] }",
  );
  const list = await errors(text);
  assert.equal(at(list, 'duplicate key: "alpha"'), "3:3");
  assert.equal(at(list, 'duplicate key: "command"'), pos(text, 5, "command: [b]"));
  assert.equal(at(list, 'unknown node "gamma"'), pos(text, 5, "gamma"));
});

Deno.test("parseManifest: two nodes without a witness or fence is an error unless witness: none says so", async () => {
  const base = [
    "nodes:",
    "  alpha: { url: http://127.0.0.1:7401 }",
    "  beta: { url: http://127.0.0.1:7402 }",
  ];
  const text = lines("cluster:", "  secretFile: ./s", ...base);
  const list = await errors(text);
  assert.equal(at(list, "two nodes and no cluster.witness nor cluster.fence"), "3:1");
  assert.match(list[0]?.message ?? "", /witness: none/);

  const none = await parseManifest(
    lines("cluster:", "  secretFile: ./s", "  witness: none", ...base),
    "m.yaml",
  );
  assert.ok(none.ok, none.ok ? "" : none.errors.map(formatDiagnostic).join("\n"));
  assert.equal(none.manifest.cluster.witness, null);
  assert.deepEqual(warnings(none), [
    "3:12: witness: none with two nodes: a network partition makes both nodes active",
  ]);

  const fenced = await parseManifest(
    lines("cluster:", "  secretFile: ./s", "  fence: [/bin/true]", ...base),
    "m.yaml",
  );
  assert.ok(fenced.ok);
  assert.equal(
    formatDiagnostic(fenced.warnings[0] ?? assert.fail("no warning")),
    "m.yaml:4:1: warning: two nodes and no cluster.witness: a network partition makes both " +
      "nodes active; add a witness both nodes can reach",
  );
});

Deno.test("parseManifest: witness kind is explicit; a plain HTTP witness is opted into with a warning", async () => {
  const baton = await ok(TWO_NODES);
  assert.deepEqual(baton.cluster.witness, { url: "http://127.0.0.1:7400", kind: "baton" });
  const text = TWO_NODES.replace(
    "witness: http://127.0.0.1:7400",
    "witness: { url: http://127.0.0.1:7400, kind: http }",
  );
  const result = await parseManifest(text, "m.yaml");
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatDiagnostic).join("\n"));
  assert.deepEqual(result.manifest.cluster.witness, { url: "http://127.0.0.1:7400", kind: "http" });
  assert.equal(warnings(result).filter((w) => w.includes("only proves reachability")).length, 1);
  const bad = await errors(TWO_NODES.replace(
    "witness: http://127.0.0.1:7400",
    "witness: { url: http://127.0.0.1:7400, kind: router }",
  ));
  assert.match(
    bad.map((d) => d.message).join("\n"),
    /a witness kind: "baton" \(default\) or "http"/,
  );
});

Deno.test("parseManifest rejects node names longer than the wire format and durations above 2^31-1 ms, with line and column", async () => {
  const long = "n".repeat(65);
  const text = lines(
    "cluster:",
    "  witness: none",
    "  heartbeat: { interval: 200ms, deadAfter: 25d }",
    "nodes:",
    `  ${long}: { url: http://127.0.0.1:7401 }`,
    "  beta: { url: http://127.0.0.1:7402 }",
    "apps:",
    "  w: { command: [a], restart: { window: 30d } }",
  );
  const list = await errors(text);
  assert.equal(at(list, "is 65 characters: expected at most 64"), "5:3");
  assert.equal(at(list, 'found "25d"'), pos(text, 3, "25d"));
  assert.equal(at(list, 'found "30d"'), pos(text, 8, "30d"));
  assert.match(list.map((d) => d.message).join("\n"), /at most 2147483647ms/);
  await ok(
    lines(
      "cluster: { witness: none }",
      "nodes:",
      `  ${"n".repeat(64)}: { url: http://127.0.0.1:7401 }`,
      "  b: { url: http://127.0.0.1:7402 }",
    ),
  );
});

Deno.test("parseManifest warns about a missing secretFile, slow checks, limit 0 and unmovable movable apps", async () => {
  const text = lines(
    "cluster:",
    "  witness: http://127.0.0.1:7400",
    "nodes:",
    "  alpha: { url: http://127.0.0.1:7401 }",
    "  beta: { url: http://127.0.0.1:7402 }",
    "apps:",
    "  w:",
    "    command: [a]",
    "    nodes: [alpha]",
    "    check: { type: tcp, port: 80, interval: 1s, timeout: 3s }",
    "    restart: { limit: 0 }",
    "  pinned: { command: [a], nodes: [beta], movable: false }",
  );
  const result = await parseManifest(text, "m.yaml");
  assert.ok(result.ok);
  const got = warnings(result);
  assert.equal(got.length, 4, got.join("\n"));
  assert.match(got[0] ?? "", /^1:1: several nodes and no cluster.secretFile: BATON_SECRET/);
  assert.ok(got[1]?.startsWith(`${pos(text, 9, "[")}: app "w" is movable but may only run`));
  assert.ok(got[2]?.startsWith(`${pos(text, 10, "3s")}: check timeout (3s) is longer than`));
  assert.ok(got[3]?.startsWith(`${pos(text, 11, "0 }")}: restart.limit is 0: the first failure`));
});

Deno.test("parseManifest accepts a single-node manifest without warnings", async () => {
  const result = await parseManifest(ONE_NODE, "m.yaml");
  assert.ok(result.ok);
  assert.deepEqual(result.warnings, []);
});

Deno.test("app and manifest hashes ignore key order and change with the command", async () => {
  const a = await ok(
    TWO_NODES + lines(
      "apps:",
      "  web: { command: [a, b], env: { X: '1', Y: '2' }, check: { type: tcp, port: 80, timeout: 2s } }",
      "  worker: { command: [sleep, infinity] }",
    ),
  );
  const reordered = await ok(lines(
    "apps:",
    "  worker: { command: [sleep, infinity] }",
    "  web: { check: { timeout: 2s, port: 80, type: tcp }, env: { Y: '2', X: '1' }, command: [a, b] }",
    "nodes:",
    "  beta: { priority: 50, url: http://127.0.0.1:7402 }",
    "  alpha: { priority: 100, url: http://127.0.0.1:7401 }",
    "cluster:",
    "  witness: http://127.0.0.1:7400",
    "  secretFile: ./s",
  ));
  assert.equal(reordered.apps["web"]?.hash, a.apps["web"]?.hash);
  assert.equal(reordered.hash, a.hash);

  const changed = await ok(
    TWO_NODES + lines(
      "apps:",
      "  web: { command: [a, c], env: { X: '1', Y: '2' }, check: { type: tcp, port: 80, timeout: 2s } }",
      "  worker: { command: [sleep, infinity] }",
    ),
  );
  assert.notEqual(changed.apps["web"]?.hash, a.apps["web"]?.hash);
  assert.equal(changed.apps["worker"]?.hash, a.apps["worker"]?.hash);
  assert.notEqual(changed.hash, a.hash);

  const restartOnly = await ok(
    TWO_NODES + lines(
      "apps:",
      "  web: { command: [a, b], env: { X: '1', Y: '2' }, check: { type: tcp, port: 80, timeout: 2s } }",
      "  worker: { command: [sleep, infinity], restart: { limit: 3 } }",
    ),
  );
  assert.equal(restartOnly.apps["worker"]?.hash, a.apps["worker"]?.hash);
  assert.notEqual(restartOnly.hash, a.hash);
});

Deno.test("loadManifestFile reports a missing file as one error at 1:1", async () => {
  const result = await loadManifestFile("/nonexistent/baton.yaml");
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.equal(result.errors.length, 1);
  assert.equal(
    formatDiagnostic(result.errors[0] ?? assert.fail()),
    '/nonexistent/baton.yaml:1:1: cannot read manifest "/nonexistent/baton.yaml": no such file',
  );
});

Deno.test("loadManifestFile reads a file and resolves paths against its directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/baton.yaml`;
    await Deno.writeTextFile(file, "cluster: { secretFile: baton.secret }\n" + ONE_NODE);
    const result = await loadManifestFile(file);
    assert.ok(result.ok);
    assert.equal(result.manifest.cluster.secretFile, `${dir}/baton.secret`);
    assert.equal(result.manifest.path, file);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveNodeName prefers the flag, then the environment, then the host name", async () => {
  const m = await ok(TWO_NODES);
  assert.deepEqual(resolveNodeName(m, "beta", "alpha", "alpha"), { ok: true, node: "beta" });
  assert.deepEqual(resolveNodeName(m, undefined, "beta", "alpha"), { ok: true, node: "beta" });
  assert.deepEqual(resolveNodeName(m, undefined, undefined, "beta"), { ok: true, node: "beta" });
  assert.deepEqual(resolveNodeName(m, undefined, undefined, "alpha.example.org"), {
    ok: true,
    node: "alpha",
  });
});

Deno.test("resolveNodeName errors list the known nodes", async () => {
  const m = await ok(TWO_NODES);
  const badFlag = resolveNodeName(m, "gamma", undefined, "alpha");
  assert.equal(badFlag.ok, false);
  assert.match(badFlag.ok ? "" : badFlag.error, /unknown node "gamma".*--node.*alpha, beta/);
  const badEnv = resolveNodeName(m, undefined, "gamma", "alpha");
  assert.match(badEnv.ok ? "" : badEnv.error, /unknown node "gamma".*BATON_NODE.*alpha, beta/);
  const noMatch = resolveNodeName(m, undefined, undefined, "db1.example.org");
  assert.match(noMatch.ok ? "" : noMatch.error, /"db1.example.org".*alpha, beta/);
});

Deno.test("resolveNodeName picks the only node of a single-node manifest", async () => {
  const m = await ok(ONE_NODE);
  assert.deepEqual(resolveNodeName(m, undefined, undefined, "whatever"), {
    ok: true,
    node: "alpha",
  });
  assert.equal(resolveNodeName(m, "beta", undefined, "whatever").ok, false);
});

Deno.test("parseManifest refuses https urls without cluster.tls, at the url", async () => {
  const text = lines(
    "cluster:",
    "  witness: https://127.0.0.1:7400",
    "nodes:",
    "  alpha: { url: https://127.0.0.1:7401 }",
  );
  const errs = await errors(text);
  assert.equal(at(errs, 'node "alpha" has an https url'), pos(text, 4, "https"));
  assert.equal(at(errs, "the witness has an https url"), pos(text, 2, "https"));
});

// ---------------------------------------------------------------- hostile input

Deno.test("parseManifest reports every hostile manifest as a located error, never a throw", async () => {
  for (const c of hostileManifests()) {
    const r = await parseManifest(c.text, "hostile.yaml");
    assert.equal(r.ok, false, c.name);
    if (r.ok) continue;
    const first = r.errors[0]!;
    assert.match(first.message, c.message, `${c.name}: ${first.message.slice(0, 200)}`);
    assert.equal(first.line, c.line, `${c.name}: ${formatDiagnostic(first).slice(0, 200)}`);
  }
});
