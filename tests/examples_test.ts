/**
 * The sample manifests and units a newcomer copies: every commented key in `examples/baton.yaml`,
 * the manifests `baton init` writes and the README's manifest example sits where uncommenting
 * it works (the test uncomments them all and validates), and the README's install steps name
 * the paths the shipped systemd units use.
 */
import assert from "node:assert/strict";
import { formatDiagnostic, parseManifest } from "../src/manifest/load.ts";
import { EXAMPLE_MANIFEST, nodeNameForHost, singleNodeManifest } from "../src/manifest/example.ts";
import { resolveManifestPath, SYSTEM_MANIFEST } from "../src/cli/manifest_path.ts";

const root = new URL("..", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, root));

/** A comment line holding a YAML key (`# key: value`, `#   key:`), not prose. */
const COMMENTED_KEY = /^(\s*)# (\s*[A-Za-z_][\w-]*:(?:\s|$).*)$/;

/** Uncomment every commented key; returns the text and how many lines it uncommented. */
function uncommentAll(text: string): { text: string; keys: string[] } {
  const keys: string[] = [];
  const lines = text.split("\n").map((line) => {
    const m = COMMENTED_KEY.exec(line);
    if (!m) return line;
    keys.push(m[2]!.trim().split(":")[0]!);
    return `${m[1]}${m[2]}`;
  });
  return { text: lines.join("\n"), keys };
}

/** The README's manifest example (the yaml block of its "## Manifest" section). */
async function readmeManifest(): Promise<string> {
  const readme = await read("README.md");
  const at = readme.indexOf("\n## Manifest\n");
  assert.ok(at >= 0, "README has a Manifest section");
  const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block?.[1], "the Manifest section has a yaml block");
  return block[1];
}

async function assertUncommentedValid(name: string, text: string, expectKeys: string[]) {
  const plain = await parseManifest(text, name);
  assert.ok(plain.ok, `${name} as shipped:\n${plain.ok ? "" : plain.errors.map(formatDiagnostic)}`);
  const { text: open, keys } = uncommentAll(text);
  for (const k of expectKeys) assert.ok(keys.includes(k), `${name}: expected a commented ${k}`);
  const r = await parseManifest(open, name);
  assert.ok(
    r.ok,
    `${name} with ${keys.join(", ")} uncommented:\n` +
      (r.ok ? "" : r.errors.map(formatDiagnostic).join("\n")),
  );
}

Deno.test("uncommentAll: finds commented keys, leaves prose comments and inline comments", () => {
  const { text, keys } = uncommentAll(
    [
      "a: 1 # inline: kept",
      "  # Prose with a colon: not a key",
      "  # fence: [x]   # note",
      "  #   command: [y]",
    ].join("\n"),
  );
  assert.deepEqual(keys, ["fence", "command"]);
  assert.equal(
    text,
    [
      "a: 1 # inline: kept",
      "  # Prose with a colon: not a key",
      "  fence: [x]   # note",
      "    command: [y]",
    ]
      .join("\n"),
  );
});

Deno.test("a commented key that would duplicate a key is an error (what the uncomment test catches)", async () => {
  const r = await parseManifest(
    [
      "nodes: { solo: { url: http://127.0.0.1:7401 } }",
      "apps:",
      "  web:",
      "    command: [sleep, infinity]",
      "    command: [sleep, '1']",
    ].join("\n"),
    "dup.yaml",
  );
  assert.ok(!r.ok, "a duplicate key is refused");
});

Deno.test("examples/baton.yaml: every commented key uncommented still validates (no duplicate key)", async () => {
  const text = await read("examples/baton.yaml");
  assert.equal(text, EXAMPLE_MANIFEST);
  await assertUncommentedValid("examples/baton.yaml", text, [
    "fenceAfter",
    "fence",
    "failedCooldown",
    "expect",
    "sample",
    "command",
  ]);
});

Deno.test("every interface check of baton init and examples/*.yaml waits an initialDelay before its first check", async () => {
  const manifests: [string, string][] = [
    ["baton init", singleNodeManifest("vm")],
    ["baton init --cluster", EXAMPLE_MANIFEST],
  ];
  for (const entry of Deno.readDirSync(new URL("../examples/", import.meta.url))) {
    if (entry.name.endsWith(".yaml")) {
      manifests.push([`examples/${entry.name}`, await read(`examples/${entry.name}`)]);
    }
  }
  let checks = 0;
  for (const [name, text] of manifests) {
    // The commented apps too (the sample app of examples/baton.yaml).
    for (const t of [text, uncommentAll(text).text]) {
      const r = await parseManifest(t, name);
      assert.ok(r.ok, `${name}: ${r.ok ? "" : r.errors.map(formatDiagnostic).join("\n")}`);
      for (const app of Object.values(r.manifest.apps)) {
        if (app.check.type === "process") continue;
        checks++;
        // Without it the first check runs at once, fails while the server starts, and the
        // quick start shows check_failed records and, after two kills, "flapping".
        assert.ok(app.check.initialDelayMs > 0, `${name}: apps.${app.name}.check.initialDelay`);
      }
    }
  }
  assert.ok(checks >= 8, `interface checks seen: ${checks}`);
});

Deno.test("examples/depends.yaml: valid, without warnings, and its start order is db, api, web", async () => {
  const text = await read("examples/depends.yaml");
  const r = await parseManifest(text, "examples/depends.yaml");
  assert.ok(r.ok, r.ok ? "" : r.errors.map(formatDiagnostic).join("\n"));
  assert.deepEqual(r.warnings.map(formatDiagnostic), []);
  const { startOrder } = await import("../src/core/start_order.ts");
  assert.deepEqual(startOrder(r.manifest.apps), ["logship", "db", "api", "web"]);
  assert.equal(r.manifest.apps["db"]?.readyTimeoutMs, 120_000);
  assert.equal(r.manifest.apps["api"]?.readyTimeoutMs, 60_000);
});

Deno.test("baton init's one-node manifest: valid as written and with every commented key uncommented", async () => {
  const text = singleNodeManifest("vm");
  const r = await parseManifest(text, "baton.yaml");
  assert.ok(r.ok);
  assert.deepEqual(Object.keys(r.manifest.nodes), ["vm"]);
  assert.deepEqual(r.warnings.map(formatDiagnostic), []);
  await assertUncommentedValid("baton.yaml", text, ["witness", "failedCooldown", "beta", "expect"]);
});

Deno.test("README manifest example: fence, failedCooldown, tls, vip, nodes, expect, initialDelay uncomment where they belong", async () => {
  await assertUncommentedValid("README.md", await readmeManifest(), [
    "fence",
    "fencing",
    "fenceCredentials",
    "failedCooldown",
    "tls",
    "vip",
    "nodes",
    "expect",
    "initialDelay",
  ]);
});

Deno.test("nodeNameForHost: the host's first label as a valid node name", () => {
  assert.equal(nodeNameForHost("Alpha.example.org"), "alpha");
  assert.equal(nodeNameForHost("web_1"), "web_1");
  assert.equal(nodeNameForHost("-odd+name"), "odd-name");
  assert.equal(nodeNameForHost(""), "node");
  assert.equal(nodeNameForHost("..."), "node");
});

Deno.test("resolveManifestPath: flag, env, ./baton.yaml, then the installed manifest", () => {
  const lookup = (files: string[], flag?: string, env?: string) =>
    resolveManifestPath({
      flag,
      env,
      systemPath: SYSTEM_MANIFEST,
      exists: (p) => files.includes(p),
    });
  assert.equal(lookup(["baton.yaml", SYSTEM_MANIFEST], "x.yaml", "y.yaml"), "x.yaml");
  assert.equal(lookup(["baton.yaml", SYSTEM_MANIFEST], undefined, "y.yaml"), "y.yaml");
  assert.equal(lookup(["baton.yaml", SYSTEM_MANIFEST]), "baton.yaml");
  assert.equal(lookup([SYSTEM_MANIFEST]), SYSTEM_MANIFEST);
  assert.equal(lookup([]), "baton.yaml", "the error then names ./baton.yaml");
});

/** `Key=value` lines of a systemd unit. */
function unitKeys(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) keys.set(m[1]!, m[2]!);
  }
  return keys;
}

Deno.test("README install steps match the shipped units (binary, manifest, state dir, KillMode)", async () => {
  const readme = await read("README.md");
  const install = readme.slice(readme.indexOf("### Installing on two hosts"));
  const unit = unitKeys(await read("examples/baton.service"));
  const exec = (unit.get("ExecStart") ?? "").split(/\s+/);
  const flag = (name: string) => exec[exec.indexOf(name) + 1];
  assert.equal(exec[0], "/usr/local/bin/baton");
  assert.equal(exec[1], "run");
  assert.equal(flag("--manifest"), SYSTEM_MANIFEST, "the unit reads the CLI's fallback manifest");
  assert.equal(unit.get("KillMode"), "process");
  assert.ok(!unit.has("Environment"), "no BATON_NODE baked in: the same unit on every host");
  for (
    const want of [
      exec[0]!,
      SYSTEM_MANIFEST,
      `baton run --manifest ${flag("--manifest")} --state-dir ${flag("--state-dir")}`,
      "examples/baton.service",
      "/etc/systemd/system/",
      "systemctl enable --now baton",
      "KillMode=process",
      "baton.secret",
    ]
  ) {
    assert.ok(install.includes(want), `README install steps mention ${want}`);
  }
  assert.equal(unit.get("StateDirectory"), "baton");
  assert.equal(flag("--state-dir"), "/var/lib/baton", "StateDirectory=baton is /var/lib/baton");
  const witness = unitKeys(await read("examples/baton-witness.service"));
  const wexec = (witness.get("ExecStart") ?? "").split(/\s+/);
  assert.equal(wexec[0], "/usr/local/bin/baton");
  assert.equal(wexec[wexec.indexOf("--manifest") + 1], SYSTEM_MANIFEST);
});

Deno.test("examples/nginx.yaml, redis.yaml, postgres.yaml validate, also with every commented key uncommented", async () => {
  for (const name of ["nginx", "redis", "postgres"]) {
    const path = `examples/${name}.yaml`;
    const text = await read(path);
    await assertUncommentedValid(path, text, []);
    const r = await parseManifest(text, path);
    assert.ok(r.ok);
    assert.deepEqual(r.warnings.map(formatDiagnostic), [], `${path} has no warnings`);
    const app = r.manifest.apps[name]!;
    assert.ok(app.limits, `${path}: shows limits:`);
    if (name === "nginx") assert.equal(app.pidFile, "/run/baton-nginx.pid");
    else assert.ok(app.logs, `${path}: shows logs:`);
  }
  // The nginx example's pid file is the one its config writes.
  assert.match(await read("examples/nginx.conf"), /^pid \/run\/baton-nginx\.pid;$/m);
});
